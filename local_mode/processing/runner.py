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
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from local_mode.cluster import Backend, Host, HostRun
from local_mode.cluster.choice import make_backend
from local_mode.cluster.supervisor import (
    PLATFORM,
    Periodic,
    Supervisor,
    out_of_memory_reason,
    start_hosts,
)
from local_mode.cluster.tree import make_removable
from local_mode.error_text import message_of
from local_mode.processing import hosts as hostlib
from local_mode.processing.outputs import OutputUploader
from local_mode.processing.spec import ProcessingJobSpec
from local_mode.processing.workload import ProcessingWorkload
from local_mode.runners import PROCESSING, runner_main
from local_mode.state import ResourceDir, now
from toolkit.layout import Layout
from toolkit.settings import Settings

log = logging.getLogger("optml.local")

MESSAGE_CHARS = 1024
"""ExitMessage and FailureReason are at most 1 KB on the service."""
USER_STOP = "Stopped"
MAX_RUNTIME = "MaxRuntimeExceeded"
ALGORITHM_ERROR = "AlgorithmError: See job logs for more information"
"""The service's FailureReason for a program that exited non-zero."""


@dataclass
class Outcome:
    """How the hosts ended (before uploads and teardown)."""

    exit_codes: dict[str, int] = field(default_factory=dict)
    failure: str | None = None


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
        work = self.resource.work_dir
        work.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: see the training runner
        work.chmod(0o700)
        hosts: list[Host] = []
        outcome = Outcome()
        uploader: OutputUploader | None = None
        try:
            self.log_line("Starting: preparing the instances for processing")
            self.backend.check(self.workload)
            names = self.backend.host_names(self.spec.instance_count)
            hosts = [Host(name, index, len(names), Layout(work / name))
                     for index, name in enumerate(names)]
            uploader = OutputUploader(self.spec.outputs, hosts, self.settings.environ)
            self.backend.prepare(self.workload)
            self._lay_out(hosts, names)
            if not self.supervisor.stop_event.is_set():
                outcome = self._process(hosts, names, uploader)
        except Exception as exc:  # every failure ends in a Failed job
            log.exception("processing job %s failed", self.spec.name)
            outcome.failure = f"{type(exc).__name__}: {message_of(exc)}"
        finally:
            self._finish(hosts, outcome, uploader)

    def _lay_out(self, hosts: Sequence[Host], names: list[str]) -> None:
        description = self.resource.describe()
        environ = self.settings.environ
        for host in hosts:
            hostlib.write_config(self.spec, description, host, names, self.backend)
        for entry in self.spec.inputs:
            if entry.input_mode == "Pipe":
                continue
            for host in hosts:
                copied = hostlib.stage_input(entry, host, environ)
                self.log_line(f"{host.name}: input {entry.name}: {copied} bytes staged into "
                              f"{entry.local_path}")

    def _process(self, hosts: Sequence[Host], names: list[str],
                 uploader: OutputUploader) -> Outcome:
        feeders = []
        runs: list[HostRun] = []
        pumps: list[threading.Thread] = []
        outcome = Outcome()
        began = time.monotonic()
        try:
            timeout = float(self.spec.max_runtime_seconds or 86400 * 5)
            for entry in self.spec.inputs:
                if entry.input_mode == "Pipe":
                    for host in hosts:
                        feeders.append(hostlib.input_feeder(entry, host, self.settings.environ,
                                                            reader_timeout=timeout).start())
            environment = dict(self.spec.environment)
            self.resource.update(lambda d: d.__setitem__("ProcessingStartTime", now()))
            self.log_line("Processing: running the container on every instance")
            start_hosts(self.backend, self.workload, hosts, names, environment, runs)
            pumps = [self.supervisor.pump(run) for run in runs]
            periodic = [Periodic(self.settings.local.continuous_upload_seconds,
                                 uploader.sync_continuous)] \
                if any(o.continuous for o in self.spec.outputs) else []
            outcome.exit_codes = self.supervisor.supervise(
                runs, timers=self._timers(began), on_stopping=self._on_stopping,
                periodic=periodic)
            for pump in pumps:
                pump.join(timeout=10)
        finally:
            for feeder in feeders:
                feeder.stop()
            for run in runs:
                run.cleanup()
        by_name = {run.host.name: run for run in runs}
        for host_name, code in outcome.exit_codes.items():  # in the order the hosts exited:
            run = by_name[host_name]                       # the first failure is the cause
            if code != 0 and self.supervisor.stop_kind is None:
                detail = out_of_memory_reason(run.host.name, self.spec.instance_type) \
                    if run.out_of_memory() else f"host {run.host.name} exited with code {code}"
                outcome.failure = f"{ALGORITHM_ERROR} ({detail})"
                break
        return outcome

    def _timers(self, began: float) -> Callable[[], str | None]:
        def due() -> str | None:
            limit = self.spec.max_runtime_seconds
            if limit and time.monotonic() - began > limit:
                return MAX_RUNTIME
            return None
        return due

    def _on_stopping(self, kind: str | None) -> None:
        if kind is None:
            return  # a host failed: its peers are stopped, the job is not "Stopping"
        if kind == USER_STOP:
            self.resource.update(lambda d: d.__setitem__("ProcessingJobStatus", "Stopping"))
        self.log_line(f"Stopping: stopping the processing job ({kind})")

    # -- the end ---------------------------------------------------------------------------
    def _finish(self, hosts: Sequence[Host], outcome: Outcome,
                uploader: OutputUploader | None) -> None:
        failure = outcome.failure
        kind = self.supervisor.stop_kind
        if uploader is not None and hosts:
            try:
                uploader.sync_continuous()  # what a Continuous output wrote last
                if failure is None and kind is None:
                    self.log_line("Uploading: uploading the outputs")
                    uploader.sync_all()
            except Exception as exc:
                log.exception("uploading outputs failed")
                failure = failure or f"ClientError: uploading the outputs failed: " \
                                     f"{message_of(exc)}"
        try:
            # before the terminal status: a job that says it ended holds no containers/networks
            self.backend.teardown()
        except Exception:  # the job's status must still be written
            log.exception("tearing down the %s backend failed", self.backend.name)
        fields: dict[str, Any] = {"ProcessingEndTime": now()}
        message = _exit_message(hosts)
        if message:
            fields["ExitMessage"] = message
        if failure is not None:
            status = "Failed"
            fields["FailureReason"] = failure[:MESSAGE_CHARS]
        elif kind == MAX_RUNTIME:
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
        for host in hosts:  # what containers wrote read-only; runner_main removes the tree
            make_removable(host.layout.root)


def _exit_message(hosts: Sequence[Host]) -> str | None:
    """The first host's ``/opt/ml/output/message`` that says anything (at most 1 KB)."""
    for host in hosts:
        try:
            text = host.layout.exit_message_file.read_text(encoding="utf-8",
                                                           errors="replace").strip()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
        if text:
            return text[:MESSAGE_CHARS]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    with runner_main(PROCESSING, argv) as context:
        spec = ProcessingJobSpec.from_request(context.resource.request())
        runner = ProcessingRunner(context.resource, spec, context.settings,
                                  make_backend(context.backend, context.settings))
        context.on_stop(lambda: runner.request_stop(USER_STOP))
        runner.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
