"""Where a training job's hosts run: Docker containers or plain processes.

A backend names the hosts, starts one :class:`HostRun` per host and tears down what it made.
The runner does everything else (config files, data, logs, metrics, outputs) the same way for
both, so a job behaves the same whichever backend runs it. This package's ``__init__`` holds the
protocols only: :mod:`.process` and :mod:`.docker` implement them, :mod:`.choice` picks one by
name (importing both, which therefore cannot be imported from here).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from local_mode.training.hosts import Host
from local_mode.training.spec import TrainingJobSpec


class HostRun(Protocol):
    host: Host

    def output(self) -> Iterator[bytes]:
        """The host's combined stdout/stderr, one line (with its newline) at a time, until the
        host exits."""

    def poll(self) -> int | None:
        """The exit status once the host has exited, else ``None``."""

    def out_of_memory(self) -> bool:
        """Whether the host was killed for going over its memory limit (known once it exited;
        a backend that cannot tell says False)."""

    def terminate(self) -> None:
        """SIGTERM, as the service does on stop."""

    def kill(self) -> None:
        """SIGKILL."""

    def cleanup(self) -> None:
        """Release everything this host used (container, files owned by root)."""


class Backend(Protocol):
    name: str
    network_interface: str

    def host_names(self, count: int) -> list[str]: ...

    def checkpoint_local_path(self, spec: TrainingJobSpec, host: Host) -> str:
        """The checkpoint directory as the host sees it (written to checkpointconfig.json)."""

    def check(self, spec: TrainingJobSpec) -> None:
        """Raise :class:`~local_mode.errors.BackendUnsupported` when this backend cannot run
        ``spec``."""

    def prepare(self, spec: TrainingJobSpec, job_id: str) -> None: ...

    def start(self, spec: TrainingJobSpec, host: Host, hosts: Sequence[str],
              environment: Mapping[str, str]) -> HostRun: ...

    def teardown(self) -> None: ...
