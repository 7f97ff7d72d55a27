"""HTTP probes of a serving container, with the standard library's client.

Every probe returns an :class:`Answer` or raises :class:`NoAnswer` saying what happened on the
wire (refused, reset, closed without a response, timed out), because "why there was no answer"
is most of what a failed serving check has to report. :class:`InFlight` holds a request open
mid-body, which is how the drain check knows a request really is in flight when SIGTERM lands.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

BODY_EXCERPT = 200


class NoAnswer(Exception):
    """The server gave no HTTP response; the message says what happened instead."""


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    seconds: float

    def excerpt(self) -> str:
        text = self.body[:BODY_EXCERPT].decode("utf-8", "replace").replace("\n", " ").strip()
        more = "..." if len(self.body) > BODY_EXCERPT else ""
        return f"{text}{more}" if text else "(empty body)"

    def describe(self) -> str:
        return f"{self.status} ({self.content_type or 'no Content-Type'}: {self.excerpt()})"


def _why(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on the port)"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no response before the timeout"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without a response"
    if isinstance(exc, http.client.HTTPException):
        return f"malformed HTTP response ({type(exc).__name__}: {exc})"
    return f"{type(exc).__name__}: {exc}"


def _read(connection: http.client.HTTPConnection, started: float) -> Answer:
    response = connection.getresponse()
    body = response.read()
    return Answer(response.status, response.getheader("Content-Type", "") or "", body,
                  time.monotonic() - started)


def request(host: str, port: int, method: str, path: str, body: bytes | None = None,
            headers: Mapping[str, str] | None = None, timeout: float = 60.0) -> Answer:
    """One request on a fresh connection; NoAnswer when there is no HTTP response."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        return _read(connection, started)
    except (OSError, http.client.HTTPException) as exc:
        raise NoAnswer(_why(exc)) from None
    finally:
        connection.close()


class InFlight:
    """A POST whose headers and all but the last byte of its body have been sent.

    The server has the request (it is reading the body), so it is in flight by any
    definition; :meth:`finish` sends the rest and reads the answer.
    """

    def __init__(self, host: str, port: int, path: str, body: bytes,
                 headers: Mapping[str, str], timeout: float) -> None:
        if not body:
            raise ValueError("an in-flight request needs a body of at least one byte")
        self._body = body
        self._connection = http.client.HTTPConnection(host, port, timeout=timeout)
        self._started = time.monotonic()
        try:
            self._connection.putrequest("POST", path, skip_accept_encoding=True)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self._connection.putheader(name, value)
            self._connection.endheaders(body[:-1] or None)
        except (OSError, http.client.HTTPException) as exc:
            self._connection.close()
            raise NoAnswer(_why(exc)) from None

    def finish(self) -> Answer:
        try:
            self._connection.send(self._body[-1:])
            return _read(self._connection, self._started)
        except (OSError, http.client.HTTPException) as exc:
            raise NoAnswer(_why(exc)) from None
        finally:
            self._connection.close()

    def abandon(self) -> None:
        self._connection.close()
