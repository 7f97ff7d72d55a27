"""``optml serve`` with ``OPTML_UNIX_SOCKET``: a real server answers the same on its TCP port
and on the Unix socket, removes the socket when it stops, and keeps serving on TCP (with a
warning) when the socket cannot be made."""

from __future__ import annotations

import http.client
import os
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_serve_support import Server, model_tree

#: Echoes the body and says, in a response header, which kind of socket carried the request.
FAMILY_MODEL = """
    import json
    import socket

    def model_fn(model_dir):
        return "echo"

    def transform_fn(model, body, content_type, accept, context):
        conn = context.headers.environ["gunicorn.socket"]
        context.set_response_header("X-Socket-Family", socket.AddressFamily(conn.family).name)
        if isinstance(body, str):
            body = body.encode()
        return json.dumps({"model": model, "body": body.decode()}), "application/json"
"""

ONE_WORKER = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
IGNORED_HEADERS = {"date", "x-socket-family"}


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix stream socket (the ``Host`` header still names ``localhost``)."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


Answer = tuple[int, dict[str, str], bytes, str | None]


def _exchange(conn: http.client.HTTPConnection, method: str, path: str,
              body: bytes | None = None, headers: dict[str, str] | None = None) -> Answer:
    """(status, headers without the per-response ones, body, X-Socket-Family)."""
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        kept = {k.lower(): v for k, v in response.getheaders()
                if k.lower() not in IGNORED_HEADERS}
        return response.status, kept, data, response.getheader("X-Socket-Family")
    finally:
        conn.close()


@pytest.fixture()
def socket_dir() -> Iterator[Path]:
    """A short private directory: sun_path holds 108 bytes, pytest's tmp_path may not fit."""
    with tempfile.TemporaryDirectory(prefix="optml-test-") as name:
        yield Path(name)


def test_ping_and_invocations_answer_the_same_on_tcp_and_on_the_unix_socket(
        tmp_path: Path, socket_dir: Path) -> None:
    path = socket_dir / "serve.sock"
    server = Server(model_tree(tmp_path, FAMILY_MODEL),
                    env={**ONE_WORKER, "OPTML_UNIX_SOCKET": str(path)})
    try:
        server.wait_ready()
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o777

        def tcp() -> http.client.HTTPConnection:
            return http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

        def unix() -> http.client.HTTPConnection:
            return UnixHTTPConnection(str(path))

        ping_tcp = _exchange(tcp(), "GET", "/ping")
        ping_unix = _exchange(unix(), "GET", "/ping")
        assert ping_tcp[0] == 200
        assert ping_unix[:3] == ping_tcp[:3]

        body = b"hello over two sockets"
        headers = {"Content-Type": "text/plain", "Accept": "application/json"}
        inv_tcp = _exchange(tcp(), "POST", "/invocations", body, headers)
        inv_unix = _exchange(unix(), "POST", "/invocations", body, headers)
        assert inv_tcp[0] == 200
        assert inv_tcp[2] == b'{"model": "echo", "body": "hello over two sockets"}'
        assert inv_unix[:3] == inv_tcp[:3]
        # the same answer, but each really came over the socket it was sent on
        assert (inv_tcp[3], inv_unix[3]) == ("AF_INET", "AF_UNIX")

        # an error answers alike too
        missing_tcp = _exchange(tcp(), "GET", "/no-such-route")
        missing_unix = _exchange(unix(), "GET", "/no-such-route")
        assert missing_tcp[0] == 404
        assert missing_unix[:3] == missing_tcp[:3]

        # keep-alive works over the Unix socket: two requests on one connection
        conn = UnixHTTPConnection(str(path))
        try:
            for _ in range(2):
                conn.request("GET", "/ping")
                response = conn.getresponse()
                response.read()
                assert response.status == 200
        finally:
            conn.close()

        assert server.terminate() == 0
        assert not os.path.lexists(path)
        assert "Traceback" not in server.log
    finally:
        server.stop()


def test_a_missing_socket_directory_warns_and_serves_on_tcp(tmp_path: Path,
                                                            socket_dir: Path) -> None:
    path = socket_dir / "absent" / "serve.sock"
    server = Server(model_tree(tmp_path, FAMILY_MODEL),
                    env={**ONE_WORKER, "OPTML_UNIX_SOCKET": str(path)})
    try:
        server.wait_ready()
        answer = _exchange(http.client.HTTPConnection("127.0.0.1", server.port, timeout=30),
                           "POST", "/invocations", b"still here",
                           {"Content-Type": "text/plain"})
        assert answer[0] == 200 and answer[3] == "AF_INET"
        warnings = [line for line in server.log.splitlines() if "OPTML_UNIX_SOCKET" in line]
        assert len(warnings) == 1, server.log
        assert str(path) in warnings[0]
        assert "WARNING" in warnings[0].upper()
        assert server.terminate() == 0
        assert not path.parent.exists()
    finally:
        server.stop()


def test_a_regular_file_at_the_socket_path_is_left_alone(tmp_path: Path,
                                                         socket_dir: Path) -> None:
    """The server must neither replace nor, at exit, delete a file it did not create."""
    path = socket_dir / "serve.sock"
    path.write_bytes(b"not a socket")
    server = Server(model_tree(tmp_path, FAMILY_MODEL),
                    env={**ONE_WORKER, "OPTML_UNIX_SOCKET": str(path)})
    try:
        server.wait_ready()
        assert path.read_bytes() == b"not a socket"
        assert "OPTML_UNIX_SOCKET" in server.log
        assert server.terminate() == 0
        assert path.read_bytes() == b"not a socket"
    finally:
        server.stop()


def test_an_invalid_socket_path_fails_start_up_naming_the_variable(tmp_path: Path) -> None:
    server = Server(model_tree(tmp_path, FAMILY_MODEL),
                    env={**ONE_WORKER, "OPTML_UNIX_SOCKET": "relative/serve.sock"})
    try:
        status = server.proc.wait(timeout=60)
        assert status != 0
        assert "OPTML_UNIX_SOCKET" in server.log
        assert "Traceback" not in server.log
    finally:
        server.stop()
