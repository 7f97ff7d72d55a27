"""Drive the image under test in Docker exactly as local mode does, and observe what happened.

Training runs go through local mode's own Docker training backend (the same mounts, command,
environment and network as ``optml local train``), one host per run; serving goes through the
endpoint backend (``serve``, the model mounted read-only at ``/opt/ml/model``, port 8080
published on 127.0.0.1). What this module adds is observation: exit status, time, what landed in
``/opt/ml/model`` and ``/opt/ml/output/failure``, and signals sent at chosen moments.

Everything created is labelled: training containers and networks with ``optml.job=optml-check-*``
(the training backend's label), serving containers and networks with ``optml.check=<run id>``;
:func:`sweep` removes what a killed check run left behind.
"""

from __future__ import annotations

import collections
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_mode.check.errors import CheckInputError
from local_mode.check.jobs import JOB_NAME_PREFIX
from local_mode.client_base import arn
from local_mode.cluster import ContainerStartFailed
from local_mode.cluster.docker import DockerBackend
from local_mode.docker_engine import (
    CHECK_LABEL,
    JOB_LABEL,
    ImageNotFound,
    ignore_missing,
    label_values,
    require_image,
)
from local_mode.docker_engine import sweep as sweep_labelled
from local_mode.endpoints.backends.docker import DockerServeContainer, DockerServingBackend
from local_mode.endpoints.spec import ContainerSpec
from local_mode.training import hosts as hostlib
from local_mode.training.spec import TrainingJobSpec, platform_environment
from local_mode.training.workload import TrainingWorkload
from toolkit.layout import Layout
from toolkit.settings import Settings

HOST = "algo-1"
POLL_SECONDS = 0.05
LOG_LINES = 40
"""How many of a container's last output lines are kept for the reasons of failed checks."""
FAILURE_EXCERPT = 300
SIGKILL_EXIT = 137
"""128 + 9: the container was killed, not stopped by its own program."""


def image_present(client: Any, image: str) -> None:
    """CheckInputError naming ``image`` when the engine does not have it (never pulled)."""
    import docker.errors

    try:
        require_image(client, image, "IMAGE")
    except ImageNotFound as exc:  # bad input of the command: one line, exit status 2
        raise CheckInputError(exc.message) from None
    except docker.errors.APIError as exc:
        raise CheckInputError(f"image {image!r}: the engine refused to inspect it "
                              f"({exc.explanation or exc})") from None


@dataclass(frozen=True)
class TrainingOutcome:
    """What one training run did, as seen from outside the container."""

    exit_code: int | None
    """None when the run had to be killed (it outlived its timeout or the grace)."""
    seconds: float
    """From the container's start to its exit (or to the kill)."""
    model_files: tuple[str, ...]
    failure_text: str | None
    """The content of /opt/ml/output/failure (cut), None when the file does not exist."""
    log_tail: str
    signalled_at: float | None = None
    """Seconds after the start at which SIGTERM was sent (None: not sent)."""
    exited_before_signal: bool = False
    timed_out: bool = False
    start_error: str | None = None
    """Why the engine could not start the container (nothing ran), None when it started."""

    @property
    def seconds_after_signal(self) -> float | None:
        if self.signalled_at is None:
            return None
        return self.seconds - self.signalled_at


class _Tail:
    """Keep the last lines of a container's output, read on a thread so the engine's attach
    stream never backs up into the program's writes."""

    def __init__(self, lines: Any) -> None:
        self._lines: collections.deque[bytes] = collections.deque(maxlen=LOG_LINES)
        self._thread = threading.Thread(target=self._read, args=(lines,), daemon=True,
                                        name="optml-check-log")
        self._thread.start()

    def _read(self, lines: Any) -> None:
        for line in lines:
            self._lines.append(line)

    def text(self, wait: float = 2.0) -> str:
        self._thread.join(wait)
        return b"".join(self._lines).decode("utf-8", "replace")


