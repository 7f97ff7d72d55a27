"""Endpoint instances and transform jobs as Docker containers of the model's own image.

This is what the service does with ``Image``: ``docker run IMAGE serve`` (the image's ENTRYPOINT,
if any, receives ``serve``; see docs/contract.md) with the extracted ``ModelDataUrl`` at
``/opt/ml/model`` -- or, for a multi-model container, the endpoint's model cache at
``/opt/ml/models`` -- mounted read-only, and the model's ``Environment``.

- **Ports.** Each container listens on its container port (8080, or the ``SAGEMAKER_BIND_TO_PORT``
  it is told when its image carries the accept-bind-to-port label: ``8080 + position`` in an
  inference pipeline, so the containers of one instance would not clash in a shared namespace).
  That port is published on ``127.0.0.1`` only, on a host port the engine picks; nothing ever
  binds a fixed host port, so any number of endpoints run at once, and the router and the
  transform runner reach each container there.
- **Network.** The containers of one endpoint (or transform job) share a user-defined bridge
  network created for it, where each is also reachable by its ``ContainerHostname``.
- **Limits.** CPU and memory come from the variant's ``InstanceType`` (the training table in
  :mod:`local_mode.instance_types`); ``local`` is unlimited.
- **Stop.** SIGTERM, then SIGKILL after the grace (30 s for serving containers, as on the
  service; see docs/contract.md; capped by ``OPTML_LOCAL_STOP_GRACE_SECONDS``), then the
  container is removed.
- **Clean-up.** Everything carries ``optml.endpoint=<name>`` or ``optml.transform=<name>`` plus
  ``optml.state=<state directory>``; :meth:`DockerServingBackend.close` and
  :func:`local_mode.docker_engine.sweep` remove whatever is left, even after a runner was killed.
- **Images are never pulled** (no registry is reachable from local mode): a missing image fails
  the endpoint or job with a reason that names it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from local_mode.docker_engine import (
    ENDPOINT_LABEL,
    STATE_LABEL,
    connect,
    ignore_missing,
    limits_host_config,
    output_lines,
    reachable_client,
    require_image,
    sweep,
)
from local_mode.endpoints.backends import STOP_GRACE_SECONDS
from local_mode.endpoints.backends.files import (
    instance_socket_path,
    log_tail,
    remove_instance_socket,
)
from local_mode.endpoints.spec import ContainerSpec
from local_mode.endpoints.usage import Usage, docker_stats_usage
from local_mode.errors import BackendUnsupported
from local_mode.instance_types import Machine, ResourceLimits, limits_for
from local_mode.log_times import append_line, times_path
from local_mode.loopback import LOOPBACK
from local_mode.state import append_private, make_private_dir

log = logging.getLogger("optml.local.endpoint")

BIND_TO_PORT_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"
CONTAINER_PORT = 8080
MODEL_MOUNT = "/opt/ml/model"
MODELS_MOUNT = "/opt/ml/models"
#: Where a serving container sees the directory of its Unix socket (see OPTML_UNIX_SOCKET).
SOCKET_MOUNT = "/run/optml-local"
EXIT_WAIT_SECONDS = 30.0
"""How long :meth:`DockerServeContainer.stop` waits for the engine beyond the grace."""


class DockerStartFailed(Exception):
    """The engine refused to create or start a container; the message says which and why."""


def _label_true(labels: Mapping[str, str] | None, name: str) -> bool:
    return str((labels or {}).get(name, "")).strip().lower() == "true"


def container_port(image_labels: Mapping[str, str] | None, position: int) -> int | None:
    """The port to tell the container through ``SAGEMAKER_BIND_TO_PORT`` (None: it must listen
    on 8080 because its image does not accept another)."""
    if not _label_true(image_labels, BIND_TO_PORT_LABEL):
        return None
    return CONTAINER_PORT + position


def container_environment(container: ContainerSpec, platform: Mapping[str, str],
                          bind_port: int | None) -> dict[str, str]:
    """The model's Environment, then what the platform sets (which wins), as the service does."""
    env = dict(container.environment)
    env.update(platform)
    if container.multi_model:
        env["SAGEMAKER_MULTI_MODEL"] = "true"
    if bind_port is not None:
        env["SAGEMAKER_BIND_TO_PORT"] = str(bind_port)
    return env


def published_port(attrs: Mapping[str, Any], port: int) -> int:
    """The 127.0.0.1 host port the engine picked for ``port``; 0 when there is none (the
    container already exited, so it has no published ports)."""
    bindings = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{port}/tcp")
    for binding in bindings or ():
        if binding.get("HostIp") in (LOOPBACK, "") and binding.get("HostPort"):
            return int(binding["HostPort"])
    return 0


