"""Read one Pipe-mode FIFO without mistaking "no writer yet" for end of data.

A FIFO opened for reading with ``O_NONBLOCK`` opens at once, but until a writer connects a
``read()`` returns ``b""`` — which ordinary code takes for EOF, silently training on an empty
epoch.
:class:`FifoReader` therefore polls for the first data (or the writer's hang-up) with a timeout
before its first read, and polls again whenever the pipe is momentarily empty. On Linux, ``poll``
reports ``POLLHUP`` only after a writer has connected *since our open*, so an early empty read can
never be confused with the writer closing.

Every wait is bounded: the FIFO must appear within ``open_timeout`` and data must keep coming
within ``read_timeout``; otherwise :class:`~toolkit.channels.errors.ChannelError` names the path.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import select
import stat
import time
from pathlib import Path

from toolkit.channels.errors import ChannelError

DEFAULT_OPEN_TIMEOUT = 300.0
"""Seconds to wait for the next epoch's FIFO to appear (the feeder makes it after the last one)."""
DEFAULT_READ_TIMEOUT = 600.0
"""Seconds a read may wait for the writer to send more data before it is declared stalled."""
PIPE_SIZE = 1 << 20
"""Pipe buffer we ask the kernel for: fewer wake-ups per MiB than the 64 KiB default."""
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_POLL_SLICE = 0.05


def wait_for_fifo(path: Path, timeout: float) -> None:
    """Return once ``path`` exists and is a FIFO; :class:`ChannelError` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISFIFO(mode):
                return
            raise ChannelError("exists but is not a FIFO (is this channel really in Pipe "
                               "mode?)", path=path)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChannelError(f"FIFO did not appear within {timeout:g} s (no feeder for this "
                               "channel and epoch?)", path=path)
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.01)  # the FIFO usually appears soon: keep latency low


def set_pipe_size(fd: int, size: int = PIPE_SIZE) -> None:
    """Best effort: grow the pipe buffer (capped by /proc/sys/fs/pipe-max-size)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, size)


class FifoReader(io.RawIOBase):
    """A raw, read-only binary stream over one FIFO; wrap it in :class:`io.BufferedReader`."""

    def __init__(self, path: Path, *, open_timeout: float = DEFAULT_OPEN_TIMEOUT,
                 read_timeout: float = DEFAULT_READ_TIMEOUT) -> None:
        super().__init__()
        self.path = Path(path)
        self.name = str(self.path)
        self.read_timeout = read_timeout
        wait_for_fifo(self.path, open_timeout)
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise ChannelError(f"cannot open FIFO: {exc.strerror}", path=self.path) from None
        set_pipe_size(self._fd)
        self._poller = select.poll()
        self._poller.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        self._eof = False
        self._connected = False

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def _wait(self) -> None:
        """Block until data or hang-up is pending, at most ``read_timeout`` seconds."""
        deadline = time.monotonic() + self.read_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelError(f"no data from the writer for {self.read_timeout:g} s",
                                   path=self.path)
            # A bounded slice so a close() from another thread is noticed promptly.
            if self._poller.poll(min(remaining, 1.0) * 1000):
                return
            if self.closed:
                raise ValueError("read from a closed FifoReader")

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("read from a closed FifoReader")
        if self._eof:
            return 0
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        while True:
            if not self._connected:
                # Before the writer shows up an empty read means nothing: wait for it first.
                self._wait()
                self._connected = True
            try:
                count = os.readv(self._fd, [view])
            except BlockingIOError:  # the writer is there but the pipe is momentarily empty
                self._wait()
                continue
            except InterruptedError:
                continue
            except OSError as exc:
                raise ChannelError(f"read failed: {exc.strerror}", path=self.path) from None
            if count == 0:
                self._eof = True
            return count

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()
