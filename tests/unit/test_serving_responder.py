"""The pre-bind responder and the ping-routing peek of the worker class."""

from __future__ import annotations

import json
import socket

from toolkit.serving.responder import PreBindResponder, bind_listener
from toolkit.serving.worker import _NO_DATA, is_ping, peek


def _get(port: int, request: bytes = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data


def test_responder_answers_503_then_hands_the_socket_over() -> None:
    listener = bind_listener(0, host="127.0.0.1")
    port = listener.getsockname()[1]
    responder = PreBindResponder(listener).start()
    try:
        answer = _get(port)
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "service_unavailable"
        post = _get(port, b"POST /invocations HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        assert post.startswith(b"HTTP/1.1 503 ")
        responder.set_failed("model_fn raised ValueError: x")
        body = json.loads(_get(port).partition(b"\r\n\r\n")[2])
        assert body == {"error": "model_load_failed", "message": "model_fn raised ValueError: x"}
        responder.stop()
        # still listening: a connection now waits in the backlog for the next owner
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            conn, _ = listener.accept()
            conn.close()
    finally:
        listener.close()


def test_peek_and_ping_detection() -> None:
    assert is_ping(b"GET /ping HTTP/1.1")
    assert is_ping(b"HEAD /ping?x=1 HTT")
    assert not is_ping(b"GET /pingx HTTP/1")
    assert not is_ping(b"POST /invocations")
    left, right = socket.socketpair()
    with left, right:
        assert peek(left) is _NO_DATA
        right.sendall(b"GET /ping HTTP/1.1\r\n")
        assert peek(left) == b"GET /ping HTTP/1"
        assert left.recv(100).startswith(b"GET /ping")  # peek consumed nothing
        right.close()
        assert peek(left) == b""
