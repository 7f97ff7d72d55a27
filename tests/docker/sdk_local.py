"""Run the reference SageMaker Python SDK's local mode (v2) offline, and clean up after it.

The parity tests and the transform benchmark compare optml with the SDK's local mode on the same
image and data. The SDK is a test-only dependency and drives ``docker-compose`` underneath, so
running it well takes care this module centralises:

- **offline**: fake credentials and region, telemetry opted out through
  ``SAGEMAKER_USER_CONFIG_OVERRIDE``, ``local_code`` and ``file://`` inputs and outputs, so it
  never reaches AWS;
- **isolated**: each run is a child interpreter (the SDK keeps endpoints, models and jobs in
  class-level dictionaries and edits ``os.environ``), in its own session so a hung run is killed
  with every ``docker-compose`` it started;
- **serialised**: the SDK always names its network ``sagemaker-local`` and serves on host port
  8080, so two runs at once (two pytest processes, a test and the benchmark) would collide; a
  file lock lets one run at a time and a serving run first checks that nothing holds the port;
- **swept**: ``docker-compose`` leaves its exited containers and the network behind (and a
  killed run leaves them running). The SDK's ``local.container_root`` points into the run's own
  directory, so its containers are exactly those whose compose working directory lies there;
  they are removed, then the shared network when no container uses it any more.

A script run by :func:`run_sdk` finds ``session`` (a configured ``LocalSession``), ``ARGS``
(its arguments) and ``report(value)`` (hands one JSON value back to :attr:`SdkRun.results`).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

SERVING_PORT = 8080
"""The host port the SDK's local endpoints and transform jobs always bind (``local.serving_port``
could move it, but the parity tests exercise the SDK as users run it)."""
COMPOSE_NETWORK = "sagemaker-local"
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
RESULT_MARKER = "OPTML-SDK-RESULT "
LOCK_PATH = Path(__file__)
"""What runs lock (``flock``): this very file, so the lock leaves nothing behind; every run from
this checkout (tests, the benchmark) shares it, and the port check catches anyone else."""
DEFAULT_TIMEOUT = 600.0
"""A liveness bound for one SDK run (a hung run fails instead of hanging), not a speed check."""

SDK_CONFIG = """SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""

PRELUDE = f'''
import json as _json, sys as _sys
from sagemaker.local import LocalSession as _LocalSession

session = _LocalSession()
session.config = {{"local": {{"local_code": True, "container_root": _sys.argv[1]}}}}
ARGS = _sys.argv[2:]

def report(value):
    # on a line of its own: the SDK prints progress dots and "!" without newlines
    print("\\n" + {RESULT_MARKER!r} + _json.dumps(value), flush=True)
'''


class SdkLocalModeError(RuntimeError):
    """The SDK's local mode could not run here (port taken, lock held too long, SDK failed)."""


@dataclass(frozen=True)
class SdkRun:
    """What one SDK run printed and handed back through ``report``."""

    returncode: int
    stdout: str
    stderr: str
    results: list[Any]
    swept: list[str]

    def check(self) -> SdkRun:
        """``self`` if the run succeeded, else :class:`SdkLocalModeError` with its output's tail."""
        if self.returncode != 0:
            raise SdkLocalModeError(f"the SDK's local mode exited with {self.returncode}:\n"
                                    f"{self.stdout[-3000:]}\n{self.stderr[-3000:]}")
        return self

    @property
    def result(self) -> Any:
        """The last value the script reported."""
        if not self.results:
            raise SdkLocalModeError(f"the SDK script reported nothing:\n{self.stdout[-3000:]}")
        return self.results[-1]


def sdk_environment(config: Path) -> dict[str, str]:
    """This process's environment plus what keeps the SDK offline and quiet."""
    return dict(os.environ, AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing", SAGEMAKER_SUPPRESS_V2_WARNING="1",
                SAGEMAKER_USER_CONFIG_OVERRIDE=str(config), PYTHONUNBUFFERED="1")


