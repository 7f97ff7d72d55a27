"""What a check run can be asked: the checks by name, and the options besides the image.

Validated before anything runs, so bad input is one error naming the option, never a check
that fails half-way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from local_mode.check.errors import CheckInputError
from local_mode.check.names import ALL_CHECKS
from local_mode.check.report import select

TITLES = {
    "train": "training exits 0 and writes /opt/ml/model",
    "failure-file": "a failed run writes /opt/ml/output/failure, exits non-zero",
    "train-sigterm": "SIGTERM ends a training run within the grace",
    "ping": "GET /ping answers 200",
    "startup-time": "docker run -> first 200 within the start-up budget",
    "invocations": "POST /invocations with the sample answers 200",
    "errors": "bad requests get 4xx, the server keeps serving",
    "serve-sigterm": "SIGTERM drains the in-flight request, then exits",
}


@dataclass(frozen=True)
class CheckOptions:
    """Everything a check run can be told besides the image (see ``optml check --help``)."""

    job: Path | None = None
    failing_job: Path | None = None
    failing_environment: Mapping[str, str] = field(default_factory=dict)
    """Environment that makes the job fail (added to the job's for the failure-file run)."""
    failing_hyperparameters: Mapping[str, str] = field(default_factory=dict)
    """Hyperparameters that make the job fail (added to the job's for the failure-file run)."""
    model_data: str | Path | None = None
    sample: Path | None = None
    content_type: str | None = None
    accept: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    checks: Sequence[str] = ()
    grace: float = 30.0
    startup_timeout: float = 60.0
    ready_timeout: float = 180.0
    train_timeout: float = 600.0
    sigterm_after: float | None = None

    def validated(self) -> CheckOptions:
        """Check the inputs before anything runs; CheckInputError naming the option."""
        try:
            select(self.checks, ALL_CHECKS)
        except ValueError as exc:
            raise CheckInputError(f"--only: {exc}") from None
        for name in ("grace", "startup_timeout", "ready_timeout", "train_timeout"):
            if getattr(self, name) <= 0:
                raise CheckInputError(f"--{name.replace('_', '-')} must be > 0")
        if self.sigterm_after is not None and self.sigterm_after < 0:
            raise CheckInputError("--sigterm-after must be >= 0")
        if self.failing_job is not None and (self.failing_environment or
                                             self.failing_hyperparameters):
            raise CheckInputError("--failing-job and --failing-env/--failing-hyperparameter "
                                  "are two ways to make the run fail: give one")
        for option, path in (("--job", self.job), ("--failing-job", self.failing_job),
                             ("--sample", self.sample)):
            if path is not None:
                _readable_file(option, Path(path))
        if self.sample is not None:
            if not self.content_type:
                raise CheckInputError("--sample needs --content-type (the sample's media type)")
            if Path(self.sample).stat().st_size == 0:
                raise CheckInputError(f"--sample {self.sample}: the file is empty")
        if self.model_data is not None:
            text = str(self.model_data)
            if "://" not in text and not Path(text).exists():
                raise CheckInputError(f"--model-data {text}: no such file or directory")
        return self


def _readable_file(option: str, path: Path) -> None:
    """Fail now, before any container runs, on a file that is missing or cannot be read."""
    try:
        if not path.is_file():
            raise CheckInputError(f"{option} {path}: no such file")
        with path.open("rb"):
            pass
    except OSError as exc:  # e.g. PermissionError, on the file or a directory above it
        raise CheckInputError(f"{option} {path}: {exc.strerror or exc}") from None
