"""The gunicorn worker class: gthread with threads reserved for ``GET /ping``.

The platform pings every few seconds with a 2 s timeout and replaces an instance that misses
pings. With plain gthread (or sync) workers, a ping queues behind predictions once every thread
is busy, so a server under long predictions is declared dead although it is healthy. This worker
peeks at the first bytes of each readable connection, before a thread is committed to it, and
sends ``GET /ping`` / ``HEAD /ping`` to a small pool of its own that predictions never use.
Everything else (parsing, keep-alive, graceful stop) is gthread's unchanged code.
"""

from __future__ import annotations

import selectors
import socket
import time
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
