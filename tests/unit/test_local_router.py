"""The router's client-side HTTP protocol and its routing decisions, without sockets.

The HTTP tests drive a real :class:`ServerConnection` (the real httptools parser, queue and
reply logic) through ``connection_made`` / ``data_received``; only the transport is a stand-in
that records what the protocol writes, and whether it closed or paused reading. Real sockets
and both event loops are covered by ``tests/integration/test_local_router_http.py``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode.endpoints import http
from local_mode.endpoints.http import (
    MAX_PIPELINED,
    Message,
    PayloadTooLarge,
    Reply,
    Response,
    ServerConnection,
    render_request,
    render_response,
)
from local_mode.endpoints.router import (
    Instance,
    ModelCache,
    Router,
    RouterError,
    Variant,
    container_fields,
)
from local_mode.endpoints.spec import ModelSpec, VariantSpec, variants_from_config
from local_mode.errors import ValidationException

LIMIT = 1024


# -- a recording transport and a response reader -----------------------------------------------
class RecordingTransport(asyncio.Transport):
    """What a protocol did to its connection: bytes written, close, pause/resume reading."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.paused = False
        self.pauses = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False


@dataclass
class Parsed:
    status: int
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class ResponseReader:
    """Splits the bytes a server wrote into responses, with httptools (the other direction)."""

    def __init__(self, data: bytes) -> None:
        self.responses: list[Parsed] = []
        self._parser = httptools.HttpResponseParser(self)
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self._parser.feed_data(bytes(data))

    def on_message_begin(self) -> None:
        self._headers, self._body = {}, bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.responses.append(Parsed(self._parser.get_status_code(), self._headers,
                                     bytes(self._body), self._parser.should_keep_alive()))


def responses(transport: RecordingTransport) -> list[Parsed]:
    return ResponseReader(bytes(transport.written)).responses


@dataclass
class Server:
    """A ServerConnection on a recording transport, with recording callbacks.

    ``answer`` None leaves each request waiting (its reply is in ``replies``); otherwise every
    request is answered at once with ``answer(message)``.
    """

    answer: object = None
    limit: int = LIMIT
    dispatched: list[Message] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    refused: list[PayloadTooLarge] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.transport = RecordingTransport()
        self.protocol = ServerConnection(self._dispatch, self.limit, self._refuse, self._bad)
        self.protocol.connection_made(self.transport)

    def _dispatch(self, message: Message, reply: Reply) -> None:
        self.dispatched.append(message)
        self.replies.append(reply)
        if self.answer is not None:
            reply(*self.answer(message))  # type: ignore[operator]

    def _refuse(self, exc: PayloadTooLarge) -> Response:
        self.refused.append(exc)
        body = json.dumps({"ErrorCode": "ValidationError", "size": exc.size}).encode()
        return 413, b"Content-Type: application/json\r\n", body

    def _bad(self, reason: str) -> Response:
        self.bad.append(reason)
        return 400, b"Content-Type: application/json\r\n", json.dumps({"Message": reason}).encode()

    def feed(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self.protocol.data_received(chunk)


def echo(message: Message) -> Response:
    fields = b"X-Target: %s\r\nX-Method: %s\r\n" % (message.target.encode("latin-1"),
                                                    message.method.encode("latin-1"))
    return 200, fields, message.body


def _request(target: str, body: bytes, headers: str = "", chunked_sizes: list[int] | None = None,
             version: str = "1.1") -> bytes:
    if chunked_sizes is None:
        return (f"POST {target} HTTP/{version}\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
                .encode("latin-1") + body)
    out = bytearray(f"POST {target} HTTP/{version}\r\n{headers}Transfer-Encoding: chunked\r\n\r\n"
                    .encode("latin-1"))
    rest = body
    for size in chunked_sizes:
        piece, rest = rest[:size], rest[size:]
        if piece:
            out += b"%x\r\n%s\r\n" % (len(piece), piece)
    if rest:
        out += b"%x\r\n%s\r\n" % (len(rest), rest)
    out += b"0\r\n\r\n"
    return bytes(out)


# -- property: any headers and bodies, any framing, any split of the stream -------------------
_FRAMING = {"content-length", "transfer-encoding", "connection", "upgrade", "expect",
            "keep-alive", "proxy-connection", "http2-settings"}
header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,20}", fullmatch=True).filter(
    lambda name: name.lower() not in _FRAMING)
