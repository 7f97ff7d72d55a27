"""The contract checks: what each one runs, and when it passes; :func:`run_checks` runs them.

The training checks are judged here; the serving ones in :mod:`local_mode.check.serving_checks`.

Training (each a separate run of the image, through local mode's Docker backend):

``train``
    The job (generated, or ``--job``) exits 0 and leaves at least one file in /opt/ml/model.
``failure-file``
    A run that fails (``--failing-job``, or the job with ``--failing-env``/
    ``--failing-hyperparameter`` added, else the job with every channel removed) exits
    non-zero and writes a non-empty /opt/ml/output/failure. When the generic trigger does not
    make the program fail, the check is SKIP: nothing was learnt about failures.
``train-sigterm``
    SIGTERM sent while the job runs ends the container within the grace, and not by SIGKILL.

Serving (one ``serve`` container, the model read-only at /opt/ml/model):

``ping``
    GET /ping answers 200 (each answer within the service's 2 s) before ``ready_timeout``, and
    keeps answering 200.
``startup-time``
    The first 200 on /ping came within ``startup_timeout`` of ``docker run``.
``invocations``
    POST /invocations with the user's sample answers 200.
``errors``
    An unsupported Content-Type gets a 4xx (415 expected), a garbage body a 4xx or a JSON/text
    error, and the server still serves afterwards.
``serve-sigterm``
    A request in flight when SIGTERM arrives is answered as before, and the container exits
    within the grace, not by SIGKILL.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from local_mode.check import jobs
from local_mode.check.containers import (
    SIGKILL_EXIT,
    ServingRunner,
    TrainingRunner,
    image_present,
)
from local_mode.check.errors import CheckInputError
from local_mode.check.names import ALL_CHECKS, SERVE_CHECKS
from local_mode.check.options import CheckOptions
from local_mode.check.report import CheckResult, Report, select
from local_mode.check.serving_checks import ServingChecks
from local_mode.check.verdicts import (
    fail_result,
    file_list,
    log_excerpt,
    one_line,
    pass_result,
    secs,
    skip_result,
)
from local_mode.docker_engine import reachable_client
from local_mode.endpoints.staging import StagingError, stage_model_data
from toolkit.settings import Settings

SIGTERM_AFTER_MAX = 2.0
"""Without --sigterm-after: half the unsignalled run's time, at most this (seconds)."""
SIGTERM_AFTER_DEFAULT = 1.0
"""... or this when there was no unsignalled run to measure."""
NATURAL_END_FRACTION = 0.75
"""An exit after SIGTERM with the unsignalled run's own status counts as a reaction only if it
came this much sooner than that run ended; later, the program may simply have ended on its own
(inconclusive: SKIP)."""


def run_checks(image: str, options: CheckOptions | None = None, *,
               settings: Settings | None = None, client: Any = None) -> Report:
    """Run the selected checks against ``image`` (which must be in the local engine).

    Raises :class:`CheckInputError` for input it cannot use (and DockerUnavailable without an
    engine) before anything runs; a check that cannot be judged is SKIP with the reason.
    Every container, network and temporary directory made is gone when this returns.
    """
    options = (options or CheckOptions()).validated()
    selected = select(options.checks, ALL_CHECKS)
    settings = settings or Settings.from_environ()
    own_client = client is None
    client = client or reachable_client()
    try:
        image_present(client, image)
        with tempfile.TemporaryDirectory(prefix="optml-check-") as scratch:
            session = _Session(image, options, settings, client, Path(scratch))
            return Report(image, tuple(session.run(selected)))
    finally:
        if own_client:
            client.close()


