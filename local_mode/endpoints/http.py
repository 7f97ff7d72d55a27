"""HTTP/1.1 for the router: a server-side connection protocol for clients, and keep-alive pools
of client connections to the containers.

Why asyncio protocols and httptools rather than streams or a framework: the router sits on every
invocation and must add well under a millisecond at concurrency 16 on two shared cores, which
is a CPU budget of about 100 µs per routed request. A stream-based version spent 250 µs, mostly
in awaiting ``StreamReader`` futures (four wake-ups per request) and parsing heads in Python.
Here each connection is a protocol fed straight from the transport: llhttp (Node.js's parser,
through httptools) splits messages in C, and a routed request is two callbacks (request parsed:
write it to a pooled container connection; response parsed: write it to the client) with no
task, coroutine or timer of its own; the loop is uvloop's where it is installed (see :func:`run`).
Measured on two shared cores at concurrency 16, that is as little CPU per request as nginx.
Anything off that path (a new connection, a retry, a pipeline, multi-model) runs as a coroutine.

Headers are bytes on both sides: a response's fields are passed as rendered header lines, a
request's as rendered lines too, so nothing is decoded or encoded on the way through. Every
exchange with a container carries an absolute deadline (``time.monotonic()`` based); one sweep
timer per :class:`Upstream`, armed only while exchanges are in flight, ends the overdue ones.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import httptools

IDLE_SECONDS = 4.0  # below gunicorn's 5 s keep-alive, so a pooled connection is rarely stale
SWEEP_SECONDS = 0.5  # how often an upstream with exchanges in flight looks for overdue ones
DISCARD_LIMIT = 64 * 1024 * 1024  # a refused body up to this size is read and dropped
MAX_PIPELINED = 16  # requests queued on one connection before it stops reading
REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found",
           411: "Length Required", 413: "Payload Too Large", 424: "Failed Dependency",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}

Response = tuple[int, bytes, bytes]
"""``(status, header lines, body)``: each header line ends in CRLF."""
_T = TypeVar("_T")
_STATUS_LINES = {status: f"HTTP/1.1 {status} {reason}\r\n".encode() for status, reason in
                 REASONS.items()}


class HTTPProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 as we speak it."""


class UpstreamUnavailable(Exception):
    """No response came from the container (refused, reset, closed): the request can go to
    another instance."""


class PayloadTooLarge(Exception):
    """A body over the limit; ``declared`` is its length when Content-Length gave it."""

    def __init__(self, size: int, declared: int | None = None) -> None:
        super().__init__(size)
        self.size = size
        self.declared = declared


class Message:
    """A parsed request (``method``/``target``) or response (``status``).

    ``raw`` maps lower-case header names to values as bytes (the last of repeated fields wins):
    the routing fast path reads the few fields it forwards from it without decoding the rest;
    ``headers`` is the decoded view, made on first use.
    """

    __slots__ = ("raw", "body", "status", "method", "target", "keep_alive", "_headers")

    def __init__(self, raw: dict[bytes, bytes], body: bytes, status: int = 0, method: str = "",
                 target: str = "", keep_alive: bool = True) -> None:
        self.raw, self.body, self.status = raw, body, status
        self.method, self.target, self.keep_alive = method, target, keep_alive
        self._headers: dict[str, str] | None = None

    @classmethod
    def of(cls, headers: dict[str, str], body: bytes = b"", **fields: Any) -> Message:
        return cls({k.lower().encode("latin-1"): v.encode("latin-1")
                    for k, v in headers.items()}, body, **fields)

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = {k.decode("latin-1"): v.decode("latin-1").strip(" \t")
                             for k, v in self.raw.items()}
        return self._headers


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run`` on uvloop when it is installed (it roughly halves the router's CPU per
    request), else on the standard loop: the router is correct on both."""
    try:
        import uvloop  # an optional accelerator, so imported only here
    except ImportError:  # pragma: no cover - uvloop is in the local extra on Linux and macOS
        return asyncio.run(main)
    return uvloop.run(main)


def render_response(status: int, fields: bytes, body: bytes, close: bool = False) -> bytes:
    """A whole response; ``fields`` are its header lines, each ending in CRLF."""
    start = _STATUS_LINES.get(status) or \
        f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n".encode("latin-1")
    return b"%s%sContent-Length: %d\r\n%s%s" % (
        start, fields, len(body), b"Connection: close\r\n\r\n" if close else b"\r\n", body)


def render_request(method: str, path: str, authority: bytes, fields: bytes, body: bytes) -> bytes:
    """A whole request to ``authority`` (``host:port``); ``fields`` are its header lines."""
    return b"%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n%s" % (
        method.encode("latin-1"), path.encode("latin-1"), authority, fields, len(body), body)


class _Parsing:
    """httptools callbacks shared by both directions: collect one message's head and body."""

    limit: int | None = None

    def _reset(self) -> None:
        self._raw: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._too_large: PayloadTooLarge | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._too_large is not None:
            return
        if self.limit is not None and self._size > self.limit:
            self._too_large = PayloadTooLarge(self._size)
            self._body.clear()
            return
        self._body.append(body)

    def _declared_length(self) -> int | None:
        raw = self._raw.get(b"content-length")
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            raise HTTPProtocolError(f"Content-Length {raw!r} is not a number") from None


