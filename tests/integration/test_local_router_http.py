"""The router's HTTP over real sockets on 127.0.0.1 (and a Unix socket), on both event loops.

Small asyncio servers written here play the container, so each test decides exactly what the
container does on the wire (keep-alive, chunked, close-delimited, hang, drop mid-response).
``Upstream`` is tested directly, then the whole ``Router`` is driven with ``http.client``.
Every test runs once on the standard loop (``asyncio.run``) and once on uvloop (``uvloop.run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import uvloop

from local_mode.endpoints import http as http_module
from local_mode.endpoints import router as router_module
from local_mode.endpoints.backends import Container as RunningContainer
from local_mode.endpoints.http import Message, StaleConnection, Upstream, UpstreamUnavailable
from local_mode.endpoints.router import Instance, Router, Variant
from local_mode.endpoints.spec import ModelSpec, VariantSpec

WAIT = 10.0  # a deadline for things that must happen, never a measure of speed
RUNNERS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {
    "asyncio": asyncio.run, "uvloop": uvloop.run}


@pytest.fixture(params=sorted(RUNNERS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    return RUNNERS[request.param]


# -- a scriptable container -------------------------------------------------------------------
@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One Content-Length-framed request (what the router sends), or None at end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    line, *fields = head[:-4].decode("latin-1").split("\r\n")
    method, target, _ = line.split(" ", 2)
    headers = {}
    for entry in fields:
        name, _, value = entry.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, target, headers, body)


def respond(status: int = 200, body: bytes = b"ok", headers: str = "") -> bytes:
    return (f"HTTP/1.1 {status} X\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
            .encode("latin-1") + body)


# ``script(request, number, reader, writer)`` answers one request; False ends the connection.
Script = Callable[[Request, int, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


async def answer_ok(request: Request, number: int, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> bool:
    writer.write(respond(body=b"answer %d to %s" % (number, request.body)))
    return True


@dataclass
class Container:
    """A TCP (and optionally Unix) server that runs ``script`` for every request."""

    script: Script = answer_ok
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)  # a peer closed on us
    _servers: list[asyncio.AbstractServer] = field(default_factory=list)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self) -> int:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._servers.append(server)
        self.port = int(server.sockets[0].getsockname()[1])
        return self.port

    async def start_unix(self, path: Path) -> None:
        self._servers.append(await asyncio.start_unix_server(self._serve, str(path)))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        self._handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while (request := await read_request(reader)) is not None:
                self.requests.append(request)
                self.arrived.set()
                if not await self.script(request, len(self.requests), reader, writer):
                    break
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def hang(self, reader: asyncio.StreamReader) -> bool:
        """Never answer; note when the client gives up on the connection."""
        with contextlib.suppress(ConnectionError):
            await reader.read()
        self.hung_up.set()
        return False

    async def close(self) -> None:
        """Stop listening, close every connection and wait for every handler to end (one left
        to ``asyncio.run``'s cancellation would be logged as an error on Python 3.11)."""
        for server in self._servers:
            server.close()
            await server.wait_closed()
        for writer in self._writers:
            writer.close()
        if self._handlers:
            await asyncio.wait_for(asyncio.gather(*self._handlers, return_exceptions=True),
                                   WAIT)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), WAIT)


def soon() -> float:
    """An exchange's deadline that a working container always meets."""
    return time.monotonic() + WAIT


