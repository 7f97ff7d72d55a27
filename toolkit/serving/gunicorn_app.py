"""gunicorn, driven through its Python API (no command line is ever assembled).

The listening socket arrives already bound (see :mod:`toolkit.serving.responder`) and is passed
as ``fd://N``. The Flask app is built in the master (``preload_app``) so the model loaded there
is shared copy-on-write; per-worker set-up (threads, multi-model sync) runs in
``post_worker_init``. gunicorn's control socket is disabled: two servers on one machine (tests,
multi-container endpoints) must not fight over ``~/.gunicorn/gunicorn.ctl``.

Two things here are about the latency tail (docs/performance-serving.md): the default worker
spreads new connections evenly over the workers
(:class:`~toolkit.serving.worker.BalancedThreadWorker`), and the master
freezes its objects out of the garbage collector before each fork (:meth:`OptmlGunicorn.pre_fork`).
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication

from toolkit.serving.worker import NOT_ACCEPTING, LoadBoard

WORKER_CLASSES: Mapping[str, str] = {
    "gthread": "toolkit.serving.worker.BalancedThreadWorker",
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
            # no "worker_exit": a worker that stops gracefully ends with os._exit and never
            # reaches gunicorn's exit path (toolkit.serving.worker.exit_without_teardown)
        }
        if tmp_dir:
            settings["worker_tmp_dir"] = tmp_dir
        return settings

    def load_config(self) -> None:
        for key, value in self.config().items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        return self._wsgi
