"""The lean WSGI layer for the hot routes, installed in front of the Flask app.

``GET|HEAD /ping``, ``POST /invocations`` and (multi-model) ``POST /models/<name>/invoke`` are
every request a busy endpoint serves. For a small model, Flask's per-request machinery (request
context, URL adapter, ``Response`` object) cost as much CPU as everything else together, so these
routes are answered here, on ``PATH_INFO`` and ``REQUEST_METHOD``, with plain WSGI. Anything
else (the ``/models`` API, ``/execution-parameters``, wrong methods, unknown or unusual paths)
goes to Flask unchanged, which stays the app object and the owner of those routes.

The answers are byte-for-byte what the Flask routes give (same status lines, headers and JSON
error bodies; the Flask routes call the same :class:`~toolkit.serving.invoke.Invoker` and reply
helpers), which tests check by sending the same requests both ways.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from toolkit.serving.context import TARGET_MODEL
from toolkit.serving.errors import BadRequest, ErrorResponse, UserCodeFailed, error_response, reason
from toolkit.serving.invoke import Headers, Invoker
from toolkit.serving.runtime import ServingRuntime

log = logging.getLogger("optml.serving")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

CLOSE_CONNECTION = "optml.close_connection"
"""WSGI environ key: the response must close the connection (the body was not read)."""
_PING_OK_TYPE = "text/plain; charset=utf-8"
_MODEL_PREFIX, _INVOKE_SUFFIX = "/models/", "/invoke"
_PLAIN_MODEL_PATH = re.compile(r"/models/[A-Za-z0-9._+=\-][A-Za-z0-9._+=/\-]*/invoke")
"""Model paths the hot path takes; anything odder (``//``, other characters) goes to Flask,
whose routing decides exactly as before."""


_STATUS_LINES = {code: f"{code} {name.upper()}" for code, name in HTTP_STATUS_CODES.items()}


def status_line(status: int) -> str:
    """``503`` -> ``"503 SERVICE UNAVAILABLE"``: the status line Werkzeug sends."""
    return _STATUS_LINES.get(status) or f"{status} UNKNOWN"


def json_body(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


def ping_reply(runtime: ServingRuntime) -> tuple[int, str, bytes]:
    """``/ping``: 200 only when this process's model is loaded (optml's rule)."""
    if runtime.failure is not None:
        return 503, "application/json", json_body(
            {"error": "model_load_failed", "message": runtime.failure})
    if not runtime.ready.is_set():
        return 503, "application/json", json_body(
            {"error": "service_unavailable", "message": "the model is still loading"})
    return 200, _PING_OK_TYPE, b""


def exception_reply(exc: Exception, *, debug: bool, method: str, path: str) -> ErrorResponse:
    """The JSON error for any exception a route raised, logged as the server logs errors:
    5xx (but 503) at ERROR with the user's traceback, everything else at DEBUG."""
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        return ErrorResponse(status, reason(status), exc.description or exc.name or "error")
    resp = error_response(exc, debug=debug)
    if resp.status >= 500 and resp.status != 503:
        log.error("%s %s -> %d: %s", method, path, resp.status, resp.message,
                  exc_info=exc.cause if isinstance(exc, UserCodeFailed) else exc)
    else:
        log.debug("%s %s -> %d: %s", method, path, resp.status, resp.message)
    return resp


def request_path(environ: dict[str, Any]) -> str:
    """``PATH_INFO`` as text: WSGI carries it as latin-1 code points of the raw UTF-8 bytes."""
    return environ.get("PATH_INFO", "").encode("latin-1", "replace").decode("utf-8", "replace")


class HotPath:
    """WSGI callable: the hot routes here, everything else to ``fallback`` (the Flask app)."""

    def __init__(self, runtime: ServingRuntime, fallback: WsgiApp) -> None:
        self.runtime = runtime
        self.fallback = fallback
        self.invoke = Invoker(runtime)
        self._multi_model = runtime.models is not None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        method = environ.get("REQUEST_METHOD")
        if path == "/ping":
            if method == "GET" or method == "HEAD":
                status, content_type, body = ping_reply(self.runtime)
                start_response(status_line(status), [("Content-Type", content_type),
                                                     ("Content-Length", str(len(body)))])
                return [] if method == "HEAD" else [body]
        elif path == "/invocations":
            if method == "POST":
                return self._invocations(environ, start_response)
        elif (self._multi_model and method == "POST" and path
              and path.startswith(_MODEL_PREFIX) and path.endswith(_INVOKE_SUFFIX)
              and "//" not in path and _PLAIN_MODEL_PATH.fullmatch(path)):
            name = path[len(_MODEL_PREFIX):-len(_INVOKE_SUFFIX)]
            models = self.runtime.models
            assert models is not None
            return self._reply(environ, start_response, lambda: models.get(name), name)
        return self.fallback(environ, start_response)

    def _invocations(self, environ: dict[str, Any], start_response: Callable[..., Any]
                     ) -> Iterable[bytes]:
        models = self.runtime.models
        if models is None:
            return self._reply(environ, start_response, self.runtime.current_model, None)
        name = environ.get("HTTP_" + TARGET_MODEL.upper().replace("-", "_"))
        if not name:
            return self._error(environ, start_response, BadRequest(
                f"multi-model endpoint: the {TARGET_MODEL} header is required"))
        return self._reply(environ, start_response, lambda: models.get(name), name)

    def _reply(self, environ: dict[str, Any], start_response: Callable[..., Any],
               get_model: Callable[[], Any], name: str | None) -> Iterable[bytes]:
        try:
            body, headers = self.invoke(environ, get_model, name)
        except Exception as exc:  # noqa: BLE001 - every failure is a JSON error response
            return self._error(environ, start_response, exc)
        start_response("200 OK", headers)
        return [body]

    def _error(self, environ: dict[str, Any], start_response: Callable[..., Any],
               exc: Exception) -> Iterable[bytes]:
        resp = exception_reply(exc, debug=self.runtime.debug_errors,
                               method=environ.get("REQUEST_METHOD", ""),
                               path=request_path(environ))
        if resp.status == 413:
            environ[CLOSE_CONNECTION] = True
        body = json_body(resp.body())
        headers: Headers = [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))]
        start_response(status_line(resp.status), headers)
        return [body]
