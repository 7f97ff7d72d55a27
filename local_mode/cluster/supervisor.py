"""Watching a job's running hosts until every one has exited: their output into the job's log
files, stop requests (the user's, a time limit's, a failed peer's), SIGTERM then SIGKILL after the
grace period, and work that must happen every so often while they run (checkpoint sync,
continuous output upload).

Every kind of job that runs hosts (training, processing) supervises them this way; what a kind
adds is data: which timers stop it, what to do on a pass, what to write when it starts stopping.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from local_mode.cluster import Backend, Host, HostRun, Workload
from local_mode.log_times import append_line, times_path
from local_mode.state import make_private_dir, open_private
from toolkit.settings import Settings

logger = logging.getLogger("optml.local")

POLL_INTERVAL = 0.05
"""Longest the supervisor sleeps between looks at timers (time limits, stop grace)."""
EXIT_POLL_INTERVAL = 0.001
MAX_CONCURRENT_STARTS = 8
"""Hosts started at once (the Docker client's connection pool holds 10)."""
PLATFORM = "optml"
"""The log 'host' of local mode's own lines (status changes, staging progress)."""
ALL_LOG = "all.log"
"""Every line of every host, each prefixed with its host."""
ALL_LOG_TIMES = times_path(Path(ALL_LOG)).name
"""When each line of :data:`ALL_LOG` was written (:mod:`local_mode.log_times`)."""
FLUSH_INTERVAL = 0.05
"""Longest a host's output line waits in a buffer before it is on disk (:class:`JobLog`)."""
LOG_BUFFER = 1 << 16


class _OwnedLogFile(io.BufferedWriter):
    """A log file only its :class:`JobLog` appends to. :func:`~local_mode.log_times.append_line`
    asks for the end (``seek(0, 2)``) to learn a line's offset; a buffered file would flush to
    ask the kernel, so this one answers from where its own writes end (the file was at its end
    when opened, and nothing else appends to it)."""

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if offset == 0 and whence == os.SEEK_END:
            return self.tell()
        return super().seek(offset, whence)


def _open_log(path: Path) -> BinaryIO:
    """``path`` opened for appending, created 0600, buffered (:class:`_OwnedLogFile`)."""
    fd = open_private(path, os.O_WRONLY | os.O_APPEND)
    return _OwnedLogFile(io.FileIO(fd, "ab"), LOG_BUFFER)


class JobLog:
    """A job's logs: ``logs/all.log`` (every line, prefixed with its host, its time in the
    sidecar of :mod:`local_mode.log_times`) and one ``logs/<host>.log`` per host, appended line
    by line from any thread.

    A line written with :meth:`line` is on disk when the call returns. A host's output goes
    through ``line(..., at_once=False)``: a job may print gigabytes, and three flushes per line
    (all.log, its times, the host's log) were most of what a line cost, so those lines are
    flushed together at most :data:`FLUSH_INTERVAL` later by a flusher thread (or by
    :meth:`flush`, which the pump calls when the host's output ends, and by any line written at
    once). Readers following the files see every line within that interval; nothing is kept in
    memory beyond the files' buffers.
    """

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        self._lock = threading.Lock()
        self._files: dict[str, BinaryIO] = {}
        """The files written so far, open until :meth:`close` (a job may print millions of
        lines: one open per file, not per line)."""
        self._pending = threading.Event()
        """Set while a line written with ``at_once=False`` may sit in a buffer."""
        self._flusher: threading.Thread | None = None

    def _file(self, name: str) -> BinaryIO:
        handle = self._files.get(name)
        if handle is None:
            # private (0700 / 0600): a program's output may print what its Environment holds
            make_private_dir(self.logs_dir)
            handle = self._files[name] = _open_log(self.logs_dir / name)
        return handle

    def line(self, host: str, line: bytes, *, at_once: bool = True) -> None:
        """Append ``line`` (a newline added if it has none); ``at_once=False``: flushed within
        :data:`FLUSH_INTERVAL` instead of before returning."""
        if not line.endswith(b"\n"):
            line += b"\n"
        with self._lock:
            handle, times = self._file(ALL_LOG), self._file(ALL_LOG_TIMES)
            append_line(handle, times, host.encode() + b" | " + line)
            if host != PLATFORM:
                self._file(f"{host}.log").write(line)
            if at_once:
                self._flush_locked()
                return
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_soon, daemon=True,
                                                 name="job-log-flush")
                self._flusher.start()
            if not self._pending.is_set():
                self._pending.set()

    def flush(self) -> None:
        """Put every line written so far on disk now."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        for opened in self._files.values():  # readers follow the files as they grow
            opened.flush()
        self._pending.clear()

    def _flush_soon(self) -> None:
        """The flusher: after a line waits in a buffer, let more join it for
        :data:`FLUSH_INTERVAL`, then flush them all; ends with :meth:`close`."""
        while True:
            self._pending.wait()
            time.sleep(FLUSH_INTERVAL)
            with self._lock:
                if self._flusher is not threading.current_thread():  # closed meanwhile
                    return
                self._flush_locked()

    def close(self) -> None:
        """Flush and close the files (a later line opens them again)."""
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()
            self._flusher = None
            self._pending.set()  # wakes a waiting flusher, which sees it is no longer current


@dataclass
class Periodic:
    """``action`` every ``seconds`` while the hosts run."""

    seconds: float
    action: Callable[[], object]
    _due: float = 0.0

    def start(self) -> None:
        self._due = time.monotonic() + self.seconds

    def maybe_run(self, log: JobLog) -> None:
        """Run the action if it is due. A failure is logged (to the job's log too) and tried
        again next time: work done while the hosts run (a checkpoint sync, a Continuous upload)
        must never end the job; its last run at the end of the job decides."""
        if time.monotonic() < self._due:
            return
        try:
            self.action()
        except Exception as exc:
            logger.warning("periodic work failed; trying again in %.1f s", self.seconds,
                           exc_info=True)
            log.line(PLATFORM, f"warning: {type(exc).__name__}: {exc}; trying again in "
                               f"{self.seconds:g} s".encode())
        self._due = time.monotonic() + self.seconds


@dataclass
class Supervisor:
    """One job's supervision; :meth:`request_stop` may be called from any thread (a signal
    handler's callback, a timer)."""

    log: JobLog
    grace_seconds: float
    stop_event: threading.Event = field(default_factory=threading.Event)
    stop_kind: str | None = None
    """Why the job stops (the kind's own words: ``Stopped``, ``MaxRuntimeExceeded``), or None
    while nothing asked it to (a failed host stops its peers without a kind)."""
    _wake: threading.Event = field(default_factory=threading.Event)
    """Set on anything the loop must react to at once (a stop request, a host's output ending
    because its process is exiting): supervision waits on it instead of sleeping."""
    _output_ended: set[str] = field(default_factory=set)

    @classmethod
    def for_job(cls, logs_dir: Path, settings: Settings) -> Supervisor:
        return cls(JobLog(logs_dir), settings.local.stop_grace_seconds)

    def request_stop(self, kind: str) -> None:
        if self.stop_kind is None:
            self.stop_kind = kind
        if not self.stop_event.is_set():  # timers re-request every pass: wake only once
            self.stop_event.set()
            self._wake.set()

    def reset(self) -> None:
        """Forget a stop and the hosts that ended (a spot interruption restarts the hosts)."""
        self.stop_kind = None
        self.stop_event.clear()
        self._output_ended.clear()
        self._wake.clear()

    def pump(self, run: HostRun, on_line: Callable[[bytes], None] | None = None
             ) -> threading.Thread:
        """Start copying ``run``'s output into the log (and to ``on_line``) until it ends."""
        def copy() -> None:
            try:
                for line in run.output():
                    self.log.line(run.host.name, line, at_once=False)
                    if on_line is not None:
                        on_line(line)
            finally:
                self.log.flush()  # the host's last lines are on disk before it is seen ended
                self._output_ended.add(run.host.name)
                self._wake.set()
        thread = threading.Thread(target=copy, name=f"log-{run.host.name}", daemon=True)
        thread.start()
        return thread

    def supervise(self, runs: Sequence[HostRun], *,
                  timers: Callable[[], str | None] = lambda: None,
                  on_stopping: Callable[[str | None], None] = lambda kind: None,
                  periodic: Sequence[Periodic] = ()) -> dict[str, int]:
        """Wait until every host has exited; their exit statuses by host name.

        ``timers`` is asked on every pass and names a stop kind when a limit is reached. A host
        that exits non-zero stops the others (the service ends the job). ``on_stopping`` is
        called once, with the stop kind, when the hosts are sent SIGTERM; SIGKILL follows after
        the grace period.
        """
        exit_codes: dict[str, int] = {}
        kill_at: float | None = None
        terminated = False
        for task in periodic:
            task.start()
        while len(exit_codes) < len(runs):
            for run in runs:
                if run.host.name not in exit_codes:
                    code = run.poll()
                    if code is not None:
                        exit_codes[run.host.name] = code
            kind = timers()
            if kind is not None:
                self.request_stop(kind)
            if not self.stop_event.is_set() and any(c != 0 for c in exit_codes.values()):
                self.stop_event.set()
            if self.stop_event.is_set() and not terminated:
                terminated = True
                on_stopping(self.stop_kind)
                for run in runs:
                    if run.host.name not in exit_codes:
                        run.terminate()
                kill_at = time.monotonic() + self.grace_seconds
            if kill_at is not None and time.monotonic() > kill_at:
                for run in runs:
                    if run.host.name not in exit_codes:
                        run.kill()
                kill_at = None
            for task in periodic:
                task.maybe_run(self.log)
            if len(exit_codes) < len(runs):
                self._wait_for_news(runs, exit_codes)
        return exit_codes

    def _wait_for_news(self, runs: Sequence[HostRun], exit_codes: dict[str, int]) -> None:
        """Sleep until something happens, at most :data:`POLL_INTERVAL` (timers, stop grace).

        A host whose output just ended is exiting: its exit status follows within moments, so
        it is polled every :data:`EXIT_POLL_INTERVAL` instead of waiting a whole interval.
        """
        exiting = any(run.host.name in self._output_ended and run.host.name not in exit_codes
                      for run in runs)
        self._wake.wait(EXIT_POLL_INTERVAL if exiting else POLL_INTERVAL)
        self._wake.clear()


def out_of_memory_reason(host: str, instance_type: str) -> str:
    """What a job's FailureReason says first when the kernel killed a host for going over its
    memory limit (the program itself can only tell that it got SIGKILL)."""
    limit = f" of {instance_type}" if instance_type.startswith("ml.") else ""
    return (f"OutOfMemoryError: host {host} went over the memory{limit} and was killed; "
            "use an instance type with more memory, or process less data per host.")


def start_hosts(backend: Backend, workload: Workload, hosts: Sequence[Host],
                names: Sequence[str], environment: Mapping[str, str],
                started: list[HostRun]) -> None:
    """Start every host's program at the same time, as the service starts a job's instances
    (one after the other, a container start each, a job of several hosts would wait for the sum).

    Each run that started is appended to ``started`` in host order, even when another host
    failed to start, so the caller's cleanup finds it; then the first failure is raised.
    """
    if len(hosts) == 1:
        started.append(backend.start(workload, hosts[0], names, environment))
        return
    with ThreadPoolExecutor(max_workers=min(len(hosts), MAX_CONCURRENT_STARTS),
                            thread_name_prefix="start") as pool:
        futures = [pool.submit(backend.start, workload, host, names, environment)
                   for host in hosts]
    failure: BaseException | None = None
    for future in futures:
        error = future.exception()
        if error is None:
            started.append(future.result())
        elif failure is None:
            failure = error
    if failure is not None:
        raise failure
