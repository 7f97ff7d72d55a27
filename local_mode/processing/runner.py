"""The process that runs one local processing job from InProgress to its end.

``create_processing_job`` starts it detached (:func:`local_mode.runners.spawn`: ``python -m
local_mode.processing.runner STATE_DIR NAME BACKEND``), as training jobs are; stop requests
arrive as SIGTERM. The hosts run on the same backends and under the same supervision as a
training job's (:mod:`local_mode.cluster`); what is a processing job's own is its tree
(:mod:`.hosts`), its command (:mod:`.workload`), its outputs (:mod:`.outputs`) and how it ends:
``ExitMessage`` from ``/opt/ml/output/message``, and the service's statuses and reasons.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from local_mode.cluster import Backend, Host
from local_mode.cluster.run import (
    REASON_CHARS,
    StopKind,
    job_main,
    make_hosts,
    release_hosts,
    run_hosts,
)
from local_mode.cluster.supervisor import PLATFORM, Periodic, Supervisor, out_of_memory_reason
from local_mode.error_text import message_of
from local_mode.processing import hosts as hostlib
from local_mode.processing.outputs import OutputUploader, OutputUploadFailed
from local_mode.processing.spec import ProcessingJobSpec
from local_mode.processing.workload import ProcessingWorkload
from local_mode.runners import PROCESSING
from local_mode.state import ResourceDir, now
from toolkit.settings import Settings

log = logging.getLogger("optml.local")

ALGORITHM_ERROR = "AlgorithmError: See job logs for more information"
"""The service's FailureReason for a program that exited non-zero."""
MESSAGE_READ_BYTES = 4 * REASON_CHARS
"""How much of a host's message file is read (a program may leave a huge one)."""