# -- Upstream ---------------------------------------------------------------------------------
def test_keep_alive_reuses_one_connection_and_send_takes_the_idle_one(run) -> None:
    async def main() -> None:
        container = Container()
        port = await container.start()
        upstream = Upstream("127.0.0.1", port)
        try:
            first = await upstream.request("POST", "/invocations",
                                           b"Content-Type: text/csv\r\n", b"a", deadline=soon())
            second = await upstream.request("POST", "/invocations", b"", b"b", deadline=soon())
            assert (first.status, first.body) == (200, b"answer 1 to a")
            assert second.body == b"answer 2 to b" and second.keep_alive
            outcome: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

            def done(response: Message | None, error: Exception | None) -> None:
                if response is None:
                    outcome.set_exception(error or AssertionError("neither outcome"))
                else:
                    outcome.set_result(response)

            assert upstream.send("POST", "/invocations", b"", b"c", done, soon())
            # the one connection is busy
            assert upstream.send("POST", "/invocations", b"", b"c", done, soon()) is False
            third = await asyncio.wait_for(outcome, WAIT)
            assert third.body == b"answer 3 to c"
            assert container.connections == 1
            assert container.requests[0].headers["host"] == f"127.0.0.1:{port}"
            assert container.requests[0].headers["content-type"] == "text/csv"
        finally:
            upstream.close()
            await container.close()

    run(main())