Reply = Callable[[int, bytes, bytes], None]
#: ``dispatch(request, reply)``: must call ``reply`` exactly once, now or later.
Dispatch = Callable[[Message, Reply], None]
#: ``done(response, error)``: the outcome of one exchange with a container.
Done = Callable[["Message | None", "Exception | None"], None]


def _reason(exc: Exception) -> str:
    """The parser's complaint, or ours when one of our callbacks refused the message (httptools
    raises ``HttpParserCallbackError`` with the callback's exception as the context)."""
    context = exc.__context__
    return str(context) if isinstance(context, HTTPProtocolError) else str(exc)


@dataclass(slots=True)
class _Pending:
    message: Message | None
    refused: PayloadTooLarge | None = None
    error: str | None = None


class ServerConnection(_Parsing, asyncio.Protocol):
    """One client connection: requests are parsed as bytes arrive, dispatched one at a time in
    arrival order (HTTP/1.1 pipelining), and each response is written when ``reply`` is called.

    ``refuse(exc)`` renders the answer to a body over ``limit``: the body is read and dropped
    (up to :data:`DISCARD_LIMIT`) so the client sees that answer rather than a reset while it is
    still sending, then the connection closes. A request the parser rejects gets ``bad(text)``
    and the connection closes.
    """

    def __init__(self, dispatch: Dispatch, limit: int,
                 refuse: Callable[[PayloadTooLarge], Response],
                 bad: Callable[[str], Response]) -> None:
        self.dispatch, self.limit, self.refuse, self.bad = dispatch, limit, refuse, bad
        self._current: Message | None = None
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[_Pending] = deque()
        self._busy = False
        self._writable = True
        self._closing = False
        self._reading_paused = False
        self._eof = False
        self._url = b""
        self._reset()

    # -- transport events ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream connection's

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._queue.clear()

    def eof_received(self) -> bool:
        """The client half-closed after its last request: answer it, then close."""
        self._eof = True
        if not self._busy and not self._queue and self.transport is not None:
            self.transport.close()
        return True  # keep the transport open for the answers still to come

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._next()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._enqueue(_Pending(None, error="protocol upgrades are not supported"))
        except httptools.HttpParserError as exc:
            self._enqueue(_Pending(None, error=f"malformed HTTP request: {_reason(exc)}"))
        else:
            refused = self._too_large
            if refused is not None and refused.declared is None and self._size > DISCARD_LIMIT:
                self._enqueue(_Pending(None, refused=refused))  # chunked without end: stop

    # -- parser callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._reset()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_headers_complete(self) -> None:
        declared = self._declared_length()
        if declared is not None and self.limit is not None and declared > self.limit:
            self._too_large = PayloadTooLarge(declared, declared=declared)
            if declared > DISCARD_LIMIT:
                self._enqueue(_Pending(None, refused=self._too_large))
        elif self._raw.get(b"expect", b"").lower() == b"100-continue" and \
                self.transport is not None and not self._closing:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits 1 s for it

    def on_message_complete(self) -> None:
        if self._too_large is not None:
            self._enqueue(_Pending(None, refused=self._too_large))
            return
        if self._parser.should_upgrade():
            return  # what follows is not HTTP/1.1: feed_data raises, and that answers 400
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        message = Message(self._raw, body, method=self._parser.get_method().decode(),
                          target=self._url.decode("latin-1"),
                          keep_alive=self._parser.should_keep_alive())
        if self._busy or self._queue or not self._writable or self._closing:
            self._enqueue(_Pending(message))
            return
        self._start(message)  # the usual case: nothing pipelined ahead of it

    # -- handling --------------------------------------------------------------------------
    def _enqueue(self, pending: _Pending) -> None:
        if self._closing:  # after an error nothing on this connection counts
            return
        if pending.message is None:
            self._closing = True
            self._pause_reading()
        self._queue.append(pending)
        if len(self._queue) >= MAX_PIPELINED:
            self._pause_reading()
        self._next()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def _next(self) -> None:
        if self._busy or not self._writable or not self._queue or self.transport is None:
            return
        pending = self._queue.popleft()
        if pending.message is None:
            status, headers, body = (self.refuse(pending.refused) if pending.refused is not None
                                     else self.bad(pending.error or "bad request"))
            self.transport.write(render_response(status, headers, body, close=True))
            self.transport.close()
            self._queue.clear()
            return
        self._start(pending.message)

    def _start(self, message: Message) -> None:
        self._busy = True
        self._current = message
        try:
            self.dispatch(message, self._reply)
        except Exception as exc:  # noqa: BLE001 - a dispatch bug must still get an answer
            if self._current is message:
                self._reply(500, b"Content-Type: text/plain\r\n", repr(exc).encode())

    def _reply(self, status: int, fields: bytes, body: bytes) -> None:
        message, self._current = self._current, None
        if message is None:  # a second reply for one request: a bug, but never a crash
            return
        self._busy = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        response = render_response(status, fields, body, close=not message.keep_alive)
        if message.method == "HEAD" and body:  # the GET's headers, no body (RFC 9110 9.3.2)
            response = response[:-len(body)]
        transport.write(response)
        if not message.keep_alive or (self._eof and not self._queue):
            transport.close()
            return
        if self._reading_paused and len(self._queue) < MAX_PIPELINED and not self._closing:
            self._reading_paused = False
            transport.resume_reading()
        if self._queue:
            self._next()


