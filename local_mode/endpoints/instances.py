"""Serving containers for endpoints and transform jobs, behind one small backend protocol.

An *instance* of a variant is one or more containers (an inference pipeline has several), each
listening on its own free 127.0.0.1 port, told through ``SAGEMAKER_BIND_TO_PORT`` -- never a
fixed 8080, so any number of endpoints run at once.

The process backend runs each container as ``python -m toolkit.cli serve`` with
``SAGEMAKER_BASE_DIR`` pointing at a private /opt/ml tree whose ``model`` is the extracted model
artifact. It therefore runs *toolkit-based* models only: the inference code must be in the
artifact's ``code/`` directory (or named by ``SAGEMAKER_PROGRAM`` / ``SAGEMAKER_SUBMIT_DIRECTORY``
/ ``OPTML_DEFAULT_HANDLERS``). ``Image`` is not run; a model whose behaviour lives only in its
image needs the Docker backend, and :meth:`ProcessBackend.check` says so. The Docker backend
(:mod:`local_mode.endpoints.docker_backend`) runs the image itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from local_mode.endpoints.spec import ContainerSpec
from toolkit.pids import group_alive
from toolkit.settings import MAX_UNIX_SOCKET_PATH

LOOPBACK = "127.0.0.1"
STOP_GRACE_SECONDS = 30.0  # the service: SIGTERM, then SIGKILL 30 s later
GROUP_EXIT_SECONDS = 10.0
"""How long a stop waits for a SIGKILLed process group to be gone from the process table."""
_PR_SET_PDEATHSIG = 1


class BackendUnsupported(Exception):
    """This backend cannot run the model; the message says why and what would."""


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (the container binds it a moment later;
    if another process wins that race, the container dies and is replaced on a new port)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


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

    def model_url(self, directory: Path) -> str:
        """The ``url`` of a multi-model ``POST /models`` for a model extracted (on this side)
        into ``directory``: the path as the container sees it."""


class Backend(Protocol):
    """Starts containers. ``check`` runs once per model before any instance starts; ``close``
    once at the end, after every container was stopped (it removes what is left)."""

    name: str

    def check(self, container: ContainerSpec, model_dir: Path) -> None: ...

    def start(self, container: ContainerSpec, model_dir: Path, workdir: Path,
              environment: Mapping[str, str], log_path: Path, *,
              instance_type: str = "local", position: int = 0) -> Container:
        """Start one container; ``position`` is its index in the model's pipeline (0 for a
        single container), ``instance_type`` the variant's (for resource limits)."""

    def close(self) -> None: ...


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the runner dies (kill -9 included), so an
    instance never outlives its endpoint."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


@dataclass
class ServeProcess:
    """One ``optml serve`` process group."""

    hostname: str
    port: int
    popen: subprocess.Popen[bytes]
    log_path: Path
    host: str = LOOPBACK
    unix_socket: str | None = None
    socket_dir: str | None = None
    """A private temporary directory made for ``unix_socket`` (removed with it), if any."""
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int | None:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM (the server drains in-flight requests), SIGKILL of the group after ``grace``."""
        if self._stopped:
            return
        self._stopped = True
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        self._signal(signal.SIGKILL)  # stray workers of this group only
        if self.popen.poll() is None:
            self.popen.wait(timeout=10)
        # SIGKILL is delivered asynchronously: return only once no process of the group runs,
        # so "stopped" (an update's InService, a delete's return) means gone
        deadline = time.monotonic() + GROUP_EXIT_SECONDS
        while group_alive(self.popen.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # each look reads all of /proc
        self._remove_socket_dir()

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        self._remove_socket_dir()

    def _remove_socket_dir(self) -> None:
        if self.unix_socket is not None:
            remove_instance_socket(self.unix_socket, self.socket_dir)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def model_url(self, directory: Path) -> str:
        return str(directory)


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a container's log file ("" before it exists)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def instance_socket_path(workdir: Path) -> tuple[str | None, str | None]:
    """``(socket, private_dir)`` for an instance's Unix socket: in its work directory (removed
    with the endpoint), or, when that path is too long for a socket, in a private temporary
    directory it also returns; ``(None, None)`` when even that is too long (then the router
    simply uses the port)."""
    inside = str(workdir.resolve() / "serve.sock")
    if len(os.fsencode(inside)) <= MAX_UNIX_SOCKET_PATH:
        return inside, None
    for parent in (None, "/tmp"):
        directory = tempfile.mkdtemp(prefix="optml-", dir=parent)
        path = os.path.join(directory, "serve.sock")
        if len(os.fsencode(path)) <= MAX_UNIX_SOCKET_PATH:
            return path, directory
        os.rmdir(directory)
    return None, None


def remove_instance_socket(path: str, private_dir: str | None) -> None:
    """gunicorn removes the socket when it stops; this covers a server that was killed, and
    the private directory made for it."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    if private_dir is not None:
        shutil.rmtree(private_dir, ignore_errors=True)


