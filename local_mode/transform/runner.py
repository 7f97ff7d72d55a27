"""The process that runs one local batch transform job: ``python -m local_mode.transform.runner
STATE NAME BACKEND``, started detached by ``create_transform_job``; SIGTERM stops it.

1. start ``TransformResources.InstanceCount`` instances (each the model's container(s)) with
   ``SAGEMAKER_BATCH=true`` and the job's settings in the environment; wait for ``/ping``;
2. read ``/execution-parameters``: job settings win over the container's, which win over the
   defaults; check the payload limits;
3. every input object is one unit of work, taken from a shared queue by
   ``MaxConcurrentTransforms`` drivers per instance; a driver splits and batches its file and keeps
   up to ``MaxConcurrentTransforms`` requests in flight on its instance, writing results in input
   order to a temporary file that becomes ``<file>.out`` only if every batch succeeded;
4. a failed file is named in FailureReason; the others still finish.
"""

from __future__ import annotations

import gzip
import logging
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

from local_mode.docker_engine import TRANSFORM_LABEL
from local_mode.endpoints.backends import Backend, Container
from local_mode.endpoints.backends.choice import make_backend
from local_mode.endpoints.spec import ModelSpec
from local_mode.endpoints.staging import stage_model_data
from local_mode.error_text import message_of
from local_mode.errors import ResourceNotFound
from local_mode.runners import TRANSFORM, runner_main
from local_mode.state import ResourceDir, StateStore, now, write_json_atomic
from local_mode.storage import Location, ManifestSource, open_prefix, relative_key, upload_file
from local_mode.transform.filters import FilterError, record_format
from local_mode.transform.invoke import InstanceClient, InvocationError
from local_mode.transform.records import Batch, RecordTooLarge, batches, split_records
from local_mode.transform.spec import Effective, TransformJobSpec
from toolkit.channels.sources import ObjectSource
from toolkit.formats.errors import FormatError
from toolkit.settings import Settings

log = logging.getLogger("optml.local.transform")

FAILURE_REASON_CHARS = 1024
PING_INTERVAL = 0.05
STARTUP_TIMEOUT = 600.0
PROGRESS_INTERVAL = 0.2
STREAM_CHUNK = 1 << 20


class Stopped(Exception):
    """StopTransformJob arrived."""


class ContainersNotReady(Exception):
    """The model's containers never became ready (exited, model load failed, timed out): the
    job fails before any file is read, with the container's reason."""


class FileFailed(Exception):
    """One input file failed; the message is its part of FailureReason."""


@dataclass
class Progress:
    files_total: int = 0
    files_done: int = 0
    files_failed: int = 0
    records_done: int = 0


