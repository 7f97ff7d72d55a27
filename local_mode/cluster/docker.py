"""Run a job's hosts as Docker containers of the job's image, as the service does.

A job of several hosts gets its own user-defined bridge network; host ``algo-i`` is a container
whose hostname and network alias are ``algo-i`` (its container name also carries the job and a
random suffix, so concurrent jobs never clash), so the hosts find each other by name through
Docker's DNS, as they do on the service. A job of one host has no peer to find: it runs on the
engine's default bridge with hostname ``algo-1`` (which its /etc/hosts resolves), because making
and removing a network of its own costs more than the rest of a short job (about 0.3 s of
create, slower start and removal). Each host also gets a fixed address on that network, written into every
container's /etc/hosts: Docker's DNS forgets a container as soon as it exits, and a host that
finishes early (or has not started yet) must still resolve for its peers, as instances do.
Each container gets only the directories the workload names (:meth:`Workload.mounts
<local_mode.cluster.Workload.mounts>`: the parts of ``/opt/ml`` the platform owns for that kind
of job), bind-mounted from its host's tree as laid out by the runner; what the image keeps
elsewhere under ``/opt/ml`` -- ``/opt/ml/code`` above all -- stays visible, as on the service.
``docs/contract.md`` lists the mounts of each kind and why.

The command is the workload's (:meth:`Workload.container_command
<local_mode.cluster.Workload.container_command>`); the environment is exactly the one the runner
gives; no port is published. CPU and memory are limited to the instance type's
(:mod:`local_mode.instance_types`).

Images are never pulled: no registry is reachable from local mode's machines, so an image that is
not in the local engine fails the job with a reason that names it. Everything created carries the
labels ``optml.job=<job name>``, ``optml.kind=<training-job|processing-job>`` and
``optml.run=<run id>`` (the network's name when the job has one) and ``optml.state=<state
directory>``, so :func:`local_mode.docker_engine.sweep` can remove the leftovers of a runner that
was killed before its teardown, and ``optml local prune`` those of its own state directory only.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_mode.cluster import ContainerStartFailed, Host, Workload
from local_mode.docker_engine import (
    JOB_LABEL,
    KIND_LABEL,
    RUN_LABEL,
    STATE_LABEL,
    connect,
    ignore_missing,
    limits_host_config,
    output_lines,
    reachable_client,
    require_image,
    sweep,
)
from local_mode.errors import BackendUnsupported
from local_mode.instance_types import Machine, ResourceLimits, limits_for
from toolkit.settings import Settings

log = logging.getLogger("optml.local")

UNKNOWN_EXIT = 255
"""Exit status reported when the engine can no longer tell a container's status."""
DEFAULT_NETWORK = "bridge"
"""The engine's default network, where a job of one host runs."""
NETWORK_ATTEMPTS = 5
"""Tries to create a job network when a concurrent job takes the same subnet first."""


# -- the engine --------------------------------------------------------------------------------

def reclaim_ownership(client: Any, image: str, path: Path, uid: int, gid: int,
                      labels: Mapping[str, str]) -> None:
    """``chown -R uid:gid`` ``path`` from inside a throw-away container of ``image``.

    Containers usually run as root, so what they write into a bind mount is root's; a runner that
    is not root could then neither pack nor delete it. The same image is used because it is the
    one image known to be present (it needs a ``chown``; busybox and coreutils both have one).
    """
    client.containers.run(image, ["chown", "-R", f"{uid}:{gid}", "/reclaim"],
                          entrypoint=[], user="0:0", network_mode="none", remove=True,
                          labels=dict(labels),
                          volumes={str(path.resolve()): {"bind": "/reclaim", "mode": "rw"}})


def _needs_reclaim(root: Path, uid: int) -> bool:
    if uid == 0 or not root.exists():
        return False
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            try:
                if os.lstat(os.path.join(dirpath, name)).st_uid != uid:
                    return True
            except OSError:
                continue
    return False


