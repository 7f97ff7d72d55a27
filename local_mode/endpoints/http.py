"""Lean asyncio HTTP/1.1 for the router: parse requests, write responses, and a keep-alive
connection pool to each container.

Why hand-written: the router sits on every invocation and must add well under a millisecond at
concurrency 16. A general framework costs more than the whole budget in Python; requests and
responses here are small, framed by Content-Length (or chunked from a container), and the peer
on the other side is always on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024
IDLE_SECONDS = 4.0  # below gunicorn's 5 s keep-alive, so a pooled connection is rarely stale
REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found",
           411: "Length Required", 413: "Payload Too Large", 424: "Failed Dependency",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


class HTTPProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 as we speak it."""


class UpstreamUnavailable(Exception):
    """No response came from the container (refused, reset, closed): the request can go to
    another instance."""


@dataclass
class Message:
    """A parsed request (``method``/``target``) or response (``status``)."""

    headers: dict[str, str]
    body: bytes
    status: int = 0
    method: str = ""
    target: str = ""

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


def parse_head(head: bytes) -> tuple[bytes, dict[str, str]]:
    """The start line and the headers (names lower-cased) of a message head.

    The header block is decoded once and split as text: one decode per message instead of
    two per header line (this runs twice per routed request).
    """
    start, _, rest = head.partition(b"\r\n")
    headers: dict[str, str] = {}
    if rest:
        for line in rest.decode("latin-1").split("\r\n"):
            name, sep, value = line.partition(":")
            if not sep:
                if not line:
                    continue
                raise HTTPProtocolError(
                    f"malformed header line {line[:80].encode('latin-1')!r}")
            headers[name.strip().lower()] = value.strip()
    return start, headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str],
                    limit: int | None, *, until_eof: bool = False) -> bytes:
    """The body framed by Content-Length or chunked encoding; ``PayloadTooLarge`` over limit."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(parts)
            total += size
            if limit is not None and total > limit:
                raise PayloadTooLarge(total)
            parts.append((await reader.readexactly(size + 2))[:-2])
    raw = headers.get("content-length")
    if raw is None:
        return await reader.read() if until_eof else b""
    try:
        length = int(raw)
    except ValueError:
        raise HTTPProtocolError(f"Content-Length {raw!r} is not a number") from None
    if limit is not None and length > limit:
        raise PayloadTooLarge(length, declared=length)
    return await reader.readexactly(length) if length else b""


class PayloadTooLarge(Exception):
    """A body over the limit; ``declared`` is its unread length when Content-Length gave it."""

    def __init__(self, size: int, declared: int | None = None) -> None:
        super().__init__(size)
        self.size = size
        self.declared = declared


async def read_request(reader: asyncio.StreamReader, limit: int | None) -> Message | None:
    """The next request on a client connection; None at a clean end of the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise HTTPProtocolError("connection closed in the middle of a request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise HTTPProtocolError("request head larger than 64 KiB") from None
    start, headers = parse_head(head[:-4])
    parts = start.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise HTTPProtocolError(f"malformed request line {start[:80]!r}")
    message = Message(headers, b"", method=parts[0].decode("latin-1"),
                      target=parts[1].decode("latin-1"))
    if parts[2] == b"HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
        headers["connection"] = "close"
    message.body = await read_body(reader, headers, limit)
    return message


def render_response(status: int, headers: list[tuple[str, str]], body: bytes,
                    close: bool = False) -> bytes:
    fields = "".join(f"{k}: {v}\r\n" for k, v in headers)
    end = "Connection: close\r\n\r\n" if close else "\r\n"
    return (f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n{fields}"
            f"Content-Length: {len(body)}\r\n{end}").encode("latin-1") + body


class Upstream:
    """Keep-alive connections to one container (``host:port``)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._authority = f"Host: {host}:{port}\r\n"
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.closed = False

    async def request(self, method: str, path: str, headers: list[tuple[str, str]],
                      body: bytes = b"") -> Message:
        """Send one request and read the response; :class:`UpstreamUnavailable` when the
        container gave no response at all (so it never saw, or never answered, the request)."""
        while self._idle:
            reader, writer, since = self._idle.pop()
            if time.monotonic() - since > IDLE_SECONDS or reader.at_eof():
                writer.close()
                continue
            try:
                return await self._exchange(reader, writer, method, path, headers, body)
            except _Stale:
                continue  # the container closed it while idle: use a fresh connection
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise UpstreamUnavailable(f"cannot connect to {self.host}:{self.port}: {exc}") \
                from None
        try:
            return await self._exchange(reader, writer, method, path, headers, body)
        except _Stale as exc:
            raise UpstreamUnavailable(str(exc)) from None

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        method: str, path: str, headers: list[tuple[str, str]],
                        body: bytes) -> Message:
        fields = "".join(f"{k}: {v}\r\n" for k, v in headers)
        head = (f"{method} {path} HTTP/1.1\r\n{self._authority}{fields}"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        reusable = False
        try:
            try:
                writer.write(head + body if len(body) < 65536 else head)
                if len(body) >= 65536:
                    writer.write(body)
                await writer.drain()
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
                raise _Stale(f"{self.host}:{self.port} closed the connection ({exc!r})") \
                    from None
            start, response_headers = parse_head(raw[:-4])
            try:
                status = int(start.split(b" ", 2)[1])
            except (IndexError, ValueError):
                raise HTTPProtocolError(f"bad status line {start[:80]!r}") from None
            close = response_headers.get("connection", "").lower() == "close"
            try:
                data = await read_body(reader, response_headers, None, until_eof=close)
            except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
                raise UpstreamUnavailable(f"{self.host}:{self.port} closed the connection "
                                          f"mid-response ({exc!r})") from None
            reusable = not close and not self.closed
            return Message(response_headers, data, status=status)
        finally:
            if reusable:
                self._idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()

    def close(self) -> None:
        """Drop every idle connection (the container is retired)."""
        self.closed = True
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()


class _Stale(Exception):
    pass
