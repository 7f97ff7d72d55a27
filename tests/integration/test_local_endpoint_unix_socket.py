"""Local endpoints on the process backend reach their ``optml serve`` instances over the Unix
socket the backend asks for (``OPTML_UNIX_SOCKET``), and leave no socket or private temporary
directory behind once the endpoint is deleted or an instance is killed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_mode.endpoints.backends.files import instance_socket_path, remove_instance_socket
from local_mode.endpoints.backends.process import ProcessBackend, ServeProcess
from local_mode.endpoints.spec import ContainerSpec
from tests.integration.test_local_endpoints_support import (
    FAST_ENV,
    Local,
    local,
    make_model_tar,
)
from toolkit.pids import pid_alive
from toolkit.settings import MAX_UNIX_SOCKET_PATH

__all__ = ["local"]  # the fixture, re-exported for pytest

#: Answers with the kind of socket that carried the request and the address it arrived on.
SOCKET_MODEL = """
    import json
    import os
    import socket

    def model_fn(model_dir):
        return "socket-probe"

    def transform_fn(model, body, content_type, accept, context):
        conn = context.headers.environ["gunicorn.socket"]
        return json.dumps({"family": socket.AddressFamily(conn.family).name,
                           "address": str(conn.getsockname()),
                           "pid": os.getpid()}), "application/json"
"""

#: Long enough that <state>/endpoints/<name>/work/instances/... cannot hold a socket.
LONG_NAME = "unix-socket-" + "x" * 50


def _serve_pid(local: Local, name: str) -> int:
    [instance] = local.private(name)["Instances"]
    [pid] = instance["Pids"]
    return int(pid)


def _socket_of(pid: int) -> str:
    """The ``OPTML_UNIX_SOCKET`` the backend gave the ``optml serve`` process ``pid``."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    for entry in raw.split(b"\0"):
        key, _, value = entry.partition(b"=")
        if key == b"OPTML_UNIX_SOCKET":
            return os.fsdecode(value)
    raise AssertionError(f"process {pid} has no OPTML_UNIX_SOCKET")


def _deploy(local: Local, name: str) -> str:
    local.model("m", SOCKET_MODEL)
    local.config("c", ("AllTraffic", "m", 1, 1.0))
    local.endpoint(name, "c")
    return name


def _invoke_over(local: Local, name: str, path: str) -> None:
    """Three invocations, each answered by the instance over its Unix socket."""
    for index in range(3):
        response = local.invoke(name, f"call {index}".encode())
        data = json.loads(response["Data"])
        assert data["family"] == "AF_UNIX", data
        assert data["address"] == path


def _is_socket(path: str) -> bool:
    return os.path.lexists(path) and stat.S_ISSOCK(os.lstat(path).st_mode)


def test_a_long_work_dir_puts_the_socket_in_a_private_temp_dir_removed_on_delete(
        local: Local) -> None:
    name = _deploy(local, LONG_NAME)
    pid = _serve_pid(local, name)
    path = _socket_of(pid)
    directory = os.path.dirname(path)
    inside = local.sm.store.get("endpoints", name).work_dir / "instances"
    assert len(str(inside).encode()) > MAX_UNIX_SOCKET_PATH  # the fallback's precondition
    assert len(path.encode()) <= MAX_UNIX_SOCKET_PATH
    assert os.path.basename(path) == "serve.sock"
    assert os.path.basename(directory).startswith("optml-")
    assert os.path.dirname(directory) == tempfile.gettempdir()
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700  # private to this user
    assert _is_socket(path)

    _invoke_over(local, name, path)

    local.sm.delete_endpoint(EndpointName=name)
    assert not pid_alive(pid)
    assert not os.path.lexists(path)
    assert not os.path.lexists(directory)


@pytest.fixture()
def short_local() -> Iterator[Local]:
    """A client whose state directory is short enough to keep sockets in the work dirs."""
    with tempfile.TemporaryDirectory(prefix="ou-") as root:
        env = Local(Path(root))
        try:
            yield env
        finally:
            env.cleanup()


def test_a_short_work_dir_keeps_the_socket_inside_the_instance_dir(short_local: Local) -> None:
    name = _deploy(short_local, "e1")
    pid = _serve_pid(short_local, name)
    [instance] = short_local.private(name)["Instances"]
    work_dir = short_local.sm.store.get("endpoints", name).work_dir
    expected = (work_dir / "instances" / instance["Id"] / "primary").resolve() / "serve.sock"
    path = _socket_of(pid)
    assert path == str(expected)
    assert _is_socket(path)

    _invoke_over(short_local, name, path)

    short_local.sm.delete_endpoint(EndpointName=name)
    assert not pid_alive(pid)
    assert not os.path.lexists(path)
    assert not work_dir.exists()


def _wait_for_socket(process: ServeProcess, timeout: float = 60.0) -> str:
    assert process.unix_socket is not None
    deadline = time.monotonic() + timeout
    while not _is_socket(process.unix_socket):
        if not process.alive() or time.monotonic() > deadline:
            raise AssertionError(f"no socket at {process.unix_socket}:\n{process.log_tail()}")
        time.sleep(0.05)
    return process.unix_socket


