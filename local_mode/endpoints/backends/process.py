"""Serving containers as ``optml serve`` processes on this machine (no Docker needed).

Each container runs as ``python -m toolkit.cli serve`` with ``SAGEMAKER_BASE_DIR`` pointing at a
private /opt/ml tree whose ``model`` is the extracted model artifact, listening on a free
127.0.0.1 port told through ``SAGEMAKER_BIND_TO_PORT``. It therefore runs *toolkit-based* models
only: the inference code must be in the artifact's ``code/`` directory (or named by
``SAGEMAKER_PROGRAM`` / ``SAGEMAKER_SUBMIT_DIRECTORY`` / ``OPTML_DEFAULT_HANDLERS``). ``Image`` is
not run; a model whose behaviour lives only in its image needs the Docker backend
(:mod:`local_mode.endpoints.backends.docker`), and :meth:`ProcessBackend.check` says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from local_mode.endpoints.backends import STOP_GRACE_SECONDS
from local_mode.endpoints.backends.files import (
    instance_socket_path,
    log_tail,
    remove_instance_socket,
)
from local_mode.endpoints.spec import ContainerSpec
from local_mode.endpoints.usage import Usage, process_tree_usage
from local_mode.errors import BackendUnsupported
from local_mode.instance_types import Machine, instance_memory
from local_mode.log_times import append_line, times_path
from local_mode.loopback import LOOPBACK, free_port
from local_mode.state import append_private, make_private_dir
from toolkit.pids import group_alive

GROUP_EXIT_SECONDS = 10.0
"""How long a stop waits for a SIGKILLed process group to be gone from the process table."""
COPY_DRAIN_SECONDS = 1.0
"""How long a dead process's last output may take to reach its log before it is read."""
_PR_SET_PDEATHSIG = 1


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
    copier: threading.Thread | None = None
    """The thread that appends the process's output to ``log_path`` with each line's time."""
    memory_limit: int = 0
    """The memory its instance type has (capped to the machine's), for MemoryUtilization."""
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
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
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
        with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already
            os.killpg(self.popen.pid, sig)

    def log_tail(self, lines: int = 20) -> str:
        if self.copier is not None and not self.alive():  # its last lines may be in flight
            self.copier.join(timeout=COPY_DRAIN_SECONDS)
        return log_tail(self.log_path, lines)

    def model_url(self, directory: Path) -> str:
        return str(directory)

    def usage(self) -> Usage | None:
        """The server's and its workers' CPU time and memory (its process tree)."""
        if not self.alive():
            return None
        return process_tree_usage(self.popen.pid, self.memory_limit)


def copy_output(popen: subprocess.Popen[bytes], log_path: Path) -> None:
    """Append the process's output to ``log_path`` line by line, each line's time beside it
    (:mod:`local_mode.log_times`, for ``logs --since``), until every writer of the pipe -- the
    server and its workers -- has exited."""
    assert popen.stdout is not None
    with popen.stdout as output, append_private(log_path) as log, \
            append_private(times_path(log_path)) as times:
        for line in output:
            append_line(log, times, line if line.endswith(b"\n") else line + b"\n")
            log.flush()  # the log's tail is read while the process runs
            times.flush()


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
        self.machine = Machine.current()

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
        """``instance_type`` is not enforced (no limits on a plain process; it only sizes
        MemoryUtilization); each process gets its own free port, so ``position`` needs no
        port of its own either."""
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
        env["OPTML_BIND_HOST"] = LOOPBACK
        unix_socket, socket_dir = instance_socket_path(workdir)
        if unix_socket is not None:
            env["OPTML_UNIX_SOCKET"] = unix_socket
        make_private_dir(log_path.parent)
        try:
            popen = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
                [self.python, "-m", "toolkit.cli", "serve"], env=env, cwd=workdir,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
                preexec_fn=_die_with_parent)  # prctl only (see there): safe before exec
        except BaseException:
            if unix_socket is not None:
                remove_instance_socket(unix_socket, socket_dir)
            raise
        copier = threading.Thread(target=copy_output, args=(popen, log_path),
                                  name=f"log-{container.hostname}", daemon=True)
        copier.start()
        return ServeProcess(container.hostname, port, popen, log_path, unix_socket=unix_socket,
                            socket_dir=socket_dir, copier=copier,
                            memory_limit=instance_memory(instance_type, self.machine))

    def close(self) -> None:
        """Nothing to remove: every process was stopped (and dies with its runner anyway)."""
