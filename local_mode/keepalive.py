"""A blocking HTTP/1.1 client over keep-alive connections to 127.0.0.1, one per thread and port.

The runtime client (to an endpoint's router) and a transform job (to its containers) both call
local servers many times from several threads; a connection per call would cost a handshake
and a port in TIME_WAIT each time, so each thread keeps one open per port. A kept connection the
server closed while it sat idle fails on its next use before any response; that request is sent
once more on a fresh connection, unless its body was a stream that cannot be sent again.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from local_mode.loopback import LOOPBACK

_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
"""How a kept connection the server had closed fails: the request never reached it."""

Fields = Sequence[tuple[bytes, bytes]]
"""Request header fields as written: (name, value) pairs."""


class NoResponse(Exception):
    """The server gave no response (refused, reset, closed, or silent past the timeout)."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    """Lower-case names (the last of repeated fields wins)."""
    body: bytes


class KeepAliveClient:
    """``request(port, ...)`` over this thread's connection to ``port``; ``timeout`` bounds the
    connect and each wait for the server."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._local = threading.local()

    def _pool(self) -> dict[int, http.client.HTTPConnection]:
        pool: dict[int, http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        return pool

    def request(self, port: int, method: str, path: str, fields: Fields = (), *,
                body: bytes | Iterable[bytes] | None = None) -> Reply:
        """One exchange; :class:`NoResponse` when none came. An iterable ``body`` is sent
        chunked and never re-sent."""
        streamed = body is not None and not isinstance(body, (bytes, bytearray))
        pool = self._pool()
        while True:
            connection = pool.pop(port, None)
            reused = connection is not None
            if connection is None:
                connection = http.client.HTTPConnection(LOOPBACK, port, timeout=self.timeout)
            try:
                connection.putrequest(method, path, skip_accept_encoding=True)
                for name, value in fields:
                    connection.putheader(name, value)
                if isinstance(body, (bytes, bytearray)):
                    connection.putheader(b"Content-Length", b"%d" % len(body))
                elif body is not None:
                    connection.putheader(b"Transfer-Encoding", b"chunked")
                connection.endheaders(body, encode_chunked=streamed)
                response = connection.getresponse()
                data = response.read()
            except _STALE as exc:
                connection.close()
                if reused and not streamed:
                    continue  # closed while idle: once more, on a fresh connection
                raise NoResponse(f"closed the connection ({exc!r})") from None
            except (OSError, http.client.HTTPException) as exc:  # TimeoutError is an OSError
                connection.close()
                raise NoResponse(f"did not answer ({exc!r})",
                                 timed_out=isinstance(exc, TimeoutError)) from None
            except BaseException:  # a bad field or body: the connection is in an unknown state
                connection.close()
                raise
            if response.will_close:
                connection.close()
            else:
                pool[port] = connection
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def close(self) -> None:
        """Close this thread's connections."""
        pool = self._pool()
        for connection in pool.values():
            connection.close()
        pool.clear()