# Field values: visible ASCII, inner spaces/tabs and obs-text (latin-1 0x80-0xff).
header_values = st.text(st.characters(codec="latin-1", exclude_characters="\r\n\x7f",
                                      min_codepoint=0x20) | st.just("\t"),
                        max_size=40).map(lambda value: value.strip(" \t"))


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes, list[int] | None]:
    drawn = draw(st.dictionaries(header_names, header_values, max_size=8))
    unique: dict[str, tuple[str, str]] = {}
    for name, value in drawn.items():  # one field per case-insensitive name
        unique.setdefault(name.lower(), (name, value))
    headers = dict(unique.values())
    body = draw(st.binary(max_size=300))
    target = draw(st.from_regex(r"/[A-Za-z0-9._~/-]{0,30}(\?[a-z=&0-9]{0,10})?", fullmatch=True))
    chunked = draw(st.none() | st.lists(st.integers(1, 64), max_size=6))
    return target, headers, body, chunked


@settings(max_examples=150, deadline=None)
@given(st.lists(requests(), min_size=1, max_size=3), st.data())
def test_requests_round_trip_under_any_split(batch, data: st.DataObject) -> None:
    stream = b"".join(
        _request(target, body, "".join(f"{k}: {v}\r\n" for k, v in headers.items()), chunked)
        for target, headers, body, chunked in batch)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=12)))
    server = Server(answer=echo)
    start = 0
    for cut in [*cuts, len(stream)]:
        server.feed(stream[start:cut])
        start = cut

    assert [m.target for m in server.dispatched] == [target for target, *_ in batch]
    for message, (_, headers, body, chunked) in zip(server.dispatched, batch):
        assert message.method == "POST" and message.body == body and message.keep_alive
        for name, value in headers.items():
            assert message.raw[name.lower().encode()] == value.encode("latin-1")
            assert message.headers[name.lower()] == value
        framing = b"transfer-encoding" if chunked is not None else b"content-length"
        assert framing in message.raw
    answers = responses(server.transport)
    assert [(r.status, r.headers["x-target"], r.body) for r in answers] == \
        [(200, target, body) for target, _, body, _ in batch]
    assert not server.transport.closed and not server.bad and not server.refused


