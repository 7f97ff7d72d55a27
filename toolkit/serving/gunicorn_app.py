"""gunicorn, driven through its Python API (no command line is ever assembled).

The listening socket arrives already bound (see :mod:`toolkit.serving.responder`) and is passed
as ``fd://N``. The Flask app is built in the master (``preload_app``) so the model loaded there
is shared copy-on-write; per-worker set-up (threads, multi-model sync) runs in
``post_worker_init``. gunicorn's control socket is disabled: two servers on one machine (tests,
multi-container endpoints) must not fight over ``~/.gunicorn/gunicorn.ctl``.

Two things here are about the latency tail (docs/performance-serving.md): the default worker
spreads new connections evenly over the workers (:class:`BalancedThreadWorker`), and the master
freezes its objects out of the garbage collector before each fork (:meth:`OptmlGunicorn.pre_fork`).
"""

from __future__ import annotations

import gc
import logging
import mmap
import os
import select
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication

from toolkit.serving.worker import PingReservedThreadWorker

WORKER_CLASSES: Mapping[str, str] = {
    "gthread": "toolkit.serving.gunicorn_app.BalancedThreadWorker",
    "gthread-plain": "gthread",
    "sync": "sync",
}
"""``gthread`` (default) reserves threads for /ping and balances connections over the workers;
the others exist for the measurements in docs/serving.md and are not meant for production."""
DEFAULT_THREADS = 4
GRACEFUL_TIMEOUT = 30
KEEPALIVE = 5


@dataclass(frozen=True)
class GunicornOptions:
    listener_fd: int
    workers: int
    timeout_seconds: int
    log_level: int
    worker_class: str = "gthread"
    threads: int = DEFAULT_THREADS
    unix_listener_fd: int | None = None
    """An extra listener (``OPTML_UNIX_SOCKET``), bound like the port before gunicorn starts
    (gunicorn ignores addresses once it is given descriptors)."""


def request_threads(requested: int | None, *, batch_max_size: int | None) -> int:
    """Request threads per worker (threads reserved for /ping come on top).

    An explicit ``--threads`` / ``OPTML_SERVER_THREADS`` wins. Otherwise 4, except with
    micro-batching: a worker can only batch the requests its own threads hold, so with 4 threads
    a batch never exceeds 4 whatever ``batch_max_size`` says; the default then becomes
    ``batch_max_size`` (twice that measured no better: docs/performance-serving.md).
    """
    if requested is not None:
        return requested
    if batch_max_size is not None:
        return max(DEFAULT_THREADS, batch_max_size)
    return DEFAULT_THREADS


def gunicorn_log_level(level: int) -> str:
    """gunicorn takes a level *name*; ``SAGEMAKER_CONTAINER_LOG_LEVEL`` may be any number."""
    for threshold, name in ((logging.CRITICAL, "critical"), (logging.ERROR, "error"),
                            (logging.WARNING, "warning"), (logging.INFO, "info")):
        if level >= threshold:
            return name
    return "debug"


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


class OptmlGunicorn(BaseApplication):
    """A gunicorn application serving one prebuilt WSGI callable."""

    def __init__(self, wsgi: Callable[..., Any], options: GunicornOptions, *,
                 post_worker_init: Callable[[Callable[[], None]], None],
                 child_exit: Callable[[int], None]) -> None:
        self._wsgi = wsgi
        self._options = options
        self._post_worker_init = post_worker_init
        self._child_exit = child_exit
        self._board = LoadBoard(max(8, 2 * options.workers))
        super().__init__()

    def pre_fork(self, server: Any, worker: Any) -> None:
        """In the master, before each fork: a :class:`LoadBoard` slot for the worker, and the
        master's objects frozen out of the garbage collector.

        After ``gc.freeze()`` a worker's collections never walk the app, the handlers and the
        preloaded model: a full collection in a worker no longer writes a GC header on every
        inherited page (each write a copy-on-write page copy: ~120 ms measured on the no-op
        model's ~35,000 objects, under load) and the shared pages stay shared.
        """
        gc.freeze()
        in_use = {slot for other in server.WORKERS.values()
                  if (slot := getattr(other, "load_slot", None)) is not None}
        worker.load_board = self._board
        worker.load_slot = self._board.claim(in_use)

    def worker_gone(self, worker: Any) -> None:
        """In the master, once a worker has exited: its slot is free, then the caller's hook."""
        slot = getattr(worker, "load_slot", None)
        if slot is not None:
            self._board.write(slot, NOT_ACCEPTING)
        self._child_exit(worker.pid)

    def config(self) -> dict[str, Any]:
        o = self._options
        # gunicorn's worker heartbeat files: on tmpfs, so a slow disk never looks like a hung worker
        tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108 - see above
        settings: dict[str, Any] = {
            "bind": [f"fd://{o.listener_fd}",
                     *([f"fd://{o.unix_listener_fd}"] if o.unix_listener_fd is not None
                       else [])],
            "workers": o.workers,
            "worker_class": WORKER_CLASSES[o.worker_class],
            "threads": o.threads if o.worker_class != "sync" else 1,
            "timeout": o.timeout_seconds,
            "graceful_timeout": GRACEFUL_TIMEOUT,
            "keepalive": KEEPALIVE,
            "preload_app": True,
            "control_socket_disable": True,
            "loglevel": gunicorn_log_level(o.log_level),
            "errorlog": "-",
            "accesslog": None,
            "proc_name": "optml-serve",
            # given the worker's heartbeat, for set-up that must finish before it accepts
            "post_worker_init": lambda worker: self._post_worker_init(worker.notify),
            "pre_fork": self.pre_fork,
            "child_exit": lambda server, worker: self.worker_gone(worker),
        }
        if tmp_dir:
            settings["worker_tmp_dir"] = tmp_dir
        return settings

    def load_config(self) -> None:
        for key, value in self.config().items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        return self._wsgi
