"""Where an endpoint's or a transform job's serving containers run: Docker or plain processes.

An *instance* of a variant is one or more containers (an inference pipeline has several), each
listening on its own 127.0.0.1 port -- never a fixed 8080, so any number of endpoints run at
once. A backend checks a model once, starts its containers and removes what it made; the runner
does everything else (staging, health, routing) the same way for both.

This package's ``__init__`` holds the protocols only, as :mod:`local_mode.cluster`
does: :mod:`.process` and :mod:`.docker` implement them, :mod:`.choice` picks one by name
(importing both, which therefore cannot be imported from here).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from local_mode.endpoints.spec import ContainerSpec
from local_mode.endpoints.usage import Usage

STOP_GRACE_SECONDS = 30.0
"""The service's stop: SIGTERM, then SIGKILL 30 s later."""


class Container(Protocol):
    """A running serving container, reachable at ``host:port``; ``unix_socket`` is where an
    optml-built one also listens (``OPTML_UNIX_SOCKET``), on this side: the router sends
    invocations there once it exists (health checks keep using the port)."""

    hostname: str
    host: str
    port: int
    unix_socket: str | None

    @property
    def pid(self) -> int | None: ...

    def alive(self) -> bool: ...

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None: ...

    def kill(self) -> None: ...

    def log_tail(self, lines: int = 20) -> str: ...

    def usage(self) -> Usage | None:
        """CPU time and memory the container has used (None: not known now); blocking, so
        called off the event loop."""

    def model_url(self, directory: Path) -> str:
        """The ``url`` of a multi-model ``POST /models`` for a model extracted (on this side)
        into ``directory``: the path as the container sees it."""


class Backend(Protocol):
    """Starts containers. ``check`` runs once per model before any instance starts (raising
    :class:`~local_mode.errors.BackendUnsupported` when this backend cannot run it); ``close``
    once at the end, after every container was stopped (it removes what is left)."""

    name: str

    def check(self, container: ContainerSpec, model_dir: Path) -> None: ...

    def start(self, container: ContainerSpec, model_dir: Path, workdir: Path,
              environment: Mapping[str, str], log_path: Path, *,
              instance_type: str = "local", position: int = 0) -> Container:
        """Start one container; ``position`` is its index in the model's pipeline (0 for a
        single container), ``instance_type`` the variant's (for resource limits)."""

    def close(self) -> None: ...