class StaleConnection(Exception):
    """A pooled connection turned out closed before any byte of the response came back: the
    container never saw the request, which is safe to send again."""


class _UpstreamConnection(_Parsing, asyncio.Protocol):
    """One keep-alive connection to a container: one request at a time; ``done`` is called
    once with its outcome. The owning :class:`Upstream` pools it again before ``done`` runs."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.deadline = 0.0
        self.upstream: Upstream | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._done: Done | None = None
        self._received = False
        self._head_done = False
        self._reset()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream connection's

    def send(self, data: bytes, done: Done, deadline: float) -> None:
        assert self.transport is not None and self._done is None
        self._done, self.deadline = done, deadline
        self._received = self._head_done = False
        self._reset()
        try:
            self.transport.write(data)
        except RuntimeError:  # uvloop refuses a write to a transport that closed under us
            # nothing reached the container: stale, reported from the loop as connection_lost
            # would (whichever comes first; _finish reports once)
            asyncio.get_running_loop().call_soon(
                self._finish, None, StaleConnection("closed before the request was sent"))

    def expire(self) -> None:
        """The exchange outlived its deadline: give up on it and on the connection (whatever
        the container sends later would be taken for the next exchange's answer)."""
        self._finish(exc=TimeoutError("no response before the deadline"))
        self.close()

    def data_received(self, data: bytes) -> None:
        self._received = True
        if self._done is None:  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._finish(exc=HTTPProtocolError(f"bad response from the container: "
                                               f"{_reason(exc)}"))
            self.close()

    def on_message_begin(self) -> None:
        self._reset()

    def on_headers_complete(self) -> None:
        self._head_done = True
        self._declared_length()  # a malformed Content-Length fails here, clearly

    def on_message_complete(self) -> None:
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        keep_alive = self._parser.should_keep_alive()
        self._finish(Message(self._raw, body, status=self._parser.get_status_code(),
                             keep_alive=keep_alive))
        if not keep_alive:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._done is None:
            return
        framed = b"content-length" in self._raw or \
            b"chunked" in self._raw.get(b"transfer-encoding", b"").lower()
        if self._head_done and not framed:  # a body delimited by the end of the connection
            body = b"".join(self._body)
            self._finish(Message(self._raw, body, status=self._parser.get_status_code(),
                                 keep_alive=False))
        elif not self._received:
            self._finish(exc=StaleConnection(f"closed the connection ({exc!r})"))
        else:
            self._finish(exc=UpstreamUnavailable(f"closed the connection mid-response "
                                                 f"({exc!r})"))

    def _finish(self, message: Message | None = None, exc: Exception | None = None) -> None:
        done, self._done = self._done, None
        if done is None:
            return
        if self.upstream is not None:
            self.upstream.release(self, reusable=message is not None and message.keep_alive)
        done(message, exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


@dataclass(eq=False)
class Upstream:
    """Keep-alive connections to one container (``host:port``).

    :meth:`send` is the fast path: a request on an idle pooled connection, its outcome a
    callback. :meth:`request` is the coroutine for everything else (it also opens connections).
    Both take the exchange's ``deadline``; past it the exchange ends with :class:`TimeoutError`
    and its connection is closed. The deadlines are checked by one timer per upstream every
    :data:`SWEEP_SECONDS` while exchanges are in flight, not by a timer per request.
    """

    host: str
    port: int
    unix_path: str | None = None
    """Where the container also listens on a Unix socket: new connections go there when it
    exists (no TCP round trip, no port proxy), else to ``host:port``."""
    closed: bool = False
    _idle: list[_UpstreamConnection] = field(default_factory=list)
    _busy: set[_UpstreamConnection] = field(default_factory=set)
    _sweep: asyncio.TimerHandle | None = None

    @functools.cached_property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    @functools.cached_property
    def _host_value(self) -> bytes:
        """:attr:`authority` as every request's Host field carries it (encoded once)."""
        return self.authority.encode("latin-1")

    def send(self, method: str, path: str, fields: bytes, body: bytes, done: Done,
             deadline: float) -> bool:
        """Start the exchange on an idle connection; False when none is idle (then nothing was
        sent: use :meth:`request`). ``done`` gets ``(response, None)``, or ``(None, error)``
        with :class:`UpstreamUnavailable`, :class:`TimeoutError`, :class:`HTTPProtocolError`,
        or :class:`StaleConnection`."""
        connection = self._take_idle()
        if connection is None:
            return False
        connection.send(render_request(method, path, self._host_value, fields, body), done,
                        deadline)
        self._watch()
        return True

    def _take_idle(self) -> _UpstreamConnection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            transport = connection.transport
            # closing: the container closed it and connection_lost has not run yet
            if connection.closed or transport is None or transport.is_closing() or \
                    now - connection.idle_since > IDLE_SECONDS:
                connection.close()
                continue
            self._busy.add(connection)
            return connection
        return None

    async def request(self, method: str, path: str, fields: bytes, body: bytes = b"", *,
                      deadline: float) -> Message:
        """Send one request and read the response; :class:`UpstreamUnavailable` when the
        container gave no response at all (so it never saw, or never answered, the request),
        :class:`TimeoutError` when none came before ``deadline``."""
        data = render_request(method, path, self._host_value, fields, body)
        loop = asyncio.get_running_loop()
        while True:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.authority}: the deadline passed before the request "
                                   "was sent")
            connection = self._take_idle()
            if connection is None:
                try:  # the connect spends the same deadline as the exchange
                    connection = await asyncio.wait_for(self._connect(loop),
                                                        deadline - time.monotonic())
                except asyncio.TimeoutError:
                    raise TimeoutError(f"{self.authority}: no connection before the deadline") \
                        from None
                connection.upstream = self
                self._busy.add(connection)
                fresh = True
            else:
                fresh = False
            future: asyncio.Future[Message] = loop.create_future()
            connection.send(data, functools.partial(_settle, future), deadline)
            self._watch()
            try:
                return await future
            except StaleConnection as exc:
                if fresh:
                    raise UpstreamUnavailable(f"{self.authority} {exc}") from None
                continue  # the container closed it while idle: use another connection
            except UpstreamUnavailable as exc:
                raise UpstreamUnavailable(f"{self.authority} {exc}") from None
            except asyncio.CancelledError:  # shutting down: nobody reads this response
                self._busy.discard(connection)
                connection.close()
                raise

    def _watch(self) -> None:
        """Arm the deadline sweep, unless it is armed already."""
        if self._sweep is None:  # always called on the loop (a callback or a coroutine)
            self._sweep = asyncio.get_running_loop().call_later(SWEEP_SECONDS, self._swept)

    def _swept(self) -> None:
        self._sweep = None
        self.expire_overdue(time.monotonic())
        if self._busy:
            self._watch()

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _UpstreamConnection:
        if self.unix_path is not None and os.path.exists(self.unix_path):
            try:
                _, unix = await loop.create_unix_connection(_UpstreamConnection, self.unix_path)
                return unix
            except OSError:
                pass  # removed or not listening (yet, or any more): the port is the contract
        try:
            _, connection = await loop.create_connection(_UpstreamConnection, self.host,
                                                         self.port)
        except OSError as exc:
            raise UpstreamUnavailable(f"cannot connect to {self.authority}: {exc}") from None
        return connection

    def release(self, connection: _UpstreamConnection, reusable: bool) -> None:
        self._busy.discard(connection)
        if reusable and not self.closed and not connection.closed:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()

    def expire_overdue(self, now: float) -> None:
        """End the exchanges whose deadline is ``now`` or earlier."""
        for connection in [c for c in self._busy if c.deadline <= now]:
            connection.expire()

    def close(self) -> None:
        """Drop every idle connection (the container is retired)."""
        self.closed = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()
        if self._sweep is not None and not self._busy:  # with exchanges left, it ends them
            self._sweep.cancel()
            self._sweep = None


def _settle(future: asyncio.Future[Message], response: Message | None,
            error: Exception | None) -> None:
    if future.done():
        return
    if response is not None:
        future.set_result(response)
    else:
        future.set_exception(error or HTTPProtocolError("an exchange ended with no outcome"))
