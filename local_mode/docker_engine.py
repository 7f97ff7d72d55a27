"""What every user of the Docker engine in local mode shares: reaching it, and what it refuses.

Training jobs, endpoints, transform jobs, create-time checks and ``optml check`` all talk to the
same local engine. They connect the same way, treat "no engine" the same way (one error that says
what to do), remove objects the same way (something already gone is fine) and refuse an image the
engine does not have the same way: local mode never pulls (no registry is reachable from its
machines), so such an image is one the job could never run, as the service's unpullable image.
Keeping these here gives each of them one wording and one behaviour: also the labels everything
local mode creates carries, the one :func:`sweep` that removes what those labels select, reading a
container's output back into lines and turning an instance type's limits into the engine's terms.
Only docker-py's high-level ``DockerClient`` is expected; docker-py itself is imported lazily, so
the process backends never load it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from local_mode.errors import ServiceUnavailable, ValidationException
from local_mode.instance_types import Machine, ResourceLimits

log = logging.getLogger("optml.local")

JOB_LABEL = "optml.job"
"""On a training or processing job's containers and network: the job's name."""
KIND_LABEL = "optml.kind"
"""With :data:`JOB_LABEL`: ``training-job`` or ``processing-job`` (the service keeps their names
apart, so a training job and a processing job may share one)."""
RUN_LABEL = "optml.run"
"""On a training or processing job's containers and network: one run of the job (its network's
name when it has one)."""
ENDPOINT_LABEL = "optml.endpoint"
"""On an endpoint's containers and network: the endpoint's name."""
TRANSFORM_LABEL = "optml.transform"
"""On a transform job's containers and network: the job's name."""
STATE_LABEL = "optml.state"
"""On every container and network local mode creates: the state directory, so two state
directories never sweep (or prune) each other's."""
CHECK_LABEL = "optml.check"
"""On the serving containers and networks of an ``optml check`` run: the run's id."""

CONTROL_TIMEOUT = 120.0
"""Seconds for one control call (create, kill, remove) to the engine."""
PROBE_TIMEOUT = 3.0
"""Seconds :func:`docker_reachable` gives an engine to answer (a quick yes/no for ``auto``)."""


class DockerUnavailable(ServiceUnavailable):
    """No Docker engine answers (local mode's Docker backends need one); caught, as with any
    ServiceUnavailable, by ``except client.exceptions.ServiceUnavailable``."""


class ImageNotFound(ValidationException):
    """The image a request names is not in the local engine (local mode never pulls)."""


def connect(timeout: float | None = CONTROL_TIMEOUT, version: str | None = None) -> Any:
    """A docker client from the environment (DOCKER_HOST, ...); ``timeout=None`` for streams."""
    try:
        import docker
    except ImportError:  # pragma: no cover - docker is in optml[local]
        raise DockerUnavailable("the Docker backend needs the docker package: "
                                "pip install 'optml[local]'") from None
    try:
        return docker.DockerClient.from_env(timeout=timeout, version=version)
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(f"no Docker engine is reachable ({exc}); start one or use the "
                                "process backend") from None


def reachable_client(timeout: float | None = CONTROL_TIMEOUT) -> Any:
    """A client whose engine answered; DockerUnavailable (saying what to do) if not.

    Connecting without a pinned API version asks the engine for its version, which is the
    answer this needs: no separate ping (one round trip less on every job's start)."""
    return connect(timeout)


def docker_reachable() -> bool:
    """Whether an engine answers now (what backend ``auto`` means, and what examples need)."""
    try:
        client = reachable_client(PROBE_TIMEOUT)
    except DockerUnavailable:
        return False
    client.close()
    return True


def ignore_missing(call: Any, *args: Any, **kwargs: Any) -> None:
    """Run an engine call that removes, kills or stops something; an object that is already
    gone (or going, or not running) is fine."""
    import docker.errors

    try:
        call(*args, **kwargs)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # "removal already in progress", "not running"
            raise