class TrainingRunner:
    """Runs jobs of one check run, each in a fresh work tree under ``workdir``."""

    def __init__(self, settings: Settings, client: Any, workdir: Path) -> None:
        self.settings = settings
        self.client = client
        self.workdir = workdir

    def run(self, spec: TrainingJobSpec, timeout: float, signal_after: float | None = None,
            grace: float = 30.0, keep_model: Path | None = None) -> TrainingOutcome:
        """Run ``spec`` to its end (or kill it after ``timeout``); with ``signal_after``, send
        SIGTERM that many seconds after the start and kill it ``grace`` seconds later. The
        work tree is removed afterwards; ``keep_model`` receives a copy of /opt/ml/model."""
        root = self.workdir / spec.name
        host = hostlib.Host(HOST, 0, 1, Layout(root))
        backend = DockerBackend(self.settings, client=self.client)
        run = None
        try:
            self._lay_out(spec, host, backend)
            backend.prepare(TrainingWorkload(spec))
            env = platform_environment(spec, arn("training-job", spec.name))
            try:
                run = backend.start(TrainingWorkload(spec), host, [HOST], env)
            except ContainerStartFailed as exc:
                return TrainingOutcome(exit_code=None, seconds=0.0, model_files=(),
                                       failure_text=None, log_tail="", start_error=exc.message)
            started = time.monotonic()
            tail = _Tail(run.output())
            code, killed_at, signalled_at, before = self._supervise(
                run, started, timeout, signal_after, grace)
            seconds = (killed_at or time.monotonic()) - started
            run.cleanup()  # removes the container; hands root-written files back if need be
            if keep_model is not None and host.layout.model_dir.is_dir():
                shutil.copytree(host.layout.model_dir, keep_model, dirs_exist_ok=True)
            return TrainingOutcome(
                exit_code=code, seconds=seconds, model_files=_files(host.layout.model_dir),
                failure_text=_failure(host.layout.failure_file), log_tail=tail.text(),
                signalled_at=signalled_at, exited_before_signal=before,
                timed_out=killed_at is not None and signalled_at is None)
        finally:
            if run is not None:
                run.cleanup()
            backend.teardown()
            hostlib.make_removable(root)
            shutil.rmtree(root, ignore_errors=True)

    def _lay_out(self, spec: TrainingJobSpec, host: hostlib.Host, backend: DockerBackend) -> None:
        hostlib.write_config(spec, host, [HOST], backend.network_interface,
                             backend.path_seen_by(host, hostlib.container_checkpoint_path(spec)))
        for channel in spec.channels:
            try:
                hostlib.stage_files(channel, host, self.settings.environ)
            except Exception as exc:  # noqa: BLE001 - storage errors have many types
                raise CheckInputError(f"channel {channel.name!r} ({channel.uri}): cannot stage "
                                      f"its data ({exc})") from None

    @staticmethod
    def _supervise(run: Any, started: float, timeout: float, signal_after: float | None,
                   grace: float) -> tuple[int | None, float | None, float | None, bool]:
        """Wait for the exit; returns (exit code or None, kill time, signal offset, whether
        the program ended before the signal was due)."""
        deadline = started + timeout
        signal_at = None if signal_after is None else started + signal_after
        signalled: float | None = None
        while True:
            code = run.poll()
            now = time.monotonic()
            if code is not None:
                return code, None, signalled, signal_at is not None and signalled is None
            if signal_at is not None and signalled is None and now >= signal_at:
                run.terminate()
                signalled = now - started
                deadline = now + grace
            if now >= deadline:
                run.kill()
                return None, now, signalled, False
            time.sleep(POLL_SECONDS)


def _files(directory: Path) -> tuple[str, ...]:
    if not directory.is_dir():
        return ()
    return tuple(sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                        if p.is_file()))


def _failure(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"(unreadable: {exc})"
    return text[:FAILURE_EXCERPT]


class ServingRunner:
    """The one serving container of a check run, started by local mode's endpoint backend."""

    def __init__(self, client: Any, run_id: str, workdir: Path) -> None:
        self.run_id = run_id
        self.workdir = workdir
        self.backend = DockerServingBackend(owner=(CHECK_LABEL, run_id), client=client)

    def start(self, image: str, model_dir: Path,
              environment: Mapping[str, str]) -> tuple[DockerServeContainer, float]:
        """``docker run IMAGE serve``; returns the container and the monotonic time just
        before the engine was asked to create it (start-up time is counted from there)."""
        container = ContainerSpec(hostname="model", image=image, model_data_url=None,
                                  environment=dict(environment))
        self.backend.check(container, model_dir)
        began = time.monotonic()
        serving = self.backend.start(container, model_dir, self.workdir / "serve", {},
                                     self.workdir / "serve" / "container.log")
        return serving, began

    def signal(self, serving: DockerServeContainer, signal_name: str = "SIGTERM") -> None:
        """Signal the container; one that has stopped meanwhile is fine (the check then
        reports how it ended)."""
        ignore_missing(self.backend.client.api.kill, serving.container_id, signal=signal_name)

    def wait_exit(self, serving: DockerServeContainer, timeout: float) -> int | None:
        """The exit status once the container has stopped, None if it still runs."""
        import docker.errors
        import requests

        try:
            return int(self.backend.client.api.wait(serving.container_id,
                                                    timeout=max(timeout, 0.1))["StatusCode"])
        except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout):
            return None
        except docker.errors.NotFound:
            return None

    def close(self) -> None:
        self.backend.close()


def sweep(client: Any) -> int:
    """Remove containers and networks of check runs that were killed before their clean-up;
    returns how many were removed. Only check runs' objects are touched: training jobs whose
    name carries the check's prefix, and whatever carries the check's own label."""
    jobs = {name for name in label_values(client, JOB_LABEL) if name.startswith(JOB_NAME_PREFIX)}
    removed = sum(sweep_labelled(client, {JOB_LABEL: name}) for name in jobs)
    return removed + sweep_labelled(client, {CHECK_LABEL: None})  # any check run