def test_kill_removes_the_socket_and_temp_dir_a_sigkilled_server_leaves(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    tar = make_model_tar(tmp_path / "model.tar.gz", SOCKET_MODEL)
    model_dir.mkdir()
    subprocess.run(["tar", "-xzf", str(tar), "-C", str(model_dir)], check=True)
    workdir = tmp_path / ("w" * MAX_UNIX_SOCKET_PATH)  # forces the private temp dir
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "OPTML_"))}
    backend = ProcessBackend(environ, python=sys.executable)
    container = ContainerSpec(hostname="primary", image=None, model_data_url=None,
                              environment=FAST_ENV)
    process = backend.start(container, model_dir, workdir, {}, tmp_path / "serve.log")
    try:
        path = _wait_for_socket(process)
        directory = os.path.dirname(path)
        assert os.path.basename(directory).startswith("optml-")
        process.kill()  # no SIGTERM: gunicorn never gets to unlink its socket
        process.popen.wait(timeout=30)
        assert not os.path.lexists(path)
        assert not os.path.lexists(directory)
    finally:
        process.stop(grace=5)
    assert not os.path.lexists(os.path.dirname(process.unix_socket or ""))


# -- instance_socket_path / remove_instance_socket -----------------------------------------------------------

def test_socket_path_inside_a_short_work_dir() -> None:
    with tempfile.TemporaryDirectory(prefix="ou-") as root:
        workdir = Path(root) / "instance"
        workdir.mkdir()
        path, private = instance_socket_path(workdir)
        assert path == str(workdir.resolve() / "serve.sock") and private is None
        assert os.listdir(root) == ["instance"]  # no temp dir was made


def test_socket_path_falls_back_to_a_private_temp_dir_that_remove_socket_removes(
        tmp_path: Path) -> None:
    workdir = tmp_path / ("w" * MAX_UNIX_SOCKET_PATH)
    path, private = instance_socket_path(workdir)
    assert path is not None and private is not None
    directory = os.path.dirname(path)
    assert directory == private
    try:
        assert len(path.encode()) <= MAX_UNIX_SOCKET_PATH
        assert os.path.basename(path) == "serve.sock"
        assert os.path.basename(directory).startswith("optml-")
        assert os.path.dirname(directory) == tempfile.gettempdir()
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert not workdir.exists()
        Path(path).touch()  # what a server that died without unlinking leaves
        remove_instance_socket(path, private)
        assert not os.path.lexists(directory)
        remove_instance_socket(path, private)  # idempotent: stop() after kill() calls it again
    finally:
        if os.path.isdir(directory):
            os.rmdir(directory)


def test_two_fallback_paths_never_collide(tmp_path: Path) -> None:
    first, first_dir = instance_socket_path(tmp_path / ("a" * MAX_UNIX_SOCKET_PATH))
    second, second_dir = instance_socket_path(tmp_path / ("a" * MAX_UNIX_SOCKET_PATH))
    assert first is not None and second is not None
    try:
        assert first != second
    finally:
        remove_instance_socket(first, first_dir)
        remove_instance_socket(second, second_dir)
    assert not os.path.lexists(os.path.dirname(first))
    assert not os.path.lexists(os.path.dirname(second))


def test_remove_socket_in_a_work_dir_removes_only_the_socket(tmp_path: Path) -> None:
    workdir = tmp_path / "primary"
    workdir.mkdir()
    (workdir / "kept.txt").write_text("kept")
    path = workdir / "serve.sock"
    path.touch()
    remove_instance_socket(str(path), None)
    assert not path.exists()
    assert (workdir / "kept.txt").read_text() == "kept"


def test_remove_socket_keeps_a_work_dir_whose_name_starts_with_optml() -> None:
    """The work dir is .../instances/<id>/<ContainerHostname>, and a user may name a container
    ``optml-main``: only a directory ``instance_socket_path`` made may be removed, not that one."""
    with tempfile.TemporaryDirectory(prefix="ou-") as root:
        workdir = Path(root) / "instances" / "AllTraffic-1" / "optml-main"
        workdir.mkdir(parents=True)
        (workdir / "kept.txt").write_text("kept")
        path, private = instance_socket_path(workdir)
        assert path is not None and private is None
        assert os.path.dirname(path) == str(workdir.resolve())
        Path(path).touch()
        remove_instance_socket(path, private)
        assert not os.path.lexists(path)
        assert (workdir / "kept.txt").read_text() == "kept"


def test_the_fallback_socket_path_fits_even_under_a_long_tmpdir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server refuses an OPTML_UNIX_SOCKET over MAX_UNIX_SOCKET_PATH bytes (ConfigError at
    start-up), so the backend must never hand it one, whatever TMPDIR is."""
    long_tmp = tmp_path / ("t" * MAX_UNIX_SOCKET_PATH)
    long_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long_tmp))
    path, private = instance_socket_path(tmp_path / ("w" * MAX_UNIX_SOCKET_PATH))
    try:
        # /tmp, or no socket at all (the router then uses the port): never an unusable path
        assert path is None or len(path.encode()) <= MAX_UNIX_SOCKET_PATH, path
    finally:
        if path is not None:
            remove_instance_socket(path, private)