def require_image(client: Any, image: str, field: str, operation: str | None = None) -> Any:
    """The engine's image (docker-py's ``Image``: its ``labels``, ``attrs``); raise
    :class:`ImageNotFound` naming ``field`` and ``image`` when the engine does not have it.

    ``operation`` is the API call being refused, when the caller knows it (a client re-issues
    an error raised without one for the operation that was called).
    """
    import docker.errors

    try:
        return client.images.get(image)
    except docker.errors.ImageNotFound:
        raise ImageNotFound(
            f"{field}: Requested image {image} not found in the local Docker engine; local "
            "mode never pulls images (no registry is reachable from here): build it "
            "(docker build -t ...) or load it (docker load -i ...) first", operation) from None


def limits_host_config(limits: ResourceLimits) -> dict[str, Any]:
    """The host-config arguments (``create_host_config``) that make a container look like an
    instance with ``limits``: CPUs, memory without swap (an instance has none, and a job over
    its memory must fail as it would there) and a ``/dev/shm`` sized as a Linux host's."""
    return {"nano_cpus": limits.nano_cpus, "mem_limit": limits.memory_bytes,
            "memswap_limit": limits.memory_bytes,
            "shm_size": limits.shm_bytes(Machine.current())}


def _selector(labels: Mapping[str, str | None]) -> dict[str, list[str]]:
    return {"label": [name if value is None else f"{name}={value}"
                      for name, value in labels.items()]}


def sweep(client: Any, labels: Mapping[str, str | None]) -> int:
    """Remove the containers (with their anonymous volumes) and networks that carry every one
    of ``labels`` (a value of ``None`` selects any value of that label); returns how many were
    removed.

    What the backends' clean-up does, and what removes the leftovers of a runner killed before
    its clean-up; a job or endpoint still running loses its containers, so select finished or
    abandoned ones only.
    """
    if not labels:
        raise ValueError("sweep needs at least one label: it never removes everything")
    selector = _selector(labels)
    removed = 0
    # sparse: no inspect per container, so one removed meanwhile cannot fail the listing
    for container in client.containers.list(all=True, sparse=True, filters=selector):
        ignore_missing(container.remove, force=True, v=True)
        removed += 1
    for network in client.networks.list(filters=selector):
        ignore_missing(network.remove)
        removed += 1
    return removed


def label_values(client: Any, name: str) -> set[str]:
    """Every value the label ``name`` has on a container or network of the engine (which jobs
    or runs have something left to sweep)."""
    selector = _selector({name: None})
    containers = client.containers.list(all=True, sparse=True, filters=selector)
    networks = client.networks.list(filters=selector)
    return {str((item.attrs.get("Labels") or {}).get(name, ""))
            for item in (*containers, *networks)}


class LineAssembler:
    """Turn a container's demultiplexed output frames back into whole lines.

    The engine cuts output into frames wherever the writes happened to fall (32 KiB at most);
    stdout and stderr are kept apart so a partial stdout line is never glued to a stderr one.
    """

    def __init__(self) -> None:
        self._pending: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}

    def feed(self, stream: int, data: bytes) -> list[bytes]:
        buffer = self._pending[stream]
        buffer += data
        end = buffer.rfind(b"\n")
        if end < 0:
            return []
        complete = bytes(buffer[:end + 1])
        del buffer[:end + 1]
        # split on "\n" only: bytes.splitlines() would also cut at "\r", "\x0b", "\x1c"...
        return [line + b"\n" for line in complete[:-1].split(b"\n")]

    def flush(self) -> list[bytes]:
        """What is left without a final newline (a last line not ended by the program)."""
        rest = [bytes(b) for b in self._pending.values() if b]
        for buffer in self._pending.values():
            buffer.clear()
        return rest



def output_lines(frames: Iterable[tuple[bytes | None, bytes | None]] | None, name: str,
                 closed_by_us: Callable[[], bool]) -> Iterator[bytes]:
    """The whole lines (each with its newline) of an attached container's demultiplexed
    ``(stdout, stderr)`` frames, until the stream ends. A stream that breaks ends the output
    too; it is logged, naming ``name``, unless ``closed_by_us()`` says we closed it."""
    assembler = LineAssembler()
    try:
        for stdout, stderr in frames or ():
            for stream, data in ((1, stdout), (2, stderr)):
                if data:
                    yield from assembler.feed(stream, data)
    except Exception as exc:  # noqa: BLE001 - closed by our clean-up, or the engine went away
        if not closed_by_us():
            log.warning("%s: log stream ended early: %s", name, exc)
    yield from assembler.flush()
