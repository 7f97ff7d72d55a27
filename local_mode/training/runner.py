"""The process that runs one local training job from Starting to its end.

``create_training_job`` starts it detached (:func:`local_mode.runners.spawn`: ``python -m
local_mode.training.runner STATE_DIR NAME BACKEND``), so the job goes on whether or not the
creating process waits, and any process can describe or stop it through the state directory.
Stop requests arrive as SIGTERM to this runner (:func:`local_mode.runners.runner_main`).
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from local_mode.cluster import Backend
from local_mode.cluster import run as cluster_run
from local_mode.cluster.run import job_main, make_hosts, release_hosts, run_hosts
from local_mode.cluster.supervisor import PLATFORM, Periodic, Supervisor, out_of_memory_reason
from local_mode.cluster.sync import DirectorySync
from local_mode.error_text import message_of
from local_mode.runners import TRAINING
from local_mode.state import ResourceDir, now
from local_mode.storage import upload_file
from local_mode.training import artifacts
from local_mode.training import hosts as hostlib
from local_mode.training.metrics import MetricExtractor
from local_mode.training.spec import (
    MODEL_ARTIFACT,
    OUTPUT_ARTIFACT,
    TrainingJobSpec,
    platform_environment,
)
from local_mode.training.workload import TrainingWorkload, for_backend
from toolkit.settings import Settings

log = logging.getLogger("optml.local")

FAILURE_REASON_CHARS = cluster_run.REASON_CHARS
STAGING_PROGRESS_INTERVAL = 1.0


class StopKind(cluster_run.StopKind):
    MAX_WAIT = "MaxWaitTimeExceeded"
    SPOT = "Interrupted"


@dataclass
class AttemptResult:
    exit_codes: dict[str, int]
    stop: str | None
    failure_reason: str | None
    training_seconds: float


@dataclass
class JobRunner:
    resource: ResourceDir
    spec: TrainingJobSpec
    settings: Settings
    backend: Backend
    supervisor: Supervisor = field(init=False)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor.for_job(self.resource.logs_dir, self.settings)
        self.spec = for_backend(self.spec, self.backend)  # containers see local code mounted
        self.workload = TrainingWorkload(self.spec)

    @property
    def stop_event(self) -> threading.Event:
        return self.supervisor.stop_event

    @property
    def stop_kind(self) -> str | None:
        return self.supervisor.stop_kind

    # -- state -----------------------------------------------------------------------------
    def transition(self, secondary: str, message: str, status: str | None = None,
                   **fields: Any) -> None:
        stamp = now()

        def change(d: dict[str, Any]) -> None:
            transitions = d.setdefault("SecondaryStatusTransitions", [])
            if transitions and "EndTime" not in transitions[-1]:
                transitions[-1]["EndTime"] = stamp
            transitions.append({"Status": secondary, "StartTime": stamp,
                                "StatusMessage": message})
            d["SecondaryStatus"] = secondary
            if status is not None:
                d["TrainingJobStatus"] = status
            d.update(fields)

        self.resource.update(change)
        self._log_line(PLATFORM, f"{secondary}: {message}".encode())

    def _close_transitions(self) -> None:
        def change(d: dict[str, Any]) -> None:
            transitions = d.get("SecondaryStatusTransitions", [])
            if transitions and "EndTime" not in transitions[-1]:
                transitions[-1]["EndTime"] = now()
        self.resource.update(change)

    # -- logs and stop --------------------------------------------------------------------
    def _log_line(self, host: str, line: bytes) -> None:
        self.supervisor.log.line(host, line)

    def request_stop(self, kind: str) -> None:
        self.supervisor.request_stop(kind)

    # -- the job ---------------------------------------------------------------------------
    def run(self) -> None:
        started = time.monotonic()
        billable = 0.0
        training_total = 0.0
        result: AttemptResult | None = None
        failure: str | None = None
        hosts: list[hostlib.Host] = []
        try:
            self.transition("Starting", "Preparing the instances for training",
                            status="InProgress")
            hosts = make_hosts(self.backend, self.workload, self.resource.work_dir)
            names = [h.name for h in hosts]
            attempt = 0
            spot_after = self.settings.local.spot_interruption_after_seconds \
                if self.spec.managed_spot else None
            while True:
                attempt += 1
                self._prepare_hosts(hosts, names)
                if self.stop_event.is_set():
                    result = AttemptResult({}, self.stop_kind, None, 0.0)
                    break
                result = self._train(hosts, names, started,
                                     spot_after if attempt == 1 else None)
                training_total += result.training_seconds
                billable += result.training_seconds
                if result.stop != StopKind.SPOT:
                    break
                self.supervisor.reset()
                self.transition("Interrupted", "Training job interrupted by a (simulated) spot "
                                "capacity reclaim; restarting from the last checkpoint")
                self.transition("Restarting", "Restarting training job with restored "
                                "checkpoints")
                for host in hosts:
                    _reset_host_outputs(host)
        except Exception as exc:  # every failure ends in a Failed job
            log.exception("job %s failed", self.spec.name)
            failure = f"{type(exc).__name__}: {message_of(exc)}"
        finally:
            try:
                self._finish(hosts, result, failure, started, training_total, billable)
            finally:
                self.supervisor.log.close()

    def _prepare_hosts(self, hosts: Sequence[hostlib.Host], names: list[str]) -> None:
        self.transition("Downloading", "Downloading input data")
        environ = self.settings.environ
        for host in hosts:
            hostlib.write_config(self.spec, host, names, self.backend.network_interface,
                                 self.backend.path_seen_by(
                                     host, hostlib.container_checkpoint_path(self.spec)))
        if self.spec.checkpoint_uri:
            restored = artifacts.restore_checkpoints(
                self.spec.checkpoint_uri,
                [hostlib.host_checkpoint_dir(self.spec, h) for h in hosts], environ)
            if restored:
                self._log_line(PLATFORM, f"restored {restored} checkpoint file(s) from "
                                        f"{self.spec.checkpoint_uri}".encode())
        for channel in self.spec.channels:
            if channel.input_mode == "Pipe":
                continue
            for host in hosts:
                hostlib.make_removable(host.layout.channel_dir(channel.name))
                shutil.rmtree(host.layout.channel_dir(channel.name), ignore_errors=True)
                copied = hostlib.stage_files(channel, host, environ,
                                             progress=self._staging_progress(host.name))
                self._log_line(PLATFORM, f"{host.name}: channel {channel.name}: "
                                        f"{copied} bytes staged".encode())

    def _staging_progress(self, host: str) -> Callable[[str, int], None]:
        """A progress callback that logs ``... bytes staged so far`` at most once per interval,
        so a watcher of a large channel sees it move without one log line per object."""
        next_report = time.monotonic() + STAGING_PROGRESS_INTERVAL

        def report(channel: str, copied: int) -> None:
            nonlocal next_report
            if time.monotonic() >= next_report:
                next_report = time.monotonic() + STAGING_PROGRESS_INTERVAL
                self._log_line(PLATFORM, f"{host}: channel {channel}: {copied} bytes staged "
                                        "so far".encode())
        return report

    def _environment(self) -> dict[str, str]:
        return platform_environment(self.spec, self.resource.describe()["TrainingJobArn"])

    def _train(self, hosts: Sequence[hostlib.Host], names: list[str], job_started: float,
               spot_after: float | None) -> AttemptResult:
        self.transition("Training", "Training in progress")
        metrics = MetricExtractor(self.spec.metric_definitions, self.resource.metrics_file)
        sync = DirectorySync(
            self.spec.checkpoint_uri, [hostlib.host_checkpoint_dir(self.spec, h) for h in hosts],
            self.settings.environ, "CheckpointConfig.S3Uri") if self.spec.checkpoint_uri else None
        timeout = float(self.spec.max_runtime_seconds or 86400 * 5)

        def feeders() -> Iterator[Any]:
            for channel in self.spec.channels:
                if channel.input_mode == "Pipe":
                    for host in hosts:
                        yield hostlib.pipe_feeder(channel, host, self.settings.environ,
                                                  reader_timeout=timeout).start()

        began = time.monotonic()
        try:
            outcome = run_hosts(
                self.supervisor, self.backend, self.workload, hosts, self._environment(),
                feeders=feeders,
                on_line=lambda line: metrics.feed(line.decode("utf-8", "replace"), now()),
                timers=self._timers(began, job_started, spot_after),
                on_stopping=self._on_stopping,
                periodic=[Periodic(self.settings.local.checkpoint_sync_seconds, sync.sync)]
                if sync is not None else [],
                after=(lambda: sync.sync(strict=True)) if sync is not None else None)
        finally:
            metrics.close()
            self.resource.update(
                lambda d: d.__setitem__("FinalMetricDataList", metrics.final_metric_data()))
        reason = None
        cause = outcome.first_failure()
        if cause is not None:
            run, code = cause
            host = next(h for h in hosts if h.name == run.host.name)
            reason = _failure_reason(host, code, run.out_of_memory(), self.spec.instance_type)
        return AttemptResult(outcome.exit_codes, outcome.stop_kind, reason,
                             time.monotonic() - began)

    def _timers(self, began: float, job_started: float, spot_after: float | None
                ) -> Callable[[], str | None]:
        """The stopping conditions: max runtime (of this attempt), max wait (since the job was
        created), and the simulated spot interruption."""
        def due() -> str | None:
            elapsed = time.monotonic() - began
            if self.spec.max_runtime_seconds and elapsed > self.spec.max_runtime_seconds:
                return StopKind.MAX_RUNTIME
            if self.spec.max_wait_seconds and \
                    time.monotonic() - job_started > self.spec.max_wait_seconds:
                return StopKind.MAX_WAIT
            if spot_after is not None and elapsed > spot_after:
                return StopKind.SPOT
            return None
        return due

    def _on_stopping(self, kind: str | None) -> None:
        if kind is not None:
            self.transition("Stopping", f"Stopping the training job ({kind})",
                            status="Stopping" if kind == StopKind.USER else None)

    # -- the end ---------------------------------------------------------------------------
    def _finish(self, hosts: Sequence[hostlib.Host], result: AttemptResult | None,
                failure: str | None, started: float, training_total: float,
                billable: float) -> None:
        fields: dict[str, Any] = {}
        try:
            if hosts:
                self.transition("Uploading", "Uploading generated training model")
                fields["ModelArtifacts"] = {"S3ModelArtifacts": self._upload(hosts)}
        except Exception as exc:
            log.exception("uploading artifacts failed")
            failure = failure or f"ClientError: uploading artifacts failed: {exc}"
        release_hosts(self.backend, hosts)
        if failure is None and result is not None and result.failure_reason and \
                result.stop in (None, StopKind.SPOT):
            failure = result.failure_reason
        if failure is not None:
            status, secondary, message = "Failed", "Failed", "Training job failed"
            fields["FailureReason"] = failure[:FAILURE_REASON_CHARS]
        elif result is not None and result.stop == StopKind.USER:
            status, secondary, message = "Stopped", "Stopped", "Training job stopped"
        elif result is not None and result.stop in (StopKind.MAX_RUNTIME, StopKind.MAX_WAIT):
            status, secondary = "Stopped", result.stop
            message = "Training job stopped: the stopping condition was reached"
        else:
            status, secondary, message = "Completed", "Completed", "Training job completed"
        end = now()
        fields["TrainingEndTime"] = end
        training = int(round(time.monotonic() - started))
        if self.spec.managed_spot:
            training = max(1, training)
            fields["BillableTimeInSeconds"] = min(training, self._spot_billable(billable))
        else:
            fields["BillableTimeInSeconds"] = training
        fields["TrainingTimeInSeconds"] = training
        self.transition(secondary, message, status=status, **fields)
        self._close_transitions()

    def _spot_billable(self, attempt_seconds: float) -> int:
        """A managed spot job's BillableTimeInSeconds as the service reports it: the attempts'
        time less the price table's spot saving for its type and region (at least 1 s). A table
        that cannot be read, or has no spot figure, leaves the time undiscounted with one
        warning: pricing never fails a job."""
        # Only a spot job reads the price table: loading it is kept off every other job's start.
        from local_mode.pricing.spot import spot_billable_seconds
        from local_mode.pricing.table import Missing, PriceTableError, load_prices

        undiscounted = max(1, int(round(attempt_seconds)))
        try:
            table = load_prices(self.settings.local.prices_file)
        except PriceTableError as exc:
            log.warning("job %s: BillableTimeInSeconds not reduced by the spot saving: the "
                        "price table cannot be read: %s", self.spec.name, message_of(exc))
            return undiscounted
        arn = self.resource.describe().get("TrainingJobArn")
        billed = spot_billable_seconds(attempt_seconds, self.spec.instance_type, arn, table)
        if isinstance(billed, Missing):
            log.warning("job %s: BillableTimeInSeconds not reduced by the spot saving: %s",
                        self.spec.name, billed.reason)
            return undiscounted
        return max(1, billed)

    def _upload(self, hosts: Sequence[hostlib.Host]) -> str:
        output = self.spec.artifacts_location
        scratch = self.resource.path / "artifacts"
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            model = scratch / MODEL_ARTIFACT
            artifacts.pack_directories([h.layout.model_dir for h in hosts], model)
            upload_file(model, self.spec.model_artifact_uri, self.settings.environ)
            data = scratch / OUTPUT_ARTIFACT
            artifacts.pack_directories([h.layout.output_data_dir for h in hosts], data)
            upload_file(data, output.join(OUTPUT_ARTIFACT).uri, self.settings.environ)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return self.spec.model_artifact_uri


def _reset_host_outputs(host: hostlib.Host) -> None:
    failure = host.layout.failure_file
    failure.unlink(missing_ok=True)


def _failure_reason(host: hostlib.Host, code: int, out_of_memory: bool = False,
                    instance_type: str = "") -> str:
    """The job's FailureReason: the host's failure file, as the service reports it; when the
    kernel killed the host for going over its memory limit, say that first (the failure file,
    if the toolkit could still write one, only knows that its child got SIGKILL)."""
    try:
        text = host.layout.failure_file.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        text = ""
    if out_of_memory:
        oom = out_of_memory_reason(host.name, instance_type)
        return (f"{oom} {text}" if text else oom)[:FAILURE_REASON_CHARS]
    if text:
        return text[:FAILURE_REASON_CHARS]
    return f"AlgorithmError: host {host.name} exited with code {code} (no failure file)"


def main(argv: Sequence[str] | None = None) -> int:
    return job_main(TRAINING, lambda context, backend: JobRunner(
        context.resource, TrainingJobSpec.from_request(context.resource.request()), context.settings,
        backend), argv)


if __name__ == "__main__":
    sys.exit(main())