def test_chunked_body_with_extensions_and_trailer_fed_byte_by_byte() -> None:
    raw = (b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3;name=value\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n")
    server = Server(answer=echo)
    server.feed(*(raw[i:i + 1] for i in range(len(raw))))
    (message,) = server.dispatched
    assert message.body == b"abc0123456789"
    assert [r.body for r in responses(server.transport)] == [b"abc0123456789"]


# -- limits -----------------------------------------------------------------------------------
def test_content_length_at_the_limit_is_served_one_over_is_refused() -> None:
    server = Server(answer=echo)
    server.feed(_request("/invocations", b"x" * LIMIT))
    assert len(server.dispatched) == 1 and not server.transport.closed

    server = Server(answer=echo)
    server.feed(b"POST /invocations HTTP/1.1\r\nContent-Length: 2000\r\n\r\n")
    # The body is still coming: no answer yet and no close (which would reset the sender).
    assert server.transport.written == b"" and not server.transport.closed
    server.feed(b"y" * 999, b"y" * 1001 + b"GET /ping HTTP/1.1\r\n\r\n")
    assert server.dispatched == []
    (refused,) = server.refused
    assert (refused.size, refused.declared) == (2000, 2000)
    (answer,) = responses(server.transport)
    assert answer.status == 413 and not answer.keep_alive
    assert json.loads(answer.body) == {"ErrorCode": "ValidationError", "size": 2000}
    assert answer.headers["connection"] == "close" and server.transport.closed
    server.feed(b"GET /ping HTTP/1.1\r\n\r\n")  # nothing after the refusal counts
    assert server.dispatched == []


def test_content_length_over_the_discard_limit_is_refused_at_once(monkeypatch) -> None:
    monkeypatch.setattr(http, "DISCARD_LIMIT", 4096)
    server = Server(answer=echo)
    server.feed(b"POST /invocations HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"z" * 100)
    (answer,) = responses(server.transport)
    assert answer.status == 413 and server.transport.closed and server.transport.paused
    assert server.refused[0].declared == 5000 and server.dispatched == []


def test_chunked_body_over_the_limit_is_refused() -> None:
    server = Server(answer=echo)
    server.feed(_request("/invocations", b"c" * LIMIT, chunked_sizes=[100] * 11))
    assert [m.body for m in server.dispatched] == [b"c" * LIMIT]

    server = Server(answer=echo)
    raw = _request("/invocations", b"c" * (LIMIT + 1), chunked_sizes=[500] * 3)
    server.feed(raw[:200], raw[200:])
    assert server.dispatched == []
    (refused,) = server.refused
    assert refused.declared is None and refused.size == LIMIT + 1
    (answer,) = responses(server.transport)
    assert answer.status == 413 and answer.headers["connection"] == "close"
    assert server.transport.closed


def test_endless_chunked_body_is_cut_off_past_the_discard_limit(monkeypatch) -> None:
    monkeypatch.setattr(http, "DISCARD_LIMIT", 4096)
    server = Server(answer=echo)
    server.feed(b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(4):
        server.feed(b"400\r\n" + b"e" * 0x400 + b"\r\n")
    assert server.transport.written == b""  # 4096 bytes: still discarding
    server.feed(b"1\r\ne\r\n")
    (answer,) = responses(server.transport)
    assert answer.status == 413 and server.transport.closed and server.transport.paused
    # ``size`` is what had arrived when the limit was crossed (here the second 1 KiB chunk).
    assert server.refused[0].size > LIMIT and server.dispatched == []


# -- malformed input --------------------------------------------------------------------------
@pytest.mark.parametrize("garbage", [
    b"NONSENSE\r\n\r\n",
    b"POST /invocations HTTP/1.1\r\nno colon here\r\n\r\n",
    b"POST /invocations HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"POST /invocations HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    b"POST /invocations HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n",
    b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /invocations HTTP/1.1\r\nX-Bad: a\x01b\r\n\r\n",
])
def test_malformed_request_gets_400_and_close_after_the_answer_ahead(garbage: bytes) -> None:
    server = Server()  # replies by hand, so the malformed request waits behind the first
    server.feed(b"GET /first HTTP/1.1\r\n\r\n" + garbage + b"GET /after HTTP/1.1\r\n\r\n")
    assert [m.target for m in server.dispatched] == ["/first"]
    assert server.transport.written == b"" and server.transport.paused
    server.replies[0](200, b"", b"first")
    first, bad = responses(server.transport)
    assert (first.status, first.body) == (200, b"first")
    assert bad.status == 400 and bad.headers["connection"] == "close"
    assert json.loads(bad.body)["Message"].startswith("malformed HTTP request")
    assert server.transport.closed and [m.target for m in server.dispatched] == ["/first"]
    assert len(server.bad) == 1


# -- keep-alive, pipelining, flow control -----------------------------------------------------
def test_http10_without_keep_alive_is_answered_with_close() -> None:
    server = Server(answer=echo)
    server.feed(b"GET /ping HTTP/1.0\r\n\r\n")
    (answer,) = responses(server.transport)
    assert answer.headers["connection"] == "close" and not answer.keep_alive
    assert server.transport.closed and server.dispatched[0].keep_alive is False


@pytest.mark.parametrize(("request_line", "close"), [
    (b"GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n", True),
    (b"GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", False),
    (b"GET /ping HTTP/1.1\r\n\r\n", False),
])
def test_connection_header_decides_keep_alive(request_line: bytes, close: bool) -> None:
    server = Server(answer=echo)
    server.feed(request_line)
    assert server.transport.closed is close
    assert ("connection" in responses(server.transport)[0].headers) is close


def test_pipelined_requests_are_dispatched_one_at_a_time_in_order() -> None:
    server = Server()
    server.feed(_request("/one", b"1") + _request("/two", b"22"))
    assert [m.target for m in server.dispatched] == ["/one"]  # the second waits for a reply
    server.replies[0](200, b"X-N: 1\r\n", b"one")
    assert [m.target for m in server.dispatched] == ["/one", "/two"]
    assert server.dispatched[1].body == b"22"
    server.replies[1](200, b"X-N: 2\r\n", b"two")
    assert [(r.headers["x-n"], r.body) for r in responses(server.transport)] == \
        [("1", b"one"), ("2", b"two")]
    assert not server.transport.closed


def test_a_deep_pipeline_pauses_reading_until_it_drains() -> None:
    server = Server()
    server.feed(b"".join(_request(f"/{n}", b"") for n in range(MAX_PIPELINED + 2)))
    assert server.transport.paused and len(server.dispatched) == 1
    for n in range(MAX_PIPELINED + 2):
        server.replies[n](200, b"", str(n).encode())
    assert not server.transport.paused
    assert [r.body for r in responses(server.transport)] == \
        [str(n).encode() for n in range(MAX_PIPELINED + 2)]


def test_requests_wait_while_the_transport_cannot_take_writes() -> None:
    server = Server(answer=echo)
    server.protocol.pause_writing()
    server.feed(_request("/a", b"a") + _request("/b", b"b"))
    assert server.dispatched == []
    server.protocol.resume_writing()
    assert [r.body for r in responses(server.transport)] == [b"a", b"b"]


def test_reply_after_the_transport_closed_is_ignored() -> None:
    server = Server()
    server.feed(_request("/invocations", b"slow"))
    server.transport.close()
    server.protocol.connection_lost(None)
    server.replies[0](200, b"", b"too late")  # must neither raise nor write
    assert server.transport.written == b""
    server.feed(_request("/invocations", b"more"))
    assert len(server.dispatched) == 1


def test_dispatch_failure_and_double_reply_never_break_the_connection() -> None:
    def broken(message: Message) -> Response:
        raise RuntimeError("dispatch bug")

    server = Server(answer=broken)
    server.feed(_request("/a", b""))
    server.replies[0](200, b"", b"second reply")  # ignored: the 500 already answered /a
    server.feed(_request("/b", b""))
    first, second = responses(server.transport)
    assert first.status == 500 and b"dispatch bug" in first.body
    assert second.status == 500 and not server.transport.closed


# -- rendering and messages -------------------------------------------------------------------
def test_render_response_writes_the_rendered_header_lines() -> None:
    headers = b"Content-Type: text/csv\r\nX-Amzn-Invoked-Production-Variant: AllTraffic\r\n"
    raw = render_response(200, headers, b"1,2\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    (answer,) = ResponseReader(raw).responses
    assert answer.headers == {"content-type": "text/csv", "content-length": "4",
                              "x-amzn-invoked-production-variant": "AllTraffic"}
    assert answer.body == b"1,2\n" and answer.keep_alive
    closing = render_response(424, headers, b"{}", close=True)
    assert closing.startswith(b"HTTP/1.1 424 Failed Dependency\r\n")
    assert closing.endswith(b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    assert render_response(299, b"", b"").startswith(b"HTTP/1.1 299 Status\r\n")


def test_render_request_frames_the_body() -> None:
    raw = render_request("POST", "/invocations", b"10.0.0.1:8080",
                         b"Content-Type: text/csv\r\n", b"a,b")
    assert raw == (b"POST /invocations HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n"
                   b"Content-Type: text/csv\r\nContent-Length: 3\r\n\r\na,b")
    server = Server(answer=echo)
    server.feed(raw)
    assert server.dispatched[0].headers["host"] == "10.0.0.1:8080"


def test_message_headers_decode_latin1_strip_and_are_made_once() -> None:
    message = Message({b"content-type": b" text/plain ", b"x-name": b"caf\xe9"}, b"body")
    assert message.headers == {"content-type": "text/plain", "x-name": "caf\u00e9"}
    assert message.headers is message.headers
    built = Message.of({"Content-Type": "application/json", "X-Name": "caf\u00e9"}, b"{}",
                       status=200, keep_alive=False)
    assert built.raw == {b"content-type": b"application/json", b"x-name": b"caf\xe9"}
    assert (built.status, built.body, built.keep_alive) == (200, b"{}", False)
    assert built.headers["x-name"] == "caf\u00e9"


def test_an_upgrade_request_is_refused_and_never_dispatched() -> None:
    """``curl --http2`` on http:// asks for h2c: answer 400 once, never invoke with no body."""
    server = Server(answer=echo)
    server.feed(b"POST /invocations HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
                b"Content-Length: 5\r\n\r\nhello")
    assert server.dispatched == []
    assert [r.status for r in responses(server.transport)] == [400]
    assert server.transport.closed


def test_a_half_closed_client_still_gets_its_answer_then_the_close() -> None:
    server = Server()
    server.feed(_request("/invocations", b"hi"))
    assert server.protocol.eof_received() is True  # keep the transport for the answer
    assert not server.transport.closed
    server.replies[0](*echo(server.dispatched[0]))
    assert [r.body for r in responses(server.transport)] == [b"hi"]
    assert server.transport.closed


def test_a_half_close_with_nothing_pending_closes_at_once() -> None:
    server = Server(answer=echo)
    server.protocol.eof_received()
    assert server.transport.closed


def test_head_gets_the_headers_without_the_body() -> None:
    server = Server(answer=lambda message: (404, b"Content-Type: application/json\r\n",
                                            b'{"Message": "no route"}'))
    server.feed(b"HEAD /ping HTTP/1.1\r\n\r\n")
    raw = bytes(server.transport.written)
    assert raw.startswith(b"HTTP/1.1 404 ") and raw.endswith(b"\r\n\r\n")
    assert b"Content-Length: 23\r\n" in raw  # what a GET would carry, as HTTP/1.1 says


def test_expect_100_continue_gets_the_interim_response_before_the_body() -> None:
    server = Server(answer=echo)
    server.feed(b"POST /invocations HTTP/1.1\r\nExpect: 100-continue\r\n"
                b"Content-Length: 3\r\n\r\n")
    assert bytes(server.transport.written) == b"HTTP/1.1 100 Continue\r\n\r\n"
    server.feed(b"abc")
    assert bytes(server.transport.written).endswith(b"abc")


def test_expect_100_continue_over_the_limit_is_not_invited() -> None:
    server = Server(answer=echo)
    server.feed(b"POST /invocations HTTP/1.1\r\nExpect: 100-continue\r\n"
                b"Content-Length: %d\r\n\r\n" % (LIMIT + 1))
    assert b"100 Continue" not in bytes(server.transport.written)


# -- routing decisions ------------------------------------------------------------------------
def _variant(name: str, weight: float, healthy: int) -> Variant:
    spec = VariantSpec(name, "m", healthy, "local", weight, 600)
    model = ModelSpec.from_request({"ModelName": "m", "PrimaryContainer": {"Image": "x"}})
    variant = Variant(spec, model)
    for n in range(healthy):
        variant.instances.append(Instance(f"{name}-{n}", [], [], healthy=True))
    return variant


def test_least_outstanding_then_round_robin() -> None:
    variant = _variant("A", 1, 3)
    a, b, c = variant.instances
    picks = {variant.pick(set()).ident for _ in range(6)}  # type: ignore[union-attr]
    assert picks == {"A-0", "A-1", "A-2"}
    a.inflight, b.inflight = 2, 1
    assert variant.pick(set()) is c
    assert variant.pick({c}) is b
    c.healthy = False
    b.retired = True
    assert variant.pick(set()) is a
    assert variant.pick({a}) is None


def test_variant_choice() -> None:
    router = Router("e", Path("/tmp"))
    router.variants = [_variant("A", 1, 1), _variant("B", 0, 1), _variant("C", 5, 0)]
    assert {router._choose_variant(None).name for _ in range(20)} == {"A"}
    assert router._choose_variant("B").name == "B"
    with pytest.raises(RouterError) as unknown:
        router._choose_variant("Z")
    status, headers, body = unknown.value.render()
    assert status == 400 and b"x-amzn-ErrorType: ValidationError\r\n" in headers
    assert "does not exist" in json.loads(body)["Message"]
    router.variants = [_variant("A", 1, 0)]
    with pytest.raises(RouterError, match="no healthy instance"):
        router._choose_variant(None)


def test_weighted_choice_follows_the_weights() -> None:
    router = Router("e", Path("/tmp"))
    router.variants = [_variant("A", 1, 1), _variant("B", 3, 1)]
    names = [router._choose_variant(None).name for _ in range(400)]
    assert set(names) == {"A", "B"} and names.count("B") > names.count("A")


def test_dispatch_answers_ping_and_unknown_routes_without_a_loop() -> None:
    router = Router("e", Path("/tmp"))
    router.variants = [_variant("A", 1, 1)]
    answers: list[tuple[int, bytes, bytes]] = []

    def reply(status: int, headers: bytes, body: bytes) -> None:
        answers.append((status, headers, body))

    router.dispatch(Message({}, b"", method="GET", target="/ping"), reply)
    router.variants[0].instances[0].healthy = False
    router.dispatch(Message({}, b"", method="GET", target="/ping"), reply)
    router.dispatch(Message({}, b"", method="DELETE", target="/invocations"), reply)
    assert [a[0] for a in answers] == [200, 503, 404]
    assert b"x-amzn-ErrorType: UnknownOperationException\r\n" in answers[2][1]


@pytest.mark.parametrize("name", ["../x", "/abs", "a//b", "a/./b", ""])
def test_model_cache_refuses_unsafe_names(name: str, tmp_path) -> None:
    cache = ModelCache("file:///models", tmp_path, lambda url, dest: dest)
    with pytest.raises(RouterError, match="not a valid"):
        asyncio.run(cache.path(name))


def test_model_cache_fetches_once(tmp_path) -> None:
    calls: list[str] = []

    def fetch(url: str, dest):
        calls.append(url)
        return dest

    cache = ModelCache("s3://b/models", tmp_path, fetch)

    async def go() -> None:
        await asyncio.gather(*(cache.path("a.tar.gz") for _ in range(5)))

    asyncio.run(go())
    assert calls == ["s3://b/models/a.tar.gz"]


def test_model_cache_reports_a_failed_fetch(tmp_path) -> None:
    def fetch(url: str, dest):
        raise OSError("no such object")

    cache = ModelCache("s3://b/models/", tmp_path, fetch)
    with pytest.raises(RouterError, match="no such object") as failed:
        asyncio.run(cache.path("m.tar.gz"))
    assert failed.value.status == 400


def test_model_cache_download_outlives_a_waiter_that_gave_up(tmp_path) -> None:
    """An invocation whose deadline passes during the download leaves it running; the next
    one gets its result without a second download into the same directory."""
    calls: list[str] = []
    release = threading.Event()

    def fetch(url: str, dest):
        calls.append(url)
        release.wait(10)
        return dest

    cache = ModelCache("s3://b/models", tmp_path, fetch)

    async def go():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(cache.path("a.tar.gz"), 0.05)
        release.set()
        return await cache.path("a.tar.gz")

    assert asyncio.run(go()) == tmp_path / "a.tar.gz"
    assert calls == ["s3://b/models/a.tar.gz"]


def test_a_failed_download_is_tried_again_by_the_next_invocation(tmp_path) -> None:
    outcomes = [OSError("flaky"), None]

    def fetch(url: str, dest):
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return dest

    cache = ModelCache("s3://b/models", tmp_path, fetch)

    async def go():
        with pytest.raises(RouterError, match="flaky"):
            await cache.path("a.tar.gz")
        return await cache.path("a.tar.gz")

    assert asyncio.run(go()) == tmp_path / "a.tar.gz"


def test_specs_are_checked() -> None:
    with pytest.raises(ValidationException, match="unique"):
        variants_from_config({"ProductionVariants": [
            {"VariantName": "a", "ModelName": "m"}, {"VariantName": "a", "ModelName": "m"}]})
    with pytest.raises(ValidationException, match="positive"):
        variants_from_config({"ProductionVariants": [
            {"VariantName": "a", "ModelName": "m", "InitialVariantWeight": 0}]})
    with pytest.raises(ValidationException, match="at most 15"):
        ModelSpec.from_request({"ModelName": "m", "Containers": [{"Image": "x"}] * 16})
    with pytest.raises(ValidationException, match="S3 prefix"):
        ModelSpec.from_request({"ModelName": "m", "PrimaryContainer": {"Image": "x",
                                                                       "Mode": "MultiModel"}})
    pipeline = ModelSpec.from_request({"ModelName": "m", "Containers": [{"Image": "a"},
                                                                         {"Image": "b"}]})
    assert [c.hostname for c in pipeline.containers] == ["container-1", "container-2"]


# -- the planning step both front doors share -------------------------------------------------
def _invocation(**fields: bytes) -> Message:
    raw = {name.replace("_", "-").encode(): value for name, value in fields.items()}
    return Message(raw, b"1,2", method="POST", target="/invocations")


def test_plan_picks_variant_and_instance_and_keeps_the_deadline() -> None:
    router = Router("e", Path("/tmp"))
    router.variants = [_variant("A", 1, 2)]
    plan = router.plan(_invocation(), deadline=123.0)
    assert plan.variant is router.variants[0] and plan.instance in router.variants[0].instances
    assert (plan.target_model, plan.deadline) == (None, 123.0)
    assert plan.direct is False  # these test instances have no container connection at all
    other = router.plan(_invocation(), 0.0, tried={plan.instance})
    assert other.instance is not plan.instance
    with pytest.raises(RouterError, match="Variant 'A' .* no healthy instance"):
        router.plan(_invocation(), 0.0, tried=set(router.variants[0].instances))
    router.variants = [_variant("A", 1, 0)]
    with pytest.raises(RouterError, match="Endpoint 'e' has no healthy instance"):
        router.plan(_invocation(), 0.0)


def test_plan_reads_target_variant_and_target_model_from_the_raw_fields() -> None:
    router = Router("e", Path("/tmp"))
    router.variants = [_variant("A", 1, 1), _variant("B", 1, 1)]
    names = {router.plan(_invocation(**{"x_amzn_sagemaker_target_variant": b"B"}), 0.0)
             .variant.name for _ in range(10)}
    assert names == {"B"}
    with pytest.raises(RouterError, match="not a multi-model endpoint"):
        router.plan(_invocation(**{"x_amzn_sagemaker_target_model": b"m.tar.gz"}), 0.0)
    multi = _variant("M", 1, 1)
    multi.model = ModelSpec.from_request({"ModelName": "m", "PrimaryContainer": {
        "Image": "x", "Mode": "MultiModel", "ModelDataUrl": "s3://b/models/"}})
    router.variants = [multi]
    with pytest.raises(RouterError, match="TargetModel is required"):
        router.plan(_invocation(), 0.0)
    plan = router.plan(_invocation(**{"x_amzn_sagemaker_target_model": b" m.tar.gz "}), 0.0)
    assert plan.target_model == "m.tar.gz" and not plan.direct


def test_container_fields_follow_a_pipeline() -> None:
    raw = {b"content-type": b"text/csv", b"accept": b"application/json",
           b"x-amzn-sagemaker-custom-attributes": b"trace=1", b"x-other": b"dropped"}
    single = container_fields(raw, raw[b"content-type"], accept=True)
    assert single == (b"Content-Type: text/csv\r\nAccept: application/json\r\n"
                      b"X-Amzn-SageMaker-Custom-Attributes: trace=1\r\n")
    first = container_fields(raw, raw[b"content-type"], accept=False)  # not the last stage
    assert first == b"Content-Type: text/csv\r\nX-Amzn-SageMaker-Custom-Attributes: trace=1\r\n"
    later = container_fields(raw, b"application/x-npy", accept=True)  # the previous answer's
    assert later.startswith(b"Content-Type: application/x-npy\r\nAccept: application/json\r\n")
    assert container_fields({}, None, accept=True) == b""
