"""The blocking keep-alive client the runtime client and transform jobs share, against a small
socket server written here, so each test decides what the server does on the wire."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from local_mode.keepalive import KeepAliveClient, NoResponse
from local_mode.transform.invoke import InstanceClient, InvocationError

WAIT = 10.0  # a deadline for things that must happen, never a measure of speed


@dataclass
class Request:
    head: list[str]
    body: bytes

    def header(self, name: str) -> str | None:
        for line in self.head[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name:
                return value.strip()
        return None


def read_request(reader: socket.SocketIO) -> Request | None:
    """One request, framed by Content-Length or chunked; None at the end of the stream."""
    buffer = b""
    while not buffer.endswith(b"\r\n\r\n"):
        byte = reader.read(1)
        if not byte:
            return None
        buffer += byte
    lines = buffer[:-4].decode("latin-1").split("\r\n")
    request = Request(lines, b"")
    if request.header("transfer-encoding") == "chunked":
        body = b""
        while True:
            size_line = b""
            while not size_line.endswith(b"\r\n"):
                size_line += reader.read(1)
            size = int(size_line.split(b";")[0], 16)
            chunk = b""
            while len(chunk) < size + 2:
                chunk += reader.read(size + 2 - len(chunk))
            if size == 0:
                break
            body += chunk[:-2]
        request.body = body
    else:
        length = int(request.header("content-length") or 0)
        while len(request.body) < length:
            request.body += reader.read(length - len(request.body))
    return request


# ``script(request, number)`` -> (response bytes or None to stay silent, keep the connection)
Script = Callable[[Request, int], "tuple[bytes | None, bool]"]


def answer(request: Request, number: int) -> tuple[bytes | None, bool]:
    body = b"answer %d to %s" % (number, request.body)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Seen: %s\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (
                (request.header("x-field") or "-").encode(), len(body), body)), True


@dataclass
class Server:
    script: Script = answer
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    closed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        stream = socket.SocketIO(sock, "rb")
        try:
            while (request := read_request(stream)) is not None:
                with self._lock:
                    self.requests.append(request)
                    number = len(self.requests)
                response, keep = self.script(request, number)
                if response is not None:
                    sock.sendall(response)
                if not keep:
                    break
        except OSError:
            pass
        finally:
            sock.close()
            self.closed.set()

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


def test_requests_share_the_threads_connection(server: Server) -> None:
    client = KeepAliveClient(WAIT)
    first = client.request(server.port, "POST", "/invocations", [(b"X-Field", b"one")], body=b"a")
    second = client.request(server.port, "POST", "/invocations", (), body=b"b")
    assert (first.status, first.body, second.body) == (200, b"answer 1 to a", b"answer 2 to b")
    assert first.headers["content-type"] == "text/plain" and first.headers["x-seen"] == "one"
    assert server.connections == 1
    assert server.requests[0].header("content-length") == "1"
    assert server.requests[0].header("host") == f"127.0.0.1:{server.port}"
    client.close()


def test_each_thread_keeps_its_own_connection(server: Server) -> None:
    client = KeepAliveClient(WAIT)
    client.request(server.port, "GET", "/ping")

    def other() -> None:
        client.request(server.port, "GET", "/ping")
        client.request(server.port, "GET", "/ping")

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(WAIT)
    client.request(server.port, "GET", "/ping")
    assert server.connections == 2 and len(server.requests) == 4


def test_a_connection_closed_while_idle_is_sent_again_on_a_fresh_one(server: Server) -> None:
    server.script = lambda request, number: (answer(request, number)[0], False)
    client = KeepAliveClient(WAIT)
    client.request(server.port, "POST", "/invocations", (), body=b"1")
    assert server.closed.wait(WAIT)  # the server dropped the kept connection
    again = client.request(server.port, "POST", "/invocations", (), body=b"2")
    assert again.body == b"answer 2 to 2"
    assert server.connections == 2 and len(server.requests) == 2


def test_a_streamed_body_is_never_sent_twice(server: Server) -> None:
    server.script = lambda request, number: (answer(request, number)[0], False)
    client = KeepAliveClient(WAIT)
    client.request(server.port, "POST", "/invocations", (), body=iter([b"first ", b"stream"]))
    assert server.requests[0].body == b"first stream"
    assert server.requests[0].header("transfer-encoding") == "chunked"
    assert server.closed.wait(WAIT)
    with pytest.raises(NoResponse, match="closed the connection") as caught:
        client.request(server.port, "POST", "/invocations", (), body=iter([b"second"]))
    assert not caught.value.timed_out and len(server.requests) == 1


def test_refused_and_silent_servers_give_no_response(server: Server) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(NoResponse) as refused:
        KeepAliveClient(WAIT).request(closed, "GET", "/ping")
    assert not refused.value.timed_out
    server.script = lambda request, number: (None, True)
    with pytest.raises(NoResponse, match="did not answer") as silent:
        KeepAliveClient(0.2).request(server.port, "GET", "/ping")
    assert silent.value.timed_out


def test_instance_client_runs_a_pipeline_and_words_its_errors(server: Server) -> None:
    second = Server()
    try:
        client = InstanceClient([server.port, second.port], ["first", "second"], WAIT)
        body, content_type = client.invoke(b"x", "text/csv", "application/json")
        assert body == b"answer 1 to answer 1 to x" and content_type == "text/plain"
        first_in, second_in = server.requests[0], second.requests[0]
        assert (first_in.header("content-type"), first_in.header("accept")) == ("text/csv", None)
        assert (second_in.header("content-type"), second_in.header("accept")) == \
            ("text/plain", "application/json")
        second.script = lambda request, number: (
            b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nboom", True)
        with pytest.raises(InvocationError, match="container second answered 500: boom"):
            client.invoke(b"y", None, None)
        server.script = lambda request, number: (None, True)
        slow = InstanceClient([server.port], ["first"], 0.2)
        with pytest.raises(InvocationError, match="did not answer.*InvocationsTimeoutInSeconds"):
            slow.invoke(b"z", None, None)
    finally:
        second.close()