class _Session:
    """One check run: the runs it made and what later checks reuse from earlier ones."""

    def __init__(self, image: str, options: CheckOptions, settings: Settings, client: Any,
                 scratch: Path) -> None:
        self.image = image
        self.options = options
        self.client = client
        self.scratch = scratch
        self.trainer = TrainingRunner(settings, client, scratch / "jobs")
        self.settings = settings
        self.request = self._request()
        self.baseline: Any = None
        self.baseline_model: Path | None = None
        self.staged_model = self._stage_model_data()

    def _request(self) -> dict[str, Any]:
        o = self.options
        output = self.scratch / "output"
        if o.job is not None:
            return jobs.load_job(Path(o.job), self.image, output, o.hyperparameters,
                                 o.environment)
        request = jobs.generated_request(self.image, self.scratch / "data", output,
                                         o.hyperparameters, o.environment)
        jobs.job_spec(request)
        return request

    def run(self, selected: Sequence[str]) -> list[CheckResult]:
        results: list[CheckResult] = []
        serving = [n for n in selected if n in SERVE_CHECKS]
        failing = self._failing_request() if "failure-file" in selected else None
        if failing is not None:  # refuse bad --failing-* input before any container runs
            jobs.job_spec(failing[0], failing[1])
        if {"train", "train-sigterm"} & set(selected) or \
                (serving and self.options.model_data is None):
            self._run_baseline()  # train-sigterm judges against the unsignalled run
        if "train" in selected:
            results.append(self._judge_train())
        if failing is not None:
            results.append(self._check_failure(*failing))
        if "train-sigterm" in selected:
            results.append(self._check_train_sigterm())
        if serving:
            results.extend(self._serve_checks(serving))
        return results

    # -- training --------------------------------------------------------------------------
    def _run_baseline(self) -> None:
        spec = jobs.job_spec(jobs.renamed(self.request), "the job")
        keep = self.scratch / "trained-model"
        self.baseline = self.trainer.run(spec, self.options.train_timeout, keep_model=keep)
        if self.baseline.exit_code == 0 and self.baseline.model_files:
            self.baseline_model = keep

    def _judge_train(self) -> CheckResult:
        run = self.baseline
        what = f"job {self.options.job}" if self.options.job else "the generated job"
        if run.start_error:
            return fail_result("train", f"the container did not start: {run.start_error}")
        if run.timed_out:
            reason = (f"{what} did not finish within {secs(self.options.train_timeout)} "
                      f"(killed){log_excerpt(run.log_tail)}")
            return fail_result("train", reason, run.seconds)
        if run.exit_code != 0:
            failure = (f"; failure file: {one_line(run.failure_text)}" if run.failure_text
                       else "; no failure file")
            reason = f"{what} exited {run.exit_code}{failure}{log_excerpt(run.log_tail)}"
            return fail_result("train", reason, run.seconds)
        if not run.model_files:
            reason = (f"{what} exited 0 but /opt/ml/model is empty: the job's model.tar.gz "
                      f"would hold nothing{log_excerpt(run.log_tail)}")
            return fail_result("train", reason, run.seconds)
        reason = (f"{what} exited 0 in {secs(run.seconds)} and wrote "
                  f"{file_list(run.model_files)} to /opt/ml/model")
        return pass_result("train", reason, run.seconds)

    def _failing_request(self) -> tuple[dict[str, Any], str, bool]:
        """(request, how it was made to fail, whether that is the generic trigger)."""
        o = self.options
        if o.failing_job is not None:
            return (jobs.load_job(Path(o.failing_job), self.image, self.scratch / "output",
                                  o.hyperparameters, o.environment),
                    f"the --failing-job {o.failing_job}", False)
        if o.failing_environment or o.failing_hyperparameters:
            failing = jobs.renamed(self.request)
            for key, extra in (("Environment", o.failing_environment),
                               ("HyperParameters", o.failing_hyperparameters)):
                failing[key] = {**(failing.get(key) or {}), **extra}
            named = ", ".join(f"{k}={v}" for k, v in {**o.failing_environment,
                                                      **o.failing_hyperparameters}.items())
            return failing, f"the job with {named}", False
        return jobs.without_channels(self.request), "the job without its channels", True

    def _check_failure(self, request: dict[str, Any], what: str, generic: bool) -> CheckResult:
        run = self.trainer.run(jobs.job_spec(request, what), self.options.train_timeout)
        if run.start_error:
            return fail_result("failure-file", f"the container did not start: {run.start_error}")
        if run.timed_out:
            reason = f"{what} did not finish within {secs(self.options.train_timeout)} (killed)"
            return fail_result("failure-file", reason, run.seconds)
        if run.exit_code == 0 and not generic:
            reason = (f"{what} exited 0, so no failure could be observed: give a job that "
                      "makes it fail")
            return fail_result("failure-file", reason, run.seconds)
        if run.exit_code == 0:
            reason = ("the program exited 0 even without its channels, so no failure could be "
                      "triggered; give a job that fails with --failing-job")
            return skip_result("failure-file", reason, run.seconds)
        if run.failure_text is None:
            reason = (f"{what} exited {run.exit_code} without writing /opt/ml/output/failure "
                      "(the job's FailureReason would say nothing useful)"
                      f"{log_excerpt(run.log_tail)}")
            return fail_result("failure-file", reason, run.seconds)
        if not run.failure_text.strip():
            reason = f"{what} exited {run.exit_code} and left /opt/ml/output/failure empty"
            return fail_result("failure-file", reason, run.seconds)
        reason = f"{what} exited {run.exit_code}; failure file: {one_line(run.failure_text)}"
        return pass_result("failure-file", reason, run.seconds)

    def _signal_after(self) -> float:
        if self.options.sigterm_after is not None:
            return self.options.sigterm_after
        base = self.baseline
        if base is not None and not base.timed_out and base.exit_code is not None:
            return min(SIGTERM_AFTER_MAX, base.seconds / 2)
        return SIGTERM_AFTER_DEFAULT

    def _check_train_sigterm(self) -> CheckResult:
        grace = self.options.grace
        after = self._signal_after()
        spec = jobs.job_spec(jobs.renamed(self.request), "the job")
        run = self.trainer.run(spec, self.options.train_timeout, signal_after=after, grace=grace)
        if run.start_error:
            reason = f"the container did not start: {run.start_error}"
            return fail_result("train-sigterm", reason)
        if run.exited_before_signal:
            reason = (f"the program ended ({run.exit_code}) after {secs(run.seconds)}, before "
                      f"SIGTERM was due at {secs(after)}: give a longer job (--job) or a "
                      "smaller --sigterm-after")
            return skip_result("train-sigterm", reason, run.seconds)
        if run.signalled_at is None:  # timed out before the signal was due
            reason = f"the job did not reach the SIGTERM at {secs(after)}"
            return fail_result("train-sigterm", reason, run.seconds)
        if run.exit_code is None:
            reason = (f"still running {secs(grace)} after SIGTERM (sent at "
                      f"{secs(run.signalled_at)}), so the service would SIGKILL it: the signal "
                      "does not reach the program or it is ignored (a PID 1 without a SIGTERM "
                      "handler ignores it; use an exec-form ENTRYPOINT that forwards signals)"
                      f"{log_excerpt(run.log_tail)}")
            return fail_result("train-sigterm", reason, run.seconds)
        after_signal = run.seconds_after_signal or 0.0
        if run.exit_code == SIGKILL_EXIT:
            reason = f"exited {SIGKILL_EXIT} (SIGKILL) {secs(after_signal)} after SIGTERM"
            return fail_result("train-sigterm", reason, run.seconds)
        base = self.baseline
        if base is not None and base.exit_code == run.exit_code and \
                run.seconds >= NATURAL_END_FRACTION * base.seconds:
            reason = (f"inconclusive: exited {run.exit_code} {secs(run.seconds)} after the start, "
                      f"as the unsignalled run did ({secs(base.seconds)}), so it may have ended "
                      "on its own; give a longer job (--job) to tell")
            return skip_result("train-sigterm", reason, run.seconds)
        reason = (f"SIGTERM at {secs(run.signalled_at)} ended the container "
                  f"{secs(after_signal)} later with exit status {run.exit_code}")
        return pass_result("train-sigterm", reason, run.seconds)

    # -- serving ---------------------------------------------------------------------------
    def _stage_model_data(self) -> Path | None:
        """--model-data as a directory, staged before anything runs (a bad archive is bad
        input, not a failed check)."""
        if self.options.model_data is None:
            return None
        text = str(self.options.model_data)
        url = text if "://" in text else Path(text).resolve().as_uri()
        try:
            return stage_model_data(url, self.scratch / "model", self.settings.environ)
        except StagingError as exc:
            raise CheckInputError(f"--model-data {text}: {exc}") from None

    def _model_dir(self) -> tuple[Path | None, str]:
        """The directory to mount at /opt/ml/model, or None and why there is none."""
        if self.staged_model is not None:
            return self.staged_model, f"--model-data {self.options.model_data}"
        if self.baseline_model is None:
            return None, "no model to serve: the train run left none and no --model-data was given"
        return self.baseline_model, "the train run's model"

    def _serve_checks(self, names: Sequence[str]) -> list[CheckResult]:

        model_dir, why = self._model_dir()
        if model_dir is None:
            return [skip_result(n, why) for n in names]
        runner = ServingRunner(self.client, secrets.token_hex(4), self.scratch)
        try:
            return ServingChecks(self.image, self.options, runner, model_dir, names).run()
        finally:
            runner.close()
