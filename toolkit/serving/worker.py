"""The gunicorn worker classes: gthread with threads reserved for ``GET /ping``, and (the
default) the same balancing new connections over the workers (:class:`BalancedThreadWorker`).

The platform pings every few seconds with a 2 s timeout and replaces an instance that misses
pings. With plain gthread (or sync) workers, a ping queues behind predictions once every thread
is busy, so a server under long predictions is declared dead although it is healthy. This worker
peeks at the first bytes of each readable connection, before a thread is committed to it, and
sends ``GET /ping`` / ``HEAD /ping`` to a small pool of its own that predictions never use.
Everything else (parsing, keep-alive, graceful stop) is gthread's unchanged code, except that a
worker ends a graceful stop with :func:`exit_without_teardown`.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import mmap
import os
import select
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn.workers.gthread import DEFAULT_WORKER_DATA_TIMEOUT, ThreadWorker

PING_THREADS = 2
_PEEK = 16
_PING_PREFIXES = (b"GET /ping ", b"GET /ping?", b"HEAD /ping ", b"HEAD /ping?")
_NO_DATA = object()


def peek(sock: socket.socket) -> bytes | object:
    """The first bytes waiting on ``sock`` without consuming them, or ``_NO_DATA``."""
    try:
        return sock.recv(_PEEK, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return _NO_DATA
    except OSError:
        return b""  # let the normal path see (and log) the broken connection


def is_ping(head: bytes) -> bool:
    return head.startswith(_PING_PREFIXES)


class PingReservedThreadWorker(ThreadWorker):
    """gthread plus a dedicated pool for health checks (see the module docstring)."""

    def init_process(self) -> None:
        self.ping_pool = futures.ThreadPoolExecutor(max_workers=PING_THREADS,
                                                    thread_name_prefix="optml-ping")
        super().init_process()
        # gthread's loop has returned: a graceful stop, its requests drained
        self.tpool.shutdown(wait=True)
        self.ping_pool.shutdown(wait=True)
        exit_without_teardown(
            before=lambda: self.log.info("Worker exiting (pid: %s)", self.pid))

    def enqueue_req(self, conn: Any) -> None:
        head = peek(conn.sock)
        if head is _NO_DATA and not conn.initialized:
            self._wait_for_first_bytes(conn)
            return
        pool = self.ping_pool if isinstance(head, bytes) and is_ping(head) else self.tpool
        fs = pool.submit(self.handle, conn)
        fs.add_done_callback(
            lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    def _wait_for_first_bytes(self, conn: Any) -> None:
        """A new connection with nothing to read yet: wait on the poller, not in a thread (runs
        on the main loop, like gthread's own deferral), then route it when bytes arrive."""
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.cfg.keepalive + DEFAULT_WORKER_DATA_TIMEOUT
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ,
                             partial(self.on_pending_socket_readable, conn))

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.ping_pool.shutdown(wait=False)


def exit_without_teardown(before: Callable[[], None] = lambda: None) -> None:
    """End a worker that stopped gracefully at once, skipping the interpreter's teardown.

    A worker forked from the master shares the preloaded model, the app and every imported
    module with it, copy-on-write. Interpreter finalisation frees each of those objects one by
    one, writing a reference count on every inherited page, so each exit copied the master's
    whole heap page by page: 150-220 ms per worker with a scikit-learn model, on each endpoint
    stop and at the end of each batch transform. Kept from a normal exit: ``before`` (the
    worker's "exiting" line), the ``atexit`` handlers (the user's, logging's flush), Python's
    standard streams and C stdio's buffers (a native library's output) flushed. Not kept: the
    finalizers of objects still alive (``__del__``, files the user left open unflushed) and
    gunicorn's own exit path (its ``worker_exit`` hook, which optml does not set). Returns
    without doing anything while a non-daemon thread the user started still runs, since a
    normal exit waits for it.
    """
    main = threading.main_thread()
    if any(t is not main and t.is_alive() and not t.daemon for t in threading.enumerate()):
        return
    before()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # closed or replaced
            stream.flush()
    with contextlib.suppress(OSError, AttributeError):  # no libc to ask (not on Linux)
        ctypes.CDLL(None).fflush(None)
    os._exit(0)


NOT_ACCEPTING = -1
"""The :class:`LoadBoard` value of a slot with no worker, or one not (yet, or no longer) serving."""


