"""gunicorn, driven through its Python API (no command line is ever assembled).

The listening socket arrives already bound (see :mod:`toolkit.serving.responder`) and is passed
as ``fd://N``. The Flask app is built in the master (``preload_app``) so the model loaded there
is shared copy-on-write; per-worker set-up (threads, multi-model sync) runs in
``post_worker_init``. gunicorn's control socket is disabled: two servers on one machine (tests,
multi-container endpoints) must not fight over ``~/.gunicorn/gunicorn.ctl``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication

WORKER_CLASSES: Mapping[str, str] = {
    "gthread": "toolkit.serving.worker.PingReservedThreadWorker",
    "gthread-plain": "gthread",
    "sync": "sync",
}
"""``gthread`` (default) reserves threads for /ping; the others exist for the measurement in
docs/serving.md and are not meant for production."""
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
        super().__init__()

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
            "child_exit": lambda server, worker: self._child_exit(worker.pid),
        }
        if tmp_dir:
            settings["worker_tmp_dir"] = tmp_dir
        return settings

    def load_config(self) -> None:
        for key, value in self.config().items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        return self._wsgi