@dataclass
class ProcessingRunner:
    resource: ResourceDir
    spec: ProcessingJobSpec
    settings: Settings
    backend: Backend
    supervisor: Supervisor = field(init=False)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor.for_job(self.resource.logs_dir, self.settings)
        self.workload = ProcessingWorkload(self.spec)

    def log_line(self, text: str) -> None:
        self.supervisor.log.line(PLATFORM, text.encode())

    def request_stop(self, kind: str) -> None:
        self.supervisor.request_stop(kind)

    # -- the job ---------------------------------------------------------------------------
    def run(self) -> None:
        hosts: list[Host] = []
        failure: str | None = None
        uploader: OutputUploader | None = None
        stopped: str | None = None
        try:
            self.log_line("Starting: preparing the instances for processing")
            hosts = make_hosts(self.backend, self.workload, self.resource.work_dir)
            uploader = OutputUploader(self.spec.outputs, hosts, self.settings.environ)
            self._lay_out(hosts)
            if self.supervisor.stop_event.is_set():
                stopped = self.supervisor.stop_kind  # stopped before the hosts ran
            else:
                failure, stopped = self._process(hosts, uploader)
        except Exception as exc:  # every failure ends in a Failed job
            log.exception("processing job %s failed", self.spec.name)
            failure = f"{type(exc).__name__}: {message_of(exc)}"
            stopped = self.supervisor.stop_kind
        finally:
            try:
                self._finish(hosts, failure, stopped, uploader)
            finally:
                self.supervisor.log.close()

    def _lay_out(self, hosts: Sequence[Host]) -> None:
        description = self.resource.describe()
        names = [h.name for h in hosts]
        for host in hosts:
            hostlib.write_config(self.spec, description, host, names, self.backend)
        for entry in self.spec.inputs:
            if entry.input_mode == "Pipe":
                continue
            for host in hosts:
                copied = hostlib.stage_input(entry, host, self.settings.environ)
                self.log_line(f"{host.name}: input {entry.name}: {copied} bytes staged into "
                              f"{entry.local_path}")

    def _process(self, hosts: Sequence[Host], uploader: OutputUploader
                 ) -> tuple[str | None, str | None]:
        """Run the hosts to their end; the job's failure if a host failed, and why the hosts
        were stopped if they were. Both are decided when the hosts have ended: a stop that
        arrives later (while logs drain or containers go) finds a job whose program completed,
        and does not undo that."""
        timeout = float(self.spec.max_runtime_seconds or 86400 * 5)

        def feeders() -> Iterator[Any]:
            for entry in self.spec.inputs:
                if entry.input_mode == "Pipe":
                    for host in hosts:
                        yield hostlib.input_feeder(entry, host, self.settings.environ,
                                                   reader_timeout=timeout).start()

        self.resource.update(lambda d: d.__setitem__("ProcessingStartTime", now()))
        self.log_line("Processing: running the container on every instance")
        periodic = [Periodic(self.settings.local.continuous_upload_seconds,
                             uploader.sync_continuous)] \
            if any(o.continuous for o in self.spec.outputs) else []
        outcome = run_hosts(self.supervisor, self.backend, self.workload, hosts,
                            dict(self.spec.environment), feeders=feeders,
                            timers=self._timers(time.monotonic()),
                            on_stopping=self._on_stopping, periodic=periodic)
        stopped = outcome.stop_kind
        cause = outcome.first_failure()
        if cause is None or stopped is not None:
            return None, stopped
        run, code = cause
        detail = out_of_memory_reason(run.host.name, self.spec.instance_type) \
            if run.out_of_memory() else f"host {run.host.name} exited with code {code}"
        return f"{ALGORITHM_ERROR} ({detail})", None

    def _timers(self, began: float) -> Callable[[], str | None]:
        def due() -> str | None:
            limit = self.spec.max_runtime_seconds
            if limit and time.monotonic() - began > limit:
                return StopKind.MAX_RUNTIME
            return None
        return due

    def _on_stopping(self, kind: str | None) -> None:
        if kind is None:
            return  # a host failed: its peers are stopped, the job is not "Stopping"
        if kind == StopKind.USER:
            self.resource.update(lambda d: d.__setitem__("ProcessingJobStatus", "Stopping"))
        self.log_line(f"Stopping: stopping the processing job ({kind})")

    # -- the end ---------------------------------------------------------------------------
    def _finish(self, hosts: Sequence[Host], failure: str | None, kind: str | None,
                uploader: OutputUploader | None) -> None:
        if uploader is not None and hosts:
            try:
                uploader.sync_continuous(strict=True)  # what a Continuous output wrote last
                if failure is None and kind is None:
                    self.log_line("Uploading: uploading the outputs")
                    uploader.sync_all()
            except OutputUploadFailed as exc:
                log.exception("uploading outputs failed")
                failure = failure or f"{exc.code}: {exc.message}"
        message = _exit_message(hosts)
        release_hosts(self.backend, hosts)
        fields: dict[str, Any] = {"ProcessingEndTime": now()}
        if message:
            fields["ExitMessage"] = message
        if failure is not None:
            status = "Failed"
            fields["FailureReason"] = failure[:REASON_CHARS]
        elif kind == StopKind.MAX_RUNTIME:
            status = "Stopped"
            fields["FailureReason"] = (
                f"MaxRuntimeExceeded: the job ran longer than StoppingCondition."
                f"MaxRuntimeInSeconds ({self.spec.max_runtime_seconds} s)")
        elif kind is not None:
            status = "Stopped"
        else:
            status = "Completed"
        fields["ProcessingJobStatus"] = status
        self.resource.update(lambda d: d.update(fields))
        self.log_line(f"{status}: processing job {status.lower()}")


def _exit_message(hosts: Sequence[Host]) -> str | None:
    """The first host's ``/opt/ml/output/message`` that says anything (at most 1 KB)."""
    for host in hosts:
        try:
            with host.layout.exit_message_file.open("rb") as handle:
                text = handle.read(MESSAGE_READ_BYTES).decode("utf-8", "replace").strip()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
        if text:
            return text[:REASON_CHARS]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(PROCESSING, lambda context, backend: ProcessingRunner(
        context.resource, ProcessingJobSpec.from_request(context.resource.request()), context.settings,
        backend), argv)


if __name__ == "__main__":
    sys.exit(main())