def _has_code(container: ContainerSpec, model_dir: Path) -> bool:
    env = container.environment
    if env.get("OPTML_DEFAULT_HANDLERS"):
        return True
    program = env.get("SAGEMAKER_PROGRAM") or "inference.py"
    places = [model_dir / "code"]
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY")
    if submit:
        places.append(Path(submit.removeprefix("file://")))
    return any((place / program).is_file() or (place / program.replace(".", "/")).exists()
               or (place / f"{program}.py").is_file() for place in places)


class ProcessBackend:
    """Containers as ``optml serve`` processes on this machine (no Docker needed)."""

    name = "process"

    def __init__(self, environ: Mapping[str, str], python: str = sys.executable) -> None:
        self.environ = environ
        self.python = python

    def check(self, container: ContainerSpec, model_dir: Path) -> None:
        if not _has_code(container, model_dir):
            program = container.environment.get("SAGEMAKER_PROGRAM") or "inference.py"
            raise BackendUnsupported(
                f"container {container.hostname} (image {container.image!r}): the process "
                f"backend runs only toolkit-based models, and found no inference code: expected "
                f"code/{program} in the model artifact, or SAGEMAKER_SUBMIT_DIRECTORY / "
                "SAGEMAKER_PROGRAM / OPTML_DEFAULT_HANDLERS in the container's Environment. "
                "Use the Docker backend to run the image itself.")

    def start(self, container: ContainerSpec, model_dir: Path, workdir: Path,
              environment: Mapping[str, str], log_path: Path, *,
              instance_type: str = "local", position: int = 0) -> ServeProcess:
        """``instance_type`` is not enforced (no limits on a plain process); each process gets
        its own free port, so ``position`` needs no port of its own either."""
        workdir.mkdir(parents=True, exist_ok=True)
        link = workdir / "model"
        if not link.is_symlink() and not link.exists():
            link.symlink_to(model_dir.resolve(), target_is_directory=True)
        port = free_port()
        env = {k: v for k, v in self.environ.items() if not k.startswith("SAGEMAKER_")}
        env.update(container.environment)
        env.update(environment)  # what the platform sets wins over the model's Environment
        submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
        if submit.startswith("file://"):
            env["SAGEMAKER_SUBMIT_DIRECTORY"] = submit[len("file://"):]
        if container.multi_model:
            env["SAGEMAKER_MULTI_MODEL"] = "true"
        env["SAGEMAKER_BASE_DIR"] = str(workdir)
        env["SAGEMAKER_BIND_TO_PORT"] = str(port)
        env["OPTML_BIND_HOST"] = "127.0.0.1"
        unix_socket, socket_dir = instance_socket_path(workdir)
        if unix_socket is not None:
            env["OPTML_UNIX_SOCKET"] = unix_socket
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with log_path.open("ab") as log:
                popen = subprocess.Popen(
                    [self.python, "-m", "toolkit.cli", "serve"], env=env, cwd=workdir,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True,
                    preexec_fn=_die_with_parent)  # noqa: PLW1509 - prctl only; see above
        except BaseException:
            if unix_socket is not None:
                remove_instance_socket(unix_socket, socket_dir)
            raise
        return ServeProcess(container.hostname, port, popen, log_path, unix_socket=unix_socket,
                            socket_dir=socket_dir)

    def close(self) -> None:
        """Nothing to remove: every process was stopped (and dies with its runner anyway)."""


def wait_gone(containers: list[Container], timeout: float) -> None:
    """Stop every container (in order; each drains), within roughly ``timeout`` overall."""
    deadline = time.monotonic() + timeout
    for container in containers:
        container.stop(max(0.5, deadline - time.monotonic()))