@dataclass
class DockerServeContainer:
    """One serving container: reachable at ``host:port`` (its published 127.0.0.1 port).

    A thread follows its output into the instance's log file, line by line, and notices the
    exit when the output ends; :meth:`alive` therefore costs no engine call, however often the
    supervisor asks.
    """

    hostname: str
    container_id: str
    log_path: Path
    _client: Any
    _stream_client: Any
    port: int = 0
    host: str = LOOPBACK
    unix_socket: str | None = None
    """This side's path of the socket an optml image also listens on (``OPTML_UNIX_SOCKET``,
    in a directory mounted at :data:`SOCKET_MOUNT`); the router prefers it to the published
    port, which goes through the engine's port proxy."""
    socket_dir: str | None = None
    models_root: Path | None = None
    grace_cap: float | None = None
    _exited: threading.Event = field(default_factory=threading.Event)
    _followed: bool = False
    """Whether :meth:`follow` started the thread that sets ``_exited`` (nothing else waits)."""
    _stream: Any = None
    _stopped: bool = False

    @property
    def pid(self) -> int | None:
        return None  # the process lives in the container's PID namespace

    def alive(self) -> bool:
        return not self._exited.is_set()

    def follow(self) -> None:
        """Start the thread that copies output to the log and marks the exit."""
        threading.Thread(target=self._follow, name=f"log-{self.hostname}", daemon=True).start()
        self._followed = True

    def _follow(self) -> None:
        try:
            with append_private(self.log_path) as out, \
                    append_private(times_path(self.log_path)) as times:
                for line in output_lines(self._stream, self.hostname, lambda: self._stopped):
                    append_line(out, times, line)  # with its time, for logs --since
                    out.flush()  # the log's tail is read while the container runs
                    times.flush()
            # the output ends when the container stops; confirm with the engine (which may
            # have removed it already, or gone away)
            with contextlib.suppress(Exception):
                self._stream_client.api.wait(self.container_id)
        finally:
            self._exited.set()

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM, SIGKILL after ``grace`` (the engine's own ``docker stop``), then remove."""
        if self._stopped:
            return
        self._stopped = True
        if self.grace_cap is not None:
            grace = min(grace, self.grace_cap)
        try:
            if not self._exited.is_set():
                try:
                    self._client.api.stop(self.container_id, timeout=max(0, round(grace)))
                except Exception as exc:  # noqa: BLE001 - gone already: removal below
                    log.debug("%s: stop: %s", self.hostname, exc)
                if self._followed:  # else no thread would ever say so: don't wait for it
                    self._exited.wait(EXIT_WAIT_SECONDS)
        finally:
            ignore_missing(self._client.api.remove_container, self.container_id, force=True,
                            v=True)
            if self.unix_socket is not None:
                remove_instance_socket(self.unix_socket, self.socket_dir)
            self._exited.set()
            if self._stream is not None:
                self._stream.close()
            self._stream_client.close()

    def kill(self) -> None:
        """SIGKILL and remove (an instance that could not be started completely)."""
        self.stop(grace=0)

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def usage(self) -> Usage | None:
        """The engine's one-shot stats of the container (None once it has exited)."""
        if self._exited.is_set():
            return None
        try:
            stats = self._client.api.stats(self.container_id, stream=False, one_shot=True)
        except Exception as exc:  # noqa: BLE001 - gone meanwhile, or the engine is busy
            log.debug("%s: stats: %s", self.hostname, exc)
            return None
        return docker_stats_usage(stats)

    def model_url(self, directory: Path) -> str:
        """Where the container sees ``directory`` (a model under the mounted model cache)."""
        if self.models_root is None:
            return str(directory)
        relative = directory.resolve().relative_to(self.models_root.resolve())
        return str(PurePosixPath(MODELS_MOUNT, *relative.parts))


class DockerServingBackend:
    """The endpoint/transform backend that runs each container of a model in Docker.

    One backend serves one endpoint or one transform job (``owner``: ``(label, name)``); it
    creates that owner's network on first use and removes everything it made in :meth:`close`.
    The engine is contacted lazily, so constructing a backend never blocks or fails.
    """

    name = "docker"

    def __init__(self, owner: tuple[str, str] = (ENDPOINT_LABEL, "local"),
                 state_dir: str = "", stop_grace: float | None = None, client: Any = None,
                 machine: Machine | None = None) -> None:
        self.owner = owner
        self.state_dir = state_dir
        self.stop_grace = stop_grace
        self._client = client
        self._owns_client = client is None
        self._machine = machine
        self._network: str | None = None
        self._lock = threading.Lock()
        self._labels_cache: dict[str, Mapping[str, str]] = {}
        self._warned: set[str] = set()
        self._started: list[DockerServeContainer] = []

    # -- engine ----------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = reachable_client()
            return self._client

    @property
    def labels(self) -> dict[str, str]:
        return {self.owner[0]: self.owner[1], STATE_LABEL: self.state_dir}

    def _image_labels(self, container: ContainerSpec) -> Mapping[str, str]:
        """The labels of the container's image;
        :class:`~local_mode.docker_engine.ImageNotFound` naming the container and the image
        when the engine does not have it (the runner fails the endpoint or job with it)."""
        image = container.image
        assert image is not None
        if image not in self._labels_cache:
            found = require_image(self.client, image, f"container {container.hostname}: Image")
            self._labels_cache[image] = dict(found.labels or {})
        return self._labels_cache[image]

    def _ensure_network(self) -> str:
        with self._lock:
            if self._network is None:
                name = f"optml-{self.owner[1]}-{secrets.token_hex(3)}"
                assert self._client is not None
                self._client.api.create_network(name, driver="bridge", labels=self.labels,
                                                check_duplicate=True)
                self._network = name
            return self._network

    def limits(self, instance_type: str) -> ResourceLimits:
        limits = limits_for(instance_type, self._machine or Machine.current())
        if limits.warning and instance_type not in self._warned:
            self._warned.add(instance_type)
            log.warning("%s", limits.warning.replace("each host container",
                                                     "each serving container"))
        return limits

    # -- Backend ---------------------------------------------------------------------------
    def check(self, container: ContainerSpec, model_dir: Path) -> None:
        if not container.image:
            raise BackendUnsupported(f"container {container.hostname}: the Docker backend needs "
                                     "the container's Image")
        self._image_labels(container)

    def start(self, container: ContainerSpec, model_dir: Path, workdir: Path,
              environment: Mapping[str, str], log_path: Path, *,
              instance_type: str = "local", position: int = 0) -> DockerServeContainer:
        import docker.errors

        assert container.image is not None
        labels = self._image_labels(container)
        network = self._ensure_network()
        api = self.client.api
        bind_port = container_port(labels, position)
        port = bind_port or CONTAINER_PORT
        target = MODELS_MOUNT if container.multi_model else MODEL_MOUNT
        limits = self.limits(instance_type)
        binds = {str(model_dir.resolve()): {"bind": target, "mode": "ro"}}
        environment = container_environment(container, environment, bind_port)
        workdir.mkdir(parents=True, exist_ok=True)
        unix_socket, socket_dir = instance_socket_path(workdir)
        if unix_socket is not None:
            binds[os.path.dirname(unix_socket)] = {"bind": SOCKET_MOUNT, "mode": "rw"}
            environment["OPTML_UNIX_SOCKET"] = f"{SOCKET_MOUNT}/{os.path.basename(unix_socket)}"
        host_config = api.create_host_config(
            binds=binds, port_bindings={port: (LOOPBACK, None)}, network_mode=network,
            **limits_host_config(limits))
        networking = api.create_networking_config(
            {network: api.create_endpoint_config(aliases=[container.hostname])})
        make_private_dir(log_path.parent)
        try:
            created = api.create_container(
                container.image, command=["serve"], hostname=container.hostname,
                environment=environment,
                labels=self.labels, ports=[port], host_config=host_config,
                networking_config=networking, name=f"{network}-{container.hostname}-"
                                                    f"{secrets.token_hex(3)}")
        except docker.errors.APIError as exc:
            if unix_socket is not None:
                remove_instance_socket(unix_socket, socket_dir)
            raise DockerStartFailed(f"container {container.hostname}: the engine refused to "
                                    f"create a container of {container.image}: "
                                    f"{exc.explanation or exc}") from None
        stream_client = connect(timeout=None, version=api.api_version)
        serving = DockerServeContainer(
            container.hostname, created["Id"], log_path, self.client, stream_client,
            models_root=model_dir if container.multi_model else None,
            grace_cap=self.stop_grace, unix_socket=unix_socket, socket_dir=socket_dir)
        self._started.append(serving)
        try:
            serving._stream = stream_client.api.attach(created["Id"], stdout=True, stderr=True,
                                                       stream=True, logs=True, demux=True)
            api.start(created["Id"])
            serving.port = published_port(api.inspect_container(created["Id"]), port)
        except docker.errors.APIError as exc:
            serving.kill()
            raise DockerStartFailed(f"container {container.hostname} of {container.image} did "
                                    f"not start (`serve`): {exc.explanation or exc}") from None
        serving.follow()
        return serving

    def close(self) -> None:
        """Remove every container and the network of this owner (never raises)."""
        if self._client is None:
            return
        try:
            for serving in self._started:
                serving.stop(0)  # a no-op for those the runner already stopped
            sweep(self._client, self.labels)
        except Exception as exc:  # noqa: BLE001 - logged; sweep() can finish the job later
            log.warning("could not remove the containers/network of %s=%s (%s)", *self.owner,
                        exc)
        finally:
            self._started.clear()
            if self._owns_client:
                self._client.close()
                self._client = None
