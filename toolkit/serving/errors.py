"""HTTP errors of the model server and how any exception becomes a JSON error response.

Every failure leaves the server as a small JSON body ``{"error": ..., "message": ...}`` with the
right status, never an HTML page: clients of an inference endpoint parse JSON, and a traceback in
a response leaks code paths (it goes to the log instead, or into the body only with
``OPTML_DEBUG_ERRORS``).

User code chooses its own status by raising :class:`HTTPError` (``from toolkit.serving import
HTTPError``) or *any* exception whose ``status_code`` attribute is an integer 400-599, so
exceptions of existing web libraries keep their meaning without a dependency on optml.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from http import HTTPStatus

from toolkit.formats.errors import FormatError


class HTTPError(Exception):
    """Raise from a handler to answer with ``status_code`` and ``message`` (400-599)."""

    error: str = "error"

    def __init__(self, status_code: int, message: str, *, error: str | None = None) -> None:
        if not isinstance(status_code, int) or not 400 <= status_code <= 599:
            raise ValueError(f"status_code must be an integer 400-599, got {status_code!r}")
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.error = error or reason(status_code)


_STABLE_NAMES = {
    400: "bad_request", 404: "not_found", 405: "method_not_allowed", 406: "not_acceptable",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "unprocessable_entity", 429: "too_many_requests", 500: "internal_server_error",
    503: "service_unavailable", 507: "insufficient_storage",
}
"""Fixed here because Python renames some phrases between versions (413, 422 in 3.13)."""


def reason(status: int) -> str:
    """``404`` -> ``"not_found"``: a stable machine-readable name for the status."""
    if status in _STABLE_NAMES:
        return _STABLE_NAMES[status]
    try:
        phrase = HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"
    return re.sub(r"[^a-z0-9]+", "_", phrase.replace("'", "")).strip("_")


class ServerError(HTTPError):
    """An error the server itself raises (bad request, negotiation, limits, registry)."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(self.status, message)


class BadRequest(ServerError):
    status = 400


class NotFound(ServerError):
    status = 404


class NotAcceptable(ServerError):
    status = 406


class Conflict(ServerError):
    status = 409


class PayloadTooLarge(ServerError):
    status = 413


class UnsupportedMediaType(ServerError):
    status = 415


class ServiceUnavailable(ServerError):
    status = 503


class InsufficientStorage(ServerError):
    status = 507


class UserCodeFailed(Exception):
    """Marks an exception raised inside a user handler, so it maps to 500 (not a server bug)."""

    def __init__(self, handler: str, cause: BaseException) -> None:
        super().__init__(f"{handler} raised {type(cause).__name__}: {cause}")
        self.handler = handler
        self.cause = cause


@dataclass(frozen=True)
class ErrorResponse:
    """What the client receives: a status and the JSON body's fields."""

    status: int
    error: str
    message: str
    traceback: str | None = None

    def body(self) -> dict[str, str]:
        data = {"error": self.error, "message": self.message}
        if self.traceback is not None:
            data["traceback"] = self.traceback
        return data


def _user_status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
        return status
    return None


def error_response(exc: BaseException, *, debug: bool = False) -> ErrorResponse:
    """Map any exception to the response the client gets.

    Order matters: an explicit status wins, then the well-known kinds (malformed data 400,
    out of memory 507), and everything else is a 500 that names the failing handler.
    """
    handler = None
    cause = exc
    if isinstance(exc, UserCodeFailed):
        handler, cause = exc.handler, exc.cause
    tb = "".join(traceback.format_exception(cause)) if debug else None
    if isinstance(cause, HTTPError):
        return ErrorResponse(cause.status_code, cause.error, cause.message, tb)
    status = _user_status(cause)
    if status is not None:
        return ErrorResponse(status, reason(status), _describe(cause), tb)
    if isinstance(cause, MemoryError):
        where = f" in {handler}" if handler else ""
        return ErrorResponse(507, "insufficient_storage", f"out of memory{where}", tb)
    if isinstance(cause, FormatError):
        return ErrorResponse(400, "bad_request", str(cause), tb)
    if handler is not None:
        return ErrorResponse(500, "internal_server_error",
                             f"{handler} raised {_describe(cause)}", tb)
    return ErrorResponse(500, "internal_server_error", "internal server error", tb)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
