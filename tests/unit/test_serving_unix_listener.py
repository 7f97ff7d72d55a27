"""``bind_unix_listener``: the extra Unix-socket listener of ``optml serve``.

It must listen at once, be reachable by another uid, survive a socket file left by a dead
server, be inheritable (gunicorn adopts it by fd), and never delete something at the path that
is not a socket.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolkit.serving.responder import bind_unix_listener


@pytest.fixture()
def short_dir() -> Iterator[Path]:
    """A directory with a short path: pytest's tmp_path can exceed sun_path's 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="optml-test-") as name:
        yield Path(name)


def _round_trip(listener: socket.socket, path: Path) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(str(path))
        conn, _ = listener.accept()
        with conn:
            client.sendall(b"ping")
            conn.sendall(conn.recv(4))
        return client.recv(4)


def test_listens_at_the_path_at_once(short_dir: Path) -> None:
    path = short_dir / "serve.sock"
    listener = bind_unix_listener(str(path))
    try:
        assert listener.family == socket.AF_UNIX
        assert listener.type == socket.SOCK_STREAM
        assert listener.getsockname() == str(path)
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        assert _round_trip(listener, path) == b"ping"
    finally:
        listener.close()


def test_the_socket_file_is_open_to_every_local_user_whatever_the_umask(
        short_dir: Path) -> None:
    path = short_dir / "serve.sock"
    previous = os.umask(0o077)
    try:
        listener = bind_unix_listener(str(path))
    finally:
        os.umask(previous)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o777
    finally:
        listener.close()


def test_a_stale_socket_file_of_a_dead_server_is_replaced(short_dir: Path) -> None:
    path = short_dir / "serve.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays behind, as after a SIGKILL
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    with socket.socket(socket.AF_UNIX) as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(str(path))
    listener = bind_unix_listener(str(path))
    try:
        assert _round_trip(listener, path) == b"ping"
    finally:
        listener.close()


def test_the_listener_is_inheritable_and_a_child_can_accept_on_it(short_dir: Path) -> None:
    path = short_dir / "serve.sock"
    listener = bind_unix_listener(str(path))
    try:
        assert listener.get_inheritable()
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import socket, sys\n"
             "s = socket.socket(fileno=int(sys.argv[1]))\n"
             "c, _ = s.accept()\n"
             "c.sendall(b'from child')\n"
             "c.close()\n",
             str(listener.fileno())],
            pass_fds=(listener.fileno(),))
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(30)
                client.connect(str(path))
                data = b""
                while chunk := client.recv(64):
                    data += chunk
            assert data == b"from child"
            assert child.wait(timeout=30) == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    finally:
        listener.close()


def test_a_missing_directory_raises_and_creates_nothing(short_dir: Path) -> None:
    path = short_dir / "absent" / "serve.sock"
    with pytest.raises(FileNotFoundError):
        bind_unix_listener(str(path))
    assert not path.parent.exists()


def test_a_regular_file_at_the_path_is_kept_and_the_bind_refused(short_dir: Path) -> None:
    path = short_dir / "serve.sock"
    path.write_bytes(b"precious data")
    with pytest.raises(OSError):
        bind_unix_listener(str(path))
    assert path.read_bytes() == b"precious data"


def test_a_directory_at_the_path_is_kept_and_the_bind_refused(short_dir: Path) -> None:
    path = short_dir / "serve.sock"
    path.mkdir()
    (path / "inside").write_text("kept")
    with pytest.raises(OSError):
        bind_unix_listener(str(path))
    assert (path / "inside").read_text() == "kept"


def test_a_symlink_to_a_socket_is_not_followed_for_removal(short_dir: Path) -> None:
    """Only a socket *at* the path is stale; a link there (even to a socket) is refused and
    neither the link nor what it points to is removed."""
    target = short_dir / "real.sock"
    other = bind_unix_listener(str(target))
    link = short_dir / "serve.sock"
    link.symlink_to(target)
    try:
        with pytest.raises(OSError):
            bind_unix_listener(str(link))
        assert link.is_symlink()
        assert stat.S_ISSOCK(os.lstat(target).st_mode)
    finally:
        other.close()


def test_a_path_too_long_for_sun_path_raises(short_dir: Path) -> None:
    path = short_dir / ("s" * 120)
    with pytest.raises(OSError):
        bind_unix_listener(str(path))
    assert not path.exists()