class LoadBoard:
    """Each worker's open connections, in memory shared by the master and all its workers.

    An anonymous shared mapping made in the master before any fork, so every worker inherits it.
    The master gives each new worker a free slot (:meth:`claim`); a worker writes only its own
    slot and reads the others'. No locks: an aligned 8-byte store is atomic on the platforms
    gunicorn runs on, and a stale figure can only make one accept decision less even.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"a LoadBoard needs at least one slot, got {slots}")
        self._map = mmap.mmap(-1, 8 * slots)
        self._values = memoryview(self._map).cast("q")
        for index in range(slots):
            self._values[index] = NOT_ACCEPTING

    def __len__(self) -> int:
        return len(self._values)

    def write(self, slot: int, value: int) -> None:
        self._values[slot] = value

    def read(self, slot: int) -> int:
        return self._values[slot]

    def least_other(self, slot: int) -> int | None:
        """The fewest connections of any other serving worker; ``None`` when there is none."""
        values = self._values.tolist()
        values[slot] = NOT_ACCEPTING
        serving = [value for value in values if value != NOT_ACCEPTING]
        return min(serving) if serving else None

    def claim(self, in_use: set[int]) -> int | None:
        """In the master, before a fork: a free slot for the new worker (``None``: all taken).

        Every slot not in ``in_use`` (the live workers' slots) is cleared on the way, so a worker
        that died without a ``child_exit`` never looks like an idle one.
        """
        claimed = None
        for index in range(len(self._values)):
            if index not in in_use:
                self._values[index] = NOT_ACCEPTING
                if claimed is None:
                    claimed = index
        return claimed


ACCEPT_PAUSE_SECONDS = 0.001
"""How long a busier worker leaves a waiting connection to a less busy one before looking again."""
ACCEPT_PAUSE_LIMIT_SECONDS = 0.025
"""After stepping aside this long for one waiting connection, a worker accepts it anyway: a less
busy worker that is slow to wake (or hung) delays a new connection by at most this much, it
never strands one."""


class BalancedThreadWorker(PingReservedThreadWorker):
    """The /ping-reserving gthread worker, accepting a connection only while no other worker has
    fewer open connections.

    All workers wait on the one listening socket and a new connection goes to whichever
    ``accept()`` wins: usually the worker that is already running. A burst of keep-alive
    connections (a client's pool; wrk) landed 13-16 of 16 on one of two workers, which then
    queued them on its 4 request threads while the other idled: one core serving, and the tail of
    that queue in p99. Here each worker publishes its open connections on the shared
    :class:`LoadBoard` after every pass of its event loop; when the listener is readable and
    another serving worker has fewer, this one takes its listener off the poller for
    :data:`ACCEPT_PAUSE_SECONDS` and lets that worker accept (nginx balances its workers with a
    similar accept back-off). Bounded by :data:`ACCEPT_PAUSE_LIMIT_SECONDS`.
    """

    load_board: LoadBoard | None = None
    """Set on the worker object by the master in ``pre_fork``, with :attr:`load_slot`."""
    load_slot: int | None = None

    def init_process(self) -> None:
        self._paused_until = 0.0
        self._stepping_aside_since: float | None = None
        self._published = NOT_ACCEPTING
        super().init_process()

    def _publish(self) -> None:
        value = self.nr_conns if self.alive else NOT_ACCEPTING
        if value != self._published and self.load_board is not None \
                and self.load_slot is not None:
            self.load_board.write(self.load_slot, value)
            self._published = value

    def set_accept_enabled(self, enabled: bool) -> None:
        if enabled and self._paused_until:
            return  # gthread's loop re-enables accepting every pass; not while stepping aside
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self._paused_until:
            remaining = self._paused_until - time.monotonic()
            if remaining > 0:
                timeout = min(timeout, remaining)
            else:
                self._resume_accepting()
        self._publish()  # before too: a new worker is seen as soon as its loop runs
        super().wait_for_and_dispatch_events(timeout)
        self._publish()

    def _resume_accepting(self) -> None:
        self._paused_until = 0.0
        try:
            waiting, _, _ = select.select(self.sockets, [], [], 0)
        except (OSError, ValueError):
            waiting = []
        if not waiting:
            # the connection we stepped aside for went to another worker: the next one that
            # arrives starts a fresh bound
            self._stepping_aside_since = None
        self.set_accept_enabled(self.alive and self.nr_conns < self.worker_connections)

    def accept(self, listener: Any) -> None:
        if self._paused_until:
            return  # another listener's event from the same select() that paused accepting
        if self._step_aside():
            self._paused_until = time.monotonic() + ACCEPT_PAUSE_SECONDS
            super().set_accept_enabled(False)
            return
        self._stepping_aside_since = None
        super().accept(listener)
        self._publish()

    def _step_aside(self) -> bool:
        board, slot = self.load_board, self.load_slot
        if board is None or slot is None:
            return False
        least = board.least_other(slot)
        if least is None or self.nr_conns <= least:
            return False
        now = time.monotonic()
        if self._stepping_aside_since is None:
            self._stepping_aside_since = now
            return True
        return now - self._stepping_aside_since < ACCEPT_PAUSE_LIMIT_SECONDS
