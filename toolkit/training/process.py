"""Run the user's program as a supervised child.

What this adds over ``subprocess.run``:

* stderr is relayed line-exactly (complete lines are written whole; nothing is decoded, so no
  re-encoding damage) while a bounded tail is kept for the failure file; stdout is inherited;
* SIGTERM / SIGINT are forwarded to the child's whole process group, and whatever is still alive
  after the grace period is SIGKILLed (the references forward nothing, so user code is killed
  without a chance to checkpoint);
* as PID 1 it reaps every orphan that is re-parented to it, so no zombies pile up;
* when the child ends, the rest of its process group is terminated so no stray process survives;
* a stop that arrives before the program starts (while code is fetched or requirements install)
  is kept by a :class:`StopLatch` and the program is then never started: as PID 1 a process
  ignores every signal it has no handler for, so without the latch that stop would be lost and
  the job would run to the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_CHUNK = 65536
_LEFTOVER_GRACE = 2.0


@dataclass(frozen=True)
class ProcessResult:
    """How the supervised child ended."""

    returncode: int
    """Shell convention: the exit status, or 128 + N when killed by signal N."""
    stop_signal: int | None
    """The signal that asked us to stop (SIGTERM / SIGINT), if one arrived."""
    killed_after_grace: bool
    """The child outlived the grace period and was SIGKILLed."""
    stderr_tail: str


class StopRequested(BaseException):
    """A stop signal arrived during the set-up (raised by :meth:`StopLatch.interrupting`).

    A BaseException, like KeyboardInterrupt: raised from a signal handler, it can surface inside
    any code, and ``except Exception`` there (logging's emit, a retry loop) must not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"{signal.Signals(signum).name} received before the program started")
        self.signum = signum


class StopLatch:
    """Remembers the first SIGTERM / SIGINT from the moment ``train`` starts until a
    :class:`Supervisor` takes the signals over. Install it from the main thread."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._interrupting = False

    def install(self) -> StopLatch:
        if threading.current_thread() is threading.main_thread():
            for signum in FORWARDED_SIGNALS:
                signal.signal(signum, self._record)
        return self

    @contextlib.contextmanager
    def interrupting(self) -> Iterator[None]:
        """Inside: a stop raises :class:`StopRequested` at once, so a long set-up step (a
        requirements install, waiting for peers) ends now rather than when it is done."""
        if self.signum is not None:
            raise StopRequested(self.signum)
        self._interrupting = True
        try:
            yield
        finally:
            self._interrupting = False

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        if self._interrupting:
            self._interrupting = False
            raise StopRequested(signum)


class _TailRelay(threading.Thread):
    """Copy a pipe to ``sink`` in whole lines and remember the last ``tail_bytes`` of it."""

    def __init__(self, fd: int, sink: BinaryIO, tail_bytes: int) -> None:
        super().__init__(name="optml-stderr-relay", daemon=True)
        self._fd = fd
        self._sink = sink
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._tail_bytes = tail_bytes

    def _remember(self, data: bytes) -> None:
        self._tail.append(data)
        self._tail_size += len(data)
        while self._tail_size > self._tail_bytes and len(self._tail) > 1:
            self._tail_size -= len(self._tail.popleft())

    def _emit(self, data: bytes) -> None:
        try:
            self._sink.write(data)
            self._sink.flush()
        except (OSError, ValueError):
            pass  # a closed log must never stop the job
        self._remember(data)

    def run(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._fd, _CHUNK)
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            cut = pending.rfind(b"\n")
            if cut >= 0:
                self._emit(pending[:cut + 1])
                pending = pending[cut + 1:]
            elif len(pending) >= _CHUNK * 16:
                # A very long line without a newline: pass it on rather than hold unbounded memory.
                self._emit(pending)
                pending = b""
        if pending:
            self._emit(pending)
        os.close(self._fd)

    def tail(self) -> str:
        data = b"".join(self._tail)[-self._tail_bytes:]
        return data.decode("utf-8", "replace")


def _signal_pgid(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Supervisor:
    """Runs one child; see the module docstring. Use :meth:`run` from the main thread to get
    signal forwarding (Python only delivers signals there)."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None,
                 grace_seconds: float = 110.0, stderr_sink: BinaryIO | None = None,
                 tail_bytes: int = 16384, latch: StopLatch | None = None) -> None:
        if not argv:
            raise ValueError("argv must not be empty")
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.grace_seconds = grace_seconds
        self.stderr_sink = stderr_sink if stderr_sink is not None else sys.stderr.buffer
        self.tail_bytes = tail_bytes
        self._child: subprocess.Popen[bytes] | None = None
        self._stop_signal: int | None = None
        self._killed = threading.Event()
        self._kill_timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._latch = latch

    # -- signals ---------------------------------------------------------------------------
    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Forward ``signum`` to the child's group and arm the SIGKILL timer (first time only).

        A second SIGINT (Ctrl-C twice) kills at once.
        """
        child = self._child
        with self._lock:
            first = self._stop_signal is None
            if first:
                self._stop_signal = signum
        if child is None:
            return
        if not first:
            if signum == signal.SIGINT:
                self._kill_now()
            return
        _signal_pgid(child.pid, signum)
        self._kill_timer = threading.Timer(self.grace_seconds, self._kill_now)
        self._kill_timer.daemon = True
        self._kill_timer.start()

    def _kill_now(self) -> None:
        child = self._child
        if child is None or child.returncode is not None:
            return
        self._killed.set()
        _signal_pgid(child.pid, signal.SIGKILL)

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.request_stop(signum)

    # -- running ---------------------------------------------------------------------------
    def run(self) -> ProcessResult:
        in_main = threading.current_thread() is threading.main_thread()
        previous = {}
        if in_main:
            for signum in FORWARDED_SIGNALS:
                previous[signum] = signal.signal(signum, self._handler)
        early = self._latch.signum if self._latch is not None else None
        if early is not None:  # stopped before the program could start: never start it
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            return ProcessResult(returncode=128 + early, stop_signal=early,
                                 killed_after_grace=False, stderr_tail="")
        read_fd, write_fd = os.pipe()
        try:
            try:
                self._child = subprocess.Popen(  # noqa: S603 - the user's argv list, no shell
                    self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                    stderr=write_fd, start_new_session=True)
            finally:
                os.close(write_fd)
            relay = _TailRelay(read_fd, self.stderr_sink, self.tail_bytes)
            relay.start()
            if self._stop_signal is not None:  # a signal arrived while we were starting
                pending, self._stop_signal = self._stop_signal, None
                self.request_stop(pending)
            status = self._wait(self._child)
            self._child.returncode = os.waitstatus_to_exitcode(status)
            self._terminate_leftovers(self._child.pid)
            relay.join(timeout=5.0)
            return ProcessResult(returncode=_exit_code(status), stop_signal=self._stop_signal,
                                 killed_after_grace=self._killed.is_set(),
                                 stderr_tail=relay.tail())
        except BaseException:
            if self._child is not None and self._child.returncode is None:
                _signal_pgid(self._child.pid, signal.SIGKILL)
                self._child.wait()
            raise
        finally:
            if self._kill_timer is not None:
                self._kill_timer.cancel()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @staticmethod
    def _wait(child: subprocess.Popen[bytes]) -> int:
        """Wait for ``child``; as PID 1 also reap every orphan re-parented to us."""
        if os.getpid() != 1:
            _, status = os.waitpid(child.pid, 0)
            return status
        while True:
            pid, status = os.waitpid(-1, 0)
            if pid == child.pid:
                return status

    @staticmethod
    def _terminate_leftovers(pgid: int) -> None:
        """Stop processes the child left in its group (daemons, stray workers)."""
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        _signal_pgid(pgid, signal.SIGTERM)
        deadline = _LEFTOVER_GRACE
        step = 0.05
        while deadline > 0:
            _reap_any()
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
            threading.Event().wait(step)
            deadline -= step
        _signal_pgid(pgid, signal.SIGKILL)
        _reap_any()


def _reap_any() -> None:
    """As PID 1, collect exited orphans without blocking (elsewhere they are not ours)."""
    if os.getpid() != 1:
        return
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_supervised(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None,
                   grace_seconds: float = 110.0, stderr_sink: BinaryIO | None = None,
                   latch: StopLatch | None = None) -> ProcessResult:
    """Run ``argv`` to completion under a :class:`Supervisor` (not at all if ``latch`` caught a
    stop first)."""
    return Supervisor(argv, env=env, cwd=cwd, grace_seconds=grace_seconds,
                      stderr_sink=stderr_sink, latch=latch).run()