class TransformRunner:
    def __init__(self, resource: ResourceDir, store: StateStore, spec: TransformJobSpec,
                 settings: Settings, backend: Backend) -> None:
        self.resource, self.store, self.spec = resource, store, spec
        self.settings, self.backend = settings, backend
        self.stop = threading.Event()
        self.containers: list[Container] = []
        self.progress = Progress()
        self._progress_lock = threading.Lock()
        self._last_progress = 0.0
        self.failures: list[str] = []

    # -- state -----------------------------------------------------------------------------
    def _set(self, **fields: Any) -> None:
        self.resource.update(lambda d: d.update(fields))

    def _report(self, force: bool = False, **delta: int) -> None:
        with self._progress_lock:
            for key, value in delta.items():
                setattr(self.progress, key, getattr(self.progress, key) + value)
            if force or time.monotonic() - self._last_progress > PROGRESS_INTERVAL:
                self._last_progress = time.monotonic()
                p = self.progress
                write_json_atomic(self.resource.path / "progress.json", {
                    "FilesTotal": p.files_total, "FilesDone": p.files_done,
                    "FilesFailed": p.files_failed, "RecordsDone": p.records_done})

    # -- the job ---------------------------------------------------------------------------
    def run(self) -> None:
        failure: str | None = None
        clients: list[InstanceClient] = []
        try:
            self._set(TransformJobStatus="InProgress", TransformStartTime=now())
            clients = self._start_instances()
            parameters = clients[0].execution_parameters()
            effective = self.spec.effective(parameters)
            log.info("running with %s (container's /execution-parameters: %s)", effective,
                     parameters)
            self._set(MaxConcurrentTransforms=effective.max_concurrent,
                      MaxPayloadInMB=effective.max_payload_mb, BatchStrategy=effective.strategy)
            source, objects = self._objects()
            self._report(force=True, files_total=len(objects))
            self._transform_all(clients, source, objects, effective)
            if self.failures:
                failure = (f"ClientError: {len(self.failures)} of {len(objects)} input file(s) "
                           f"failed: " + "; ".join(self.failures))
        except Stopped:
            pass
        except Exception as exc:
            log.exception("transform job failed")
            failure = f"{type(exc).__name__}: {message_of(exc)}"
        finally:
            self._report(force=True)
            # Connections closed first: a server stopping gracefully keeps a kept-alive
            # connection open a while (gunicorn: 2 s) in case a request is on its way.
            for client in clients:
                client.close()
            for container in self.containers:
                container.stop(30.0)
            fields: dict[str, Any] = {"TransformEndTime": now()}
            if self.stop.is_set():
                fields["TransformJobStatus"] = "Stopped"
            elif failure:
                fields.update(TransformJobStatus="Failed",
                              FailureReason=failure[:FAILURE_REASON_CHARS])
            else:
                fields["TransformJobStatus"] = "Completed"
            self._set(**fields)

    def _start_instances(self) -> list[InstanceClient]:
        try:
            request = self.store.get("models", self.spec.model_name).request()
        except (ResourceNotFound, OSError, ValueError):  # deleted, or half written
            raise FileFailed(f"Could not find model \"{self.spec.model_name}\".") from None
        model = ModelSpec.from_request(request)
        if model.multi_model:
            raise FileFailed("a multi-model model cannot run a transform job")
        dirs = []
        for container in model.containers:
            dest = self.resource.work_dir / "models" / container.hostname
            dirs.append(stage_model_data(container.model_data_url, dest, self.settings.environ))
            self.backend.check(container, dirs[-1])
        env = dict(self.spec.environment)
        env["SAGEMAKER_BATCH"] = "true"
        if self.spec.max_payload_mb is not None:
            env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(self.spec.max_payload_mb)
        if self.spec.strategy is not None:
            env["SAGEMAKER_BATCH_STRATEGY"] = {"MultiRecord": "MULTI_RECORD",
                                               "SingleRecord": "SINGLE_RECORD"}[self.spec.strategy]
        if self.spec.max_concurrent is not None:
            env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(self.spec.max_concurrent)
        groups: list[list[Container]] = []
        for index in range(self.spec.instance_count):
            group = []
            for position, (container, model_dir) in enumerate(zip(model.containers, dirs)):
                started = self.backend.start(
                    container, model_dir, self.resource.work_dir / "instances" / str(index) /
                    container.hostname, env,
                    self.resource.logs_dir / f"instance-{index + 1}.log",
                    instance_type=self.spec.instance_type, position=position)
                self.containers.append(started)
                group.append(started)
            groups.append(group)
        self._wait_ready(groups)
        names = [c.hostname for c in model.containers]
        return [InstanceClient([c.port for c in g], names, self.spec.timeout) for g in groups]

    def _wait_ready(self, groups: list[list[Container]]) -> None:
        pingers = [InstanceClient([c.port for c in g], [c.hostname for c in g], 2.0)
                   for g in groups]
        try:
            self._ping_until_ready(groups, pingers)
        finally:
            for pinger in pingers:
                pinger.close()

    def _ping_until_ready(self, groups: list[list[Container]],
                          pingers: list[InstanceClient]) -> None:
        pending = set(range(len(groups)))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while pending:
            if self.stop.is_set():
                raise Stopped
            for index in list(pending):
                dead = [c for c in groups[index] if not c.alive()]
                if dead:
                    raise ContainersNotReady(f"container {dead[0].hostname} of instance "
                                             f"{index + 1} exited before it was ready:\n"
                                             f"{dead[0].log_tail()}")
                healthy, fatal = pingers[index].health()
                if fatal is not None:
                    raise ContainersNotReady(f"instance {index + 1}: the model failed to load: "
                                             f"{fatal}")
                if healthy:
                    pending.discard(index)
            if time.monotonic() > deadline:
                raise ContainersNotReady(f"the containers did not pass the ping health check "
                                         f"within {STARTUP_TIMEOUT:.0f} s")
            time.sleep(PING_INTERVAL)

    def _objects(self) -> tuple[ObjectSource, list[tuple[str, str]]]:
        """The source and its (key, output-relative-name) pairs, in order."""
        environ = self.settings.environ
        if self.spec.data_type == "ManifestFile":
            manifest = ManifestSource(self.spec.input_uri, environ)
            return manifest, [(k, k) for k in manifest.keys]
        source = open_prefix(self.spec.input_uri, environ)
        objects = [(o.key, relative_key(o.key, self.spec.input_uri))
                   for o in source.list_objects()]
        if not objects:
            raise FileFailed(f"no input objects under {self.spec.input_uri}")
        return source, objects

    def _transform_all(self, clients: Sequence[InstanceClient], source: ObjectSource,
                       objects: list[tuple[str, str]], effective: Effective) -> None:
        work: queue.Queue[tuple[str, str]] = queue.Queue()
        for item in objects:
            work.put(item)
        pools = [ThreadPoolExecutor(effective.max_concurrent, thread_name_prefix=f"i{n}")
                 for n in range(len(clients))]
        drivers = []
        try:
            for client, pool in zip(clients, pools):
                for _ in range(effective.max_concurrent):
                    driver = threading.Thread(target=self._drive,
                                              args=(work, client, pool, source, effective),
                                              daemon=True)
                    driver.start()
                    drivers.append(driver)
            for driver in drivers:
                driver.join()
        finally:
            for pool in pools:
                pool.shutdown(wait=True, cancel_futures=True)
        if self.stop.is_set():
            raise Stopped

    def _drive(self, work: queue.Queue[tuple[str, str]], client: InstanceClient,
               pool: ThreadPoolExecutor, source: ObjectSource, effective: Effective) -> None:
        while not self.stop.is_set():
            try:
                key, name = work.get_nowait()
            except queue.Empty:
                return
            try:
                self._one_file(key, name, client, pool, source, effective)
                self._report(files_done=1)
            except Stopped:
                return
            except Exception as exc:  # noqa: BLE001 - the file fails, the job goes on
                reason = str(exc) if isinstance(exc, (FileFailed, InvocationError, FilterError,
                                                      RecordTooLarge, FormatError)) \
                    else f"{type(exc).__name__}: {exc}"
                log.error("input %s failed: %s", key, reason)
                with self._progress_lock:
                    self.failures.append(f"{key}: {reason}")
                self._report(files_failed=1)

    # -- one file --------------------------------------------------------------------------
    def _open(self, source: ObjectSource, key: str) -> BinaryIO:
        raw = source.open_object(key)
        if self.spec.compression == "Gzip":
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        return raw

    def _one_file(self, key: str, name: str, client: InstanceClient, pool: ThreadPoolExecutor,
                  source: ObjectSource, effective: Effective) -> None:
        scratch = self.resource.work_dir / "out"
        scratch.mkdir(parents=True, exist_ok=True)
        temp = scratch / f"{threading.get_ident()}-{os.getpid()}.part"
        try:
            with self._open(source, key) as stream, temp.open("wb") as out:
                if effective.max_payload_mb == 0 and effective.strategy == "MultiRecord" and \
                        not self.spec.processing.active:
                    chunks: Iterator[bytes] = iter(lambda: stream.read(STREAM_CHUNK), b"")
                    data, _ = self._call(client, chunks, allow_retry=False)
                    out.write(self._assembled(data))
                    self._report(records_done=1)
                else:
                    self._batched(stream, key, client, pool, effective, out)
            target = Location.parse(self.spec.output_path, "S3OutputPath").join(name + ".out")
            upload_file(temp, target.uri, self.settings.environ)
        finally:
            temp.unlink(missing_ok=True)

    def _batched(self, stream: BinaryIO, key: str, client: InstanceClient,
                 pool: ThreadPoolExecutor, effective: Effective, out: BinaryIO) -> None:
        processing = self.spec.processing
        fmt = record_format(self.spec.content_type) if processing.active else ""
        originals: deque[bytes] = deque()

        def records() -> Iterator[bytes]:
            for record in split_records(stream, self.spec.split_type, key):
                originals.append(record)
                yield processing.filter_input(record, fmt) if processing.active else record

        window: deque[tuple[Batch, list[bytes], Future[tuple[bytes, str | None]]]] = deque()
        for batch in batches(records(), self.spec.split_type, effective.strategy,
                             effective.max_payload_mb):
            sources = [originals.popleft() for _ in batch.records]
            window.append((batch, sources, pool.submit(self._call, client, batch.body)))
            while len(window) >= effective.max_concurrent:
                self._write(window.popleft(), out, fmt)
        while window:
            self._write(window.popleft(), out, fmt)

    def _write(self, item: tuple[Batch, list[bytes], Future[tuple[bytes, str | None]]],
               out: BinaryIO, fmt: str) -> None:
        batch, sources, future = item
        data, response_type = future.result()
        processing = self.spec.processing
        if processing.per_record_output:
            outputs = [data.rstrip(b"\r\n")] if len(sources) == 1 else \
                data.rstrip(b"\r\n").split(b"\n")
            if len(outputs) != len(sources):
                raise FileFailed(f"batch {batch.index}: {len(sources)} records in but "
                                 f"{len(outputs)} output lines back, so outputs cannot be "
                                 "joined or filtered per record")
            try:
                out_fmt = record_format(response_type or self.spec.accept)
            except FilterError:
                out_fmt = fmt
            out.writelines(self._assembled(processing.finish(source_record, output.rstrip(b"\r"),
                                                            fmt, out_fmt)) for source_record, output in zip(sources, outputs))
        else:
            out.write(self._assembled(data))
        self._report(records_done=len(sources))

    def _assembled(self, data: bytes) -> bytes:
        """``AssembleWith=Line``: each result ends with one newline; ``None``: as it is."""
        if self.spec.assemble_with == "Line" and not data.endswith(b"\n"):
            return data + b"\n"
        return data

    def _call(self, client: InstanceClient, body: bytes | Iterator[bytes],
              allow_retry: bool = True) -> tuple[bytes, str | None]:
        attempts = 1 + (self.spec.retries if allow_retry else 0)
        last: Exception | None = None
        for attempt in range(attempts):
            if self.stop.is_set():
                raise Stopped
            try:
                return client.invoke(body, self.spec.content_type, self.spec.accept)
            except InvocationError as exc:
                last = exc
                if attempt + 1 < attempts:
                    time.sleep(min(0.05 * 2 ** attempt, 1.0))
        raise FileFailed(f"{last} (after {attempts} attempt(s); InvocationsMaxRetries="
                         f"{self.spec.retries})")


def main(argv: Sequence[str] | None = None) -> int:
    with runner_main(TRANSFORM, argv) as context:
        backend = make_backend(context.backend, context.settings.environ,
                               owner=(TRANSFORM_LABEL, context.resource.name),
                               state_dir=str(context.store.root),
                               stop_grace=context.settings.local.stop_grace_seconds)
        try:
            spec = TransformJobSpec.from_request(context.resource.request())
            runner = TransformRunner(context.resource, context.store, spec, context.settings,
                                     backend)
            context.on_stop(runner.stop.set)
            runner.run()
        finally:
            backend.close()  # whatever is left (Docker: containers, network)
    return 0


if __name__ == "__main__":
    sys.exit(main())
