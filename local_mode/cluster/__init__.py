"""The hosts a job runs on: Docker containers or plain processes, for any kind of job.

Training and processing jobs both run one program per host, on a cluster of hosts that find each
other by name, with a per-host ``/opt/ml`` tree laid out by the job's runner. What differs between
the kinds is *what* runs and *what is mounted*: a :class:`Workload` says that, and a
:class:`Backend` runs it (:mod:`.docker`, :mod:`.process`; :mod:`.choice` picks one by name and
imports both, so it cannot be imported from here). Supervision of the running hosts -- their
logs, stop signals, time limits -- is :mod:`.supervisor`'s, the same for every kind.

This package's ``__init__`` holds only the shared values and protocols.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from local_mode.errors import LocalModeError
from toolkit.layout import DEFAULT_ROOT, Layout

CONTAINER_ROOT = str(DEFAULT_ROOT)
"""Where a container sees a host's tree (relative paths of the host tree map onto it)."""


class ContainerStartFailed(LocalModeError):
    """A host's program could not be started: the engine refused its container (bad entrypoint,
    bad mount), or on the process backend its entrypoint is not there."""

    code = "ClientError"
    http_status = 400


@dataclass(frozen=True)
class Host:
    """One host of a job: its name (``algo-1`` or a loopback address), its index among the
    job's hosts, and its ``/opt/ml`` tree on this machine."""

    name: str
    index: int
    count: int
    layout: Layout


def host_path(host: Host, container_path: str) -> Path:
    """Where ``container_path`` (as a container sees it) lies in ``host``'s tree on this
    machine: below ``/opt/ml`` it keeps its place under the relocated root; anywhere else it
    goes under ``<root>/_abs`` so that it can never land outside the job's work directory."""
    if container_path == CONTAINER_ROOT or container_path.startswith(CONTAINER_ROOT + "/"):
        return host.layout.root / container_path[len(CONTAINER_ROOT) + 1:]
    return host.layout.root / "_abs" / container_path.lstrip("/")


@dataclass(frozen=True)
class BindMount:
    """A directory of a host's tree on this machine, seen by the container at ``target``."""

    source: Path
    target: str
    read_only: bool = False

    def as_docker(self) -> Any:
        from docker.types import Mount

        return Mount(target=self.target, source=str(self.source), type="bind",
                     read_only=self.read_only)


def covered(mounts: Sequence[BindMount], target: str) -> bool:
    """Whether ``target`` already lies inside one of ``mounts`` (so mounting it again would only
    hide nothing; its directory in the host tree is inside the covering mount's source)."""
    return any(target == m.target or target.startswith(m.target.rstrip("/") + "/")
               for m in mounts)


class Workload(Protocol):
    """What a job asks of the hosts that run it: an image, a command, mounts, a size."""

    @property
    def name(self) -> str:
        """The job's name (container names, labels, networks)."""

    @property
    def image(self) -> str | None: ...

    @property
    def image_field(self) -> str:
        """The request member naming the image, for errors (``AppSpecification.ImageUri``)."""

    @property
    def operation(self) -> str:
        """The Create operation, for errors (``CreateProcessingJob``)."""

    @property
    def kind(self) -> str:
        """The job's resource type, as its ARN names it (``processing-job``): a label."""

    @property
    def instance_type(self) -> str: ...

    @property
    def instance_count(self) -> int: ...

    def container_command(self) -> tuple[list[str] | None, list[str] | None]:
        """``(entrypoint override or None, command or None)`` of each host's container (None:
        the image's own)."""

    def mounts(self, host: Host) -> list[BindMount]:
        """What of the host's tree a container sees, and where."""

    def process_refusal(self) -> str | None:
        """Why the process backend cannot run this workload, or None when it can."""

    def process_argv(self, host: Host) -> list[str]:
        """The argv of the host's process on the process backend (after
        :meth:`process_refusal` said None)."""


class SpecWorkload:
    """The members of a :class:`Workload` that a job's spec holds under the same names (a
    training or processing spec): a kind's workload subclasses it and adds what differs."""

    spec: Any

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def image(self) -> str | None:
        return self.spec.image

    @property
    def instance_type(self) -> str:
        return self.spec.instance_type

    @property
    def instance_count(self) -> int:
        return self.spec.instance_count


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

    def path_seen_by(self, host: Host, container_path: str) -> str:
        """``container_path`` as the host's program sees it (written into config files): the
        path itself in a container, its place in the host's tree for a process."""

    def check(self, workload: Workload) -> None:
        """Raise :class:`~local_mode.errors.BackendUnsupported` (or ImageNotFound) when this
        backend cannot run ``workload``."""

    def prepare(self, workload: Workload) -> None: ...

    def start(self, workload: Workload, host: Host, hosts: Sequence[str],
              environment: Mapping[str, str]) -> HostRun: ...

    def teardown(self) -> None: ...