@dataclass
class DockerHostRun:
    """One host's container: its output, exit status and signals."""

    host: Host
    container_id: str
    image: str
    labels: Mapping[str, str]
    _client: Any
    _stream_client: Any
    _stream: Any = None
    _exit: int | None = None
    _oom_killed: bool = False
    _exited: threading.Event = field(default_factory=threading.Event)
    _watched: bool = False
    """Whether :meth:`begin` got as far as the thread that sets ``_exited``."""
    _cleaned: bool = False

    def begin(self) -> None:
        """Attach (so no early line is lost), start, and watch for the exit."""
        self._stream = self._stream_client.api.attach(
            self.container_id, stdout=True, stderr=True, stream=True, logs=True, demux=True)
        self._client.api.start(self.container_id)
        threading.Thread(target=self._wait, name=f"wait-{self.host.name}", daemon=True).start()
        self._watched = True

    def _wait(self) -> None:
        import docker.errors

        code = UNKNOWN_EXIT
        try:
            code = int(self._stream_client.api.wait(self.container_id)["StatusCode"])
        except Exception:  # noqa: BLE001 - the engine went away or the container was removed
            code = UNKNOWN_EXIT
        try:  # the exit code says SIGKILL; only the engine knows the kernel's OOM killer did it
            state = self._client.api.inspect_container(self.container_id)["State"]
            self._oom_killed = bool(state.get("OOMKilled"))
            if code == UNKNOWN_EXIT:
                code = int(state.get("ExitCode", UNKNOWN_EXIT))
        except (docker.errors.DockerException, KeyError, ValueError):
            if code == UNKNOWN_EXIT:
                log.warning("%s: the engine cannot tell the container's exit status",
                            self.host.name)
        self._exit = code
        self._exited.set()

    def output(self) -> Iterator[bytes]:
        return output_lines(self._stream, self.host.name, lambda: self._cleaned)

    def poll(self) -> int | None:
        return self._exit if self._exited.is_set() else None

    def out_of_memory(self) -> bool:
        return self._exited.is_set() and self._oom_killed

    def _signal(self, signal_name: str) -> None:
        if self._exited.is_set():
            return
        ignore_missing(self._client.api.kill, self.container_id, signal=signal_name)

    def terminate(self) -> None:
        self._signal("SIGTERM")

    def kill(self) -> None:
        self._signal("SIGKILL")

    def cleanup(self) -> None:
        if self._cleaned:
            return
        try:
            if not self._exited.is_set():
                self.kill()
                if self._watched:  # a container that never started has nothing to wait for
                    self._exited.wait(30)
        finally:
            self._cleaned = True
            if self._stream is not None:
                self._stream.close()
            ignore_missing(self._client.api.remove_container, self.container_id, force=True,
                            v=True)
            self._stream_client.close()
        uid = os.geteuid()
        if _needs_reclaim(self.host.layout.root, uid):
            try:
                reclaim_ownership(self._client, self.image, self.host.layout.root, uid,
                                  os.getegid(), self.labels)
            except Exception as exc:  # noqa: BLE001 - leave the tree; say why it may stay
                log.warning("%s: could not hand files written by the container back to uid %d "
                            "(%s); the work tree may need `sudo rm`", self.host.name, uid, exc)