def port_in_use(port: int = SERVING_PORT) -> bool:
    """Whether something accepts connections on ``127.0.0.1:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_port_free(port: int = SERVING_PORT, timeout: float = 60.0) -> bool:
    """Wait until nothing listens on ``port`` (docker-proxy lingers a moment after removal)."""
    deadline = time.monotonic() + timeout
    while port_in_use(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@contextmanager
def exclusive(timeout: float = DEFAULT_TIMEOUT, lock_path: Path = LOCK_PATH) -> Iterator[None]:
    """Hold the machine-wide lock of SDK local-mode runs (see the module docstring)."""
    with open(lock_path, "rb") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SdkLocalModeError(f"another SDK local-mode run held {lock_path} for "
                                            f"more than {timeout:.0f} s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sweep(client: docker.DockerClient, container_root: Path) -> list[str]:
    """Remove the compose containers whose working directory is under ``container_root``, then
    the SDK's shared network if no container is attached to it any more; what was removed."""
    removed: list[str] = []
    for container in _compose_containers(client, container_root):
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            continue
        removed.append(f"container {container.name}")
    for network in client.networks.list(names=[COMPOSE_NETWORK]):
        network.reload()
        if network.name != COMPOSE_NETWORK or network.attrs.get("Containers"):
            continue  # names= matches by prefix; a network in use belongs to someone else
        try:
            network.remove()
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            if exc.status_code not in (403, 409):  # in use: it just got a new user
                raise
            continue
        removed.append(f"network {network.name}")
    return removed


def leftovers(client: docker.DockerClient, container_root: Path) -> list[str]:
    """Compose containers of runs under ``container_root`` that still exist."""
    return [f"container {c.name} ({c.status})"
            for c in _compose_containers(client, container_root)]


def _compose_containers(client: docker.DockerClient, root: Path) -> list[Any]:
    """Containers whose compose working directory is ``root`` or lies below it."""
    top = str(root.resolve())
    found = []
    for container in client.containers.list(all=True, filters={"label": WORKING_DIR_LABEL}):
        working_dir = container.labels.get(WORKING_DIR_LABEL) or ""
        if working_dir == top or working_dir.startswith(top + os.sep):
            found.append(container)
    return found


def _results(stdout: str) -> list[Any]:
    return [json.loads(line.split(RESULT_MARKER, 1)[1]) for line in stdout.splitlines()
            if RESULT_MARKER in line]


def _kill_session(process: subprocess.Popen[str]) -> None:
    """SIGKILL the run's whole session: the interpreter and the docker-compose it started."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def run_sdk(script: str, args: Sequence[str], workdir: Path, *, serves: bool = False,
            timeout: float = DEFAULT_TIMEOUT) -> SdkRun:
    """Run ``script`` (after :data:`PRELUDE`) against the SDK's local mode in ``workdir``.

    ``serves``: the script deploys or transforms, so host port 8080 must be free before and is
    checked free again after. Whatever happens, the run's compose containers (and the SDK's
    network, when unused) are gone when this returns; a port still held afterwards is an error.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "sdk-config.yaml"
    config.write_text(SDK_CONFIG)
    container_root = workdir / "sdk-containers"
    container_root.mkdir(exist_ok=True)
    client = docker.from_env(timeout=300)
    try:
        with exclusive(timeout):
            if serves and port_in_use():
                raise SdkLocalModeError(f"127.0.0.1:{SERVING_PORT} is already in use; the SDK's "
                                        "local mode serves on that fixed port")
            process = subprocess.Popen(
                [sys.executable, "-c", PRELUDE + script, str(container_root), *args],
                env=sdk_environment(config), cwd=workdir, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, start_new_session=True)
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_session(process)
                stdout, stderr = process.communicate()
                stderr += f"\n(killed after {timeout:.0f} s)"
            except BaseException:
                _kill_session(process)
                process.communicate()
                raise
            finally:
                _kill_session(process)  # a docker-compose the SDK left running, if any
                swept = sweep(client, container_root)
            if serves and not wait_port_free():
                raise SdkLocalModeError(f"127.0.0.1:{SERVING_PORT} is still in use after the "
                                        "SDK's containers were removed")
    finally:
        client.close()
    return SdkRun(process.returncode, stdout, stderr, _results(stdout), swept)
