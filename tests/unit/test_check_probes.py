"""``optml check``'s HTTP probes against a real server on 127.0.0.1 (no Docker)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from local_mode.check.probes import InFlight, NoAnswer, request


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Handler.received.append(body)
        if self.path == "/drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        reply = body.upper()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[ThreadingHTTPServer]:
    _Handler.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_in_flight_request_is_held_until_finished(server: ThreadingHTTPServer) -> None:
    port = server.server_address[1]
    pending = InFlight("127.0.0.1", port, "/echo", b"abc", {"Content-Type": "text/plain"}, 5)
    assert _Handler.received == []  # the server is still waiting for the last byte
    answer = pending.finish()
    assert (answer.status, answer.body, answer.content_type) == (200, b"ABC", "text/plain")
    assert _Handler.received == [b"abc"]


def test_one_byte_body_sends_headers_only_first(server: ThreadingHTTPServer) -> None:
    pending = InFlight("127.0.0.1", server.server_address[1], "/echo", b"x", {}, 5)
    assert pending.finish().body == b"X"


def test_a_dropped_request_says_so(server: ThreadingHTTPServer) -> None:
    with pytest.raises(NoAnswer, match="closed the connection without a response|reset"):
        request("127.0.0.1", server.server_address[1], "POST", "/drop", b"x", timeout=5)


def test_nothing_listening_is_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NoAnswer, match="connection refused"):
        request("127.0.0.1", port, "GET", "/ping", timeout=2)