class DockerBackend:
    """The :class:`~local_mode.cluster.Backend` that runs containers."""

    name = "docker"
    network_interface = "eth0"

    def __init__(self, settings: Settings, client: Any = None,
                 machine: Machine | None = None, state_dir: str = "") -> None:
        self.settings = settings
        self.state_dir = state_dir
        """The state directory of the jobs it runs (label ``optml.state``); empty for a job of
        none (``optml check``'s), whose containers no prune of a state directory may take."""
        self._client = client
        self._owns_client = client is None
        self._machine = machine
        self._job: str | None = None
        self._network: str | None = None
        self._has_network = False
        """Whether the run made a network called ``_network`` (jobs of several hosts only)."""
        self._kind = ""
        self._limits: ResourceLimits | None = None
        self._addresses: dict[str, str] = {}
        self._containers: list[str] = []

    # -- engine ------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = reachable_client()
        return self._client

    def _labels(self) -> dict[str, str]:
        return {JOB_LABEL: self._job or "", KIND_LABEL: self._kind,
                RUN_LABEL: self._network or "",
                **({STATE_LABEL: self.state_dir} if self.state_dir else {})}

    # -- Backend -----------------------------------------------------------------------------
    def host_names(self, count: int) -> list[str]:
        return [f"algo-{index + 1}" for index in range(count)]

    def path_seen_by(self, host: Host, container_path: str) -> str:
        return container_path

    def check(self, workload: Workload) -> None:
        """Refuse, at the Create call, a job without an image or whose image the engine does
        not have (:class:`~local_mode.docker_engine.ImageNotFound` naming the field)."""
        if not workload.image:
            raise BackendUnsupported(f"the Docker backend needs {workload.image_field}")
        require_image(self.client, workload.image, workload.image_field, workload.operation)

    def limits(self, workload: Workload) -> ResourceLimits:
        """The per-container limits for the job's instance type, capped to this machine."""
        if self._limits is None:
            self._limits = limits_for(workload.instance_type,
                                      self._machine or Machine.current())
            if self._limits.warning:
                log.warning("%s", self._limits.warning)
        return self._limits

    def prepare(self, workload: Workload) -> None:
        self._job = workload.name
        self._kind = workload.kind
        # the run's id: its labels and container names, and its network's name if it has one
        self._network = f"optml-{workload.name}-{secrets.token_hex(3)}"
        hosts = self.host_names(workload.instance_count)
        if len(hosts) > 1:
            self._addresses = self._create_network(hosts)
            self._has_network = True
        self.limits(workload)

    def _create_network(self, hosts: Sequence[str]) -> dict[str, str]:
        """Create the job's network with a subnet of its own; return each host's address.

        Fixed addresses need a subnet given at creation, but choosing one by hand could clash
        with networks made by anyone else: let the engine pick a free one, then make the
        network again with that subnet stated (and retry if a concurrent job took it).
        """
        import docker.errors
        from docker.types import IPAMConfig, IPAMPool

        client = self.client
        last_error: Exception | None = None
        for _ in range(NETWORK_ATTEMPTS):
            probe = client.networks.create(self._network, driver="bridge",
                                           labels=self._labels())
            config = (probe.attrs.get("IPAM") or {}).get("Config") or [{}]
            subnet, gateway = config[0].get("Subnet"), config[0].get("Gateway")
            probe.remove()
            if not subnet:
                raise ContainerStartFailed("the engine gave the job network no IPv4 subnet")
            network = ipaddress.ip_network(subnet)
            gateway_ip = ipaddress.ip_address(gateway) if gateway else None
            free = (str(ip) for ip in network.hosts() if ip != gateway_ip)
            addresses = {}
            for host in hosts:
                address = next(free, None)
                if address is None:
                    raise BackendUnsupported(f"{len(hosts)} hosts do not fit the job network "
                                             f"{subnet}")
                addresses[host] = address
            ipam = IPAMConfig(pool_configs=[IPAMPool(
                subnet=subnet, gateway=str(gateway_ip) if gateway_ip else None)])
            try:
                client.networks.create(self._network, driver="bridge", ipam=ipam,
                                       labels=self._labels())
            except docker.errors.APIError as exc:  # the subnet was taken meanwhile
                last_error = exc
                continue
            return addresses
        raise ContainerStartFailed(f"could not create the job network: {last_error}")

    def start(self, workload: Workload, host: Host, hosts: Sequence[str],
              environment: Mapping[str, str]) -> DockerHostRun:
        import docker.errors

        if self._network is None:
            self.prepare(workload)
        assert self._network is not None and workload.image is not None
        image = workload.image
        api = self.client.api
        mounts = workload.mounts(host)
        for mount in mounts:
            mount.source.mkdir(parents=True, exist_ok=True)
        limits = self.limits(workload)
        entrypoint, command = workload.container_command()
        host_config = api.create_host_config(
            mounts=[m.as_docker() for m in mounts],
            network_mode=self._network if self._has_network else DEFAULT_NETWORK,
            extra_hosts=dict(self._addresses) or None, **limits_host_config(limits))
        networking = api.create_networking_config({self._network: api.create_endpoint_config(
            aliases=[host.name], ipv4_address=self._addresses.get(host.name))}) \
            if self._has_network else None
        try:
            created = api.create_container(
                image, command=command, entrypoint=entrypoint, hostname=host.name,
                environment=dict(environment), labels=self._labels(),
                name=f"{self._network}-{host.name}", host_config=host_config,
                networking_config=networking, stdin_open=False, tty=False)
        except docker.errors.APIError as exc:
            raise ContainerStartFailed(f"{host.name}: the engine refused to create a container "
                                       f"of {image}: {exc.explanation or exc}") from None
        container_id = created["Id"]
        self._containers.append(container_id)
        run = DockerHostRun(host, container_id, image, self._labels(), self.client,
                            connect(timeout=None, version=api.api_version))
        try:
            run.begin()
        except docker.errors.APIError as exc:
            run.cleanup()
            raise ContainerStartFailed(f"{host.name}: container of {image} did not start "
                                       f"({_describe_command(entrypoint, command)}): "
                                       f"{exc.explanation or exc}") from None
        return run

    def teardown(self) -> None:
        """Remove every container and the network of this job, whatever happened before.

        Never raises: it runs just before the job's final status is written (a job that says it
        ended holds nothing), and a failure here must neither keep that status from being
        written nor the runner from deleting the work tree. What cannot be removed is logged (and
        carries the job's label, for :func:`~local_mode.docker_engine.sweep`).
        """
        if self._client is None:
            return
        try:
            for container_id in self._containers:
                ignore_missing(self._client.api.remove_container, container_id, force=True,
                                v=True)
            if self._network is not None:  # what else this run made: its network above all
                sweep(self._client, {RUN_LABEL: self._network})
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.warning("could not remove the containers/network of job %s (%s); run a sweep "
                        "for labels %s=%s %s=%s", self._job, exc, JOB_LABEL, self._job,
                        KIND_LABEL, self._kind)
        finally:
            self._containers.clear()
            if self._owns_client:
                self._client.close()
                self._client = None


def _describe_command(entrypoint: list[str] | None, command: list[str] | None) -> str:
    if entrypoint is None:
        return f"image entrypoint with arguments {command}"
    return f"entrypoint {entrypoint} with arguments {command}"