def test_chunked_response_is_joined_and_the_connection_kept(run) -> None:
    async def chunked(request: Request, number: int, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for piece in (b"hello ", b"chunked ", b"world %d" % number):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        return True

    async def main() -> None:
        container = Container(chunked)
        upstream = Upstream("127.0.0.1", await container.start())
        try:
            for number in (1, 2):
                response = await upstream.request("POST", "/invocations", b"", b"x", deadline=soon())
                assert response.body == b"hello chunked world %d" % number
                assert response.headers["content-type"] == "text/plain"
            assert container.connections == 1
        finally:
            upstream.close()
            await container.close()

    run(main())


def test_response_delimited_by_connection_close(run) -> None:
    async def unframed(request: Request, number: int, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end ")
        await writer.drain()
        writer.write(b"of the connection %d" % number)
        return False

    async def main() -> None:
        container = Container(unframed)
        upstream = Upstream("127.0.0.1", await container.start())
        try:
            for number in (1, 2):
                response = await upstream.request("POST", "/invocations", b"", b"", deadline=soon())
                assert (response.status, response.keep_alive) == (200, False)
                assert response.body == b"until the end of the connection %d" % number
            assert container.connections == 2  # never pooled
        finally:
            upstream.close()
            await container.close()

    run(main())


async def answer_then_close(request: Request, number: int, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> bool:
    """A keep-alive answer, then the container drops the connection (its idle timeout)."""
    writer.write(respond(body=b"answer %d" % number))
    return False


def test_idle_connection_closed_by_the_container_is_stale_on_the_fast_path(run) -> None:
    async def main() -> None:
        container = Container(answer_then_close)
        upstream = Upstream("127.0.0.1", await container.start())
        try:
            first = await upstream.request("POST", "/invocations", b"", b"", deadline=soon())
            assert first.keep_alive  # pooled, though the container is closing it
            # No await between: the loop has not yet seen the close, as with a request that
            # arrives just as a container's keep-alive timer fires.
            outcome: asyncio.Future[Exception | None] = \
                asyncio.get_running_loop().create_future()
            assert upstream.send("POST", "/invocations", b"", b"",
                                 lambda response, error: outcome.set_result(error), soon())
            error = await asyncio.wait_for(outcome, WAIT)
            assert isinstance(error, StaleConnection)
            assert len(container.requests) == 1  # the container never saw the second
        finally:
            upstream.close()
            await container.close()

    run(main())


def test_idle_connection_closed_by_the_container_is_retried_by_request(run) -> None:
    async def main() -> None:
        container = Container(answer_then_close)
        upstream = Upstream("127.0.0.1", await container.start())
        try:
            first = await upstream.request("POST", "/invocations", b"", b"", deadline=soon())
            second = await upstream.request("POST", "/invocations", b"", b"", deadline=soon())  # same ordering
            assert (first.body, second.body) == (b"answer 1", b"answer 2")
            assert container.connections == 2
        finally:
            upstream.close()
            await container.close()

    run(main())


def test_connection_refused_is_unavailable(run) -> None:
    async def main() -> None:
        upstream = Upstream("127.0.0.1", closed_port())
        with pytest.raises(UpstreamUnavailable, match="cannot connect"):
            await upstream.request("POST", "/invocations", b"", b"", deadline=soon())

    run(main())


@pytest.mark.parametrize("sent", [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial",
                                  b"HTTP/1.1 200 OK\r\nContent-Le"])
def test_container_closing_before_the_end_of_its_response_is_unavailable(run, sent) -> None:
    async def drop(request: Request, number: int, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> bool:
        writer.write(sent)
        return False

    async def main() -> None:
        container = Container(drop)
        upstream = Upstream("127.0.0.1", await container.start())
        try:
            with pytest.raises(UpstreamUnavailable):
                await upstream.request("POST", "/invocations", b"", b"", deadline=soon())
        finally:
            upstream.close()
            await container.close()

    run(main())


def test_unix_socket_is_preferred_when_it_exists(run, tmp_path: Path) -> None:
    async def main() -> None:
        tcp, unix = Container(), Container()
        port = await tcp.start()
        path = tmp_path / "c.sock"
        await unix.start_unix(path)
        listening = Upstream("127.0.0.1", port, unix_path=str(path))
        missing = Upstream("127.0.0.1", port, unix_path=str(tmp_path / "absent.sock"))
        try:
            response = await listening.request("POST", "/invocations", b"", b"u", deadline=soon())
            assert response.body == b"answer 1 to u"
            assert (unix.connections, tcp.connections) == (1, 0)
            assert unix.requests[0].headers["host"] == f"127.0.0.1:{port}"
            response = await missing.request("POST", "/invocations", b"", b"t", deadline=soon())
            assert response.body == b"answer 1 to t"
            assert (unix.connections, tcp.connections) == (1, 1)
        finally:
            listening.close()
            missing.close()
            await tcp.close()
            await unix.close()

    run(main())


def test_expire_overdue_ends_a_hung_exchange_and_its_connection(run) -> None:
    container = Container()

    async def hang_first(request: Request, number: int, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> bool:
        if number == 1:
            return await container.hang(reader)
        return await answer_ok(request, number, reader, writer)

    container.script = hang_first

    async def main() -> None:
        upstream = Upstream("127.0.0.1", await container.start())
        try:
            pending = asyncio.ensure_future(
                upstream.request("POST", "/invocations", b"", b"",
                                 deadline=time.monotonic() + 30.0))
            await until(container.arrived)
            upstream.expire_overdue(time.monotonic())  # 30 s early: nothing happens
            await asyncio.sleep(0)
            assert not pending.done()
            upstream.expire_overdue(time.monotonic() + 60.0)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pending, WAIT)
            await until(container.hung_up)  # the router closed that connection
            response = await upstream.request("POST", "/invocations", b"", b"again", deadline=soon())
            assert response.body == b"answer 2 to again" and container.connections == 2
        finally:
            upstream.close()
            await container.close()

    run(main())


# -- the Router end to end --------------------------------------------------------------------
@dataclass
class ContainerName:
    """The part of a running container the router reads when it words an error."""

    hostname: str = "model-container"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


def call(port: int, *exchanges: tuple[str, str, bytes, dict[str, str]]) -> list[Answer]:
    """The exchanges over one ``http.client`` connection, as an SDK client would send them."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        answers = []
        for method, path, body, headers in exchanges:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            answers.append(Answer(response.status,
                                  {k.lower(): v for k, v in response.getheaders()},
                                  response.read()))
        return answers
    finally:
        connection.close()


def invocation(body: bytes = b"1,2", **headers: str) -> tuple[str, str, bytes, dict[str, str]]:
    return "POST", "/invocations", body, {"Content-Type": "text/csv", **headers}


@dataclass
class Endpoint:
    router: Router
    instances: list[Instance]
    port: int = 0


async def start_endpoint(tmp_path: Path, *ports: int) -> Endpoint:
    """A Router with one variant ``AllTraffic`` and one healthy instance per container port."""
    spec = VariantSpec("AllTraffic", "m", len(ports), "local", 1.0, 600)
    model = ModelSpec.from_request({"ModelName": "m", "PrimaryContainer": {"Image": "x"}})
    variant = Variant(spec, model)
    for number, port in enumerate(ports):
        variant.instances.append(Instance(f"AllTraffic-{number}",
                                          [cast(RunningContainer, ContainerName())],
                                          [Upstream("127.0.0.1", port)], healthy=True))
    router = Router("ep", tmp_path)
    router.variants = [variant]
    endpoint = Endpoint(router, variant.instances)
    endpoint.port = await router.start()
    return endpoint


async def stop_endpoint(endpoint: Endpoint) -> None:
    await endpoint.router.stop()
    for instance in endpoint.instances:
        instance.close()


def test_router_forwards_and_echoes_on_both_paths(run, tmp_path: Path) -> None:
    async def echo(request: Request, number: int, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> bool:
        fields = (f"Content-Type: application/x-answer-{number}\r\n"
                  f"X-Amzn-SageMaker-Custom-Attributes: seen-{number}\r\n"
                  "X-Container-Only: not echoed\r\n")
        writer.write(respond(body=request.body[::-1], headers=fields))
        return True

    async def main() -> None:
        container = Container(echo)
        endpoint = await start_endpoint(tmp_path, await container.start())
        try:
            sent = invocation(b"abc", Accept="text/csv", **{
                "X-Amzn-SageMaker-Custom-Attributes": "trace=1",
                "X-Amzn-SageMaker-Inference-Id": "id-7", "X-Not-Forwarded": "x"})
            # The first opens a container connection (coroutine path); the second finds it
            # idle (fast path).
            answers = await asyncio.to_thread(call, endpoint.port, sent, sent)
            for number, answer in enumerate(answers, 1):
                assert (answer.status, answer.body) == (200, b"cba")
                assert answer.headers["x-amzn-invoked-production-variant"] == "AllTraffic"
                assert answer.headers["content-type"] == f"application/x-answer-{number}"
                assert answer.headers["x-amzn-sagemaker-custom-attributes"] == f"seen-{number}"
                assert "x-container-only" not in answer.headers
            assert container.connections == 1
            for request in container.requests:
                assert (request.method, request.target, request.body) == \
                    ("POST", "/invocations", b"abc")
                assert {k: v for k, v in request.headers.items() if k != "host"} == {
                    "content-type": "text/csv", "accept": "text/csv",
                    "x-amzn-sagemaker-custom-attributes": "trace=1",
                    "x-amzn-sagemaker-inference-id": "id-7", "content-length": "3"}
        finally:
            await stop_endpoint(endpoint)
            await container.close()

    run(main())


def test_container_error_becomes_model_error(run, tmp_path: Path) -> None:
    async def fail(request: Request, number: int, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> bool:
        writer.write(respond(500, b"model exploded %d" % number))
        return True

    async def main() -> None:
        container = Container(fail)
        endpoint = await start_endpoint(tmp_path, await container.start())
        try:
            answers = await asyncio.to_thread(call, endpoint.port, invocation(), invocation())
            for number, answer in enumerate(answers, 1):
                assert answer.status == 424
                assert answer.headers["x-amzn-errortype"] == "ModelError"
                error = answer.json()
                assert error["ErrorCode"] == "ModelError"
                assert error["OriginalStatusCode"] == 500
                assert error["OriginalMessage"] == f"model exploded {number}"
                assert "model-container" in error["Message"]
                assert error["LogStreamArn"].endswith("AllTraffic-0.log")
        finally:
            await stop_endpoint(endpoint)
            await container.close()

    run(main())


def test_hung_container_times_out_on_both_paths(run, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(router_module, "INVOCATION_TIMEOUT", 0.3)
    monkeypatch.setattr(http_module, "SWEEP_SECONDS", 0.05)
    container = Container()

    async def answer_first(request: Request, number: int, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> bool:
        if number == 1:
            return await answer_ok(request, number, reader, writer)
        return await container.hang(reader)

    container.script = answer_first

    async def main() -> None:
        endpoint = await start_endpoint(tmp_path, await container.start())
        try:
            # 1: answered, pooling the connection; 2: fast path on it, hangs, swept;
            # 3: no idle connection left, coroutine path, hangs, times out.
            answers = await asyncio.to_thread(call, endpoint.port, *[invocation()] * 3)
            assert answers[0].status == 200
            for answer in answers[1:]:
                assert answer.status == 424
                error = answer.json()
                assert (error["ErrorCode"], error["OriginalStatusCode"]) == ("ModelError", 0)
                assert "timed out" in error["Message"] and "model-container" in error["Message"]
            assert container.connections == 2  # each hung connection was given up
        finally:
            await stop_endpoint(endpoint)
            await container.close()

    run(main())


def test_dead_instance_is_retried_elsewhere_and_reported(run, tmp_path: Path) -> None:
    async def main() -> None:
        container = Container()
        endpoint = await start_endpoint(tmp_path, closed_port(), await container.start())
        suspects: list[str] = []
        endpoint.router.on_suspect = lambda instance: suspects.append(instance.ident)
        try:
            answers = await asyncio.to_thread(call, endpoint.port, *[invocation()] * 4)
            assert [a.status for a in answers] == [200] * 4
            assert suspects and set(suspects) == {"AllTraffic-0"}
        finally:
            await stop_endpoint(endpoint)
            await container.close()

    run(main())


def test_ping_unknown_route_and_oversized_body(run, tmp_path: Path) -> None:
    async def main() -> None:
        container = Container()
        endpoint = await start_endpoint(tmp_path, await container.start())
        try:
            ping, unknown = await asyncio.to_thread(
                call, endpoint.port, ("GET", "/ping", b"", {}), ("GET", "/nowhere", b"", {}))
            assert ping.status == 200
            assert unknown.status == 404
            assert unknown.json()["ErrorCode"] == "UnknownOperationException"
            endpoint.instances[0].healthy = False
            (sick,) = await asyncio.to_thread(call, endpoint.port, ("GET", "/ping", b"", {}))
            assert sick.status == 503
            (big,) = await asyncio.to_thread(
                call, endpoint.port, invocation(b"\0" * (7 * 1024 * 1024)))
            assert big.status == 413 and big.headers["connection"] == "close"
            assert big.json()["ErrorCode"] == "ValidationError"
            assert str(7 * 1024 * 1024) in big.json()["Message"]
            assert container.requests == []
        finally:
            await stop_endpoint(endpoint)
            await container.close()

    run(main())


class _ClosedTransport:
    """A transport the peer has closed, as uvloop's is between the close and the protocol's
    connection_lost: closing, and a write raises RuntimeError."""

    def is_closing(self) -> bool:
        return True

    def write(self, data: bytes) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>; "
                           "the handler is closed")

    def close(self) -> None:
        pass


def test_a_write_refused_by_a_closed_transport_is_a_stale_connection(run) -> None:
    async def main() -> None:
        connection = http_module._UpstreamConnection()
        connection.connection_made(_ClosedTransport())
        outcome: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        connection.send(b"POST /invocations HTTP/1.1\r\n\r\n",
                        lambda response, error: outcome.set_result(error), soon())
        assert isinstance(await asyncio.wait_for(outcome, WAIT), StaleConnection)

    run(main())


def test_an_idle_connection_whose_transport_is_closing_is_never_taken(run) -> None:
    async def main() -> None:
        upstream = Upstream("127.0.0.1", 9)
        connection = http_module._UpstreamConnection()
        connection.connection_made(_ClosedTransport())
        connection.idle_since = time.monotonic()
        upstream._idle.append(connection)
        assert upstream.send("POST", "/invocations", b"", b"", lambda *_: None, soon()) is False
        assert not upstream._idle

    run(main())
