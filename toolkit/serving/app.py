"""The Flask application: /ping, /invocations, /execution-parameters and the /models API.

Flask is the app object and owns every route, but the hot routes (``/ping``, ``/invocations``,
``/models/<name>/invoke``) are answered by :class:`~toolkit.serving.hotpath.HotPath`, a thin WSGI
layer installed as ``app.wsgi_app`` that skips Flask's per-request machinery; the Flask versions
of those routes remain for paths the hot layer leaves to Flask, and give identical answers (same
:class:`~toolkit.serving.invoke.Invoker`, same reply helpers). Every error, including Flask's own
404/405, leaves as the JSON body of :mod:`toolkit.serving.errors`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from toolkit.serving import body as body_io
from toolkit.serving.context import TARGET_MODEL
from toolkit.serving.errors import BadRequest, ErrorResponse, NotFound, UserCodeFailed
from toolkit.serving.hotpath import CLOSE_CONNECTION, HotPath, exception_reply, ping_reply
from toolkit.serving.invoke import Invoker
from toolkit.serving.multimodel import check_model_name
from toolkit.serving.runtime import ServingRuntime

log = logging.getLogger("optml.serving")

__all__ = ["CLOSE_CONNECTION", "close_connection_when_asked", "create_app", "json_response"]

MAX_PAGE = 1000


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), status=status,
                    mimetype="application/json")


def _error(resp: ErrorResponse) -> Response:
    return json_response(resp.body(), resp.status)


def create_app(runtime: ServingRuntime) -> Flask:
    """Build the WSGI app around ``runtime``; no work happens until a request arrives."""
    app = Flask("optml.serving")
    app.json.sort_keys = False  # type: ignore[attr-defined]

    invoke = Invoker(runtime)

    @app.errorhandler(HTTPException)
    def http_exception(exc: HTTPException) -> Response:
        return _error(exception_reply(exc, debug=runtime.debug_errors, method=request.method,
                                      path=request.path))

    @app.errorhandler(Exception)
    def any_exception(exc: Exception) -> Response:
        resp = exception_reply(exc, debug=runtime.debug_errors, method=request.method,
                               path=request.path)
        if resp.status == 413:
            request.environ[CLOSE_CONNECTION] = True
        return _error(resp)

    @app.get("/ping")
    def ping() -> Response:
        status, content_type, body = ping_reply(runtime)
        return Response(body, status=status, content_type=content_type)

    @app.get("/execution-parameters")
    def execution_parameters() -> Response:
        data = runtime.execution.as_json()
        hook = runtime.handlers.execution_parameters_fn
        if hook is not None:
            data.update(_checked_parameters(hook(context=None)))
        return json_response(data)

    @app.post("/invocations")
    def invocations() -> Response:
        if runtime.models is not None:
            name = request.headers.get(TARGET_MODEL)
            if not name:
                raise BadRequest(f"multi-model endpoint: the {TARGET_MODEL} header is required")
            models = runtime.models
            return _invoke(invoke, lambda: models.get(name), name)
        return _invoke(invoke, runtime.current_model, None)

    if runtime.models is not None:
        _add_model_routes(app, runtime, invoke)
    app.wsgi_app = HotPath(runtime, app.wsgi_app)  # type: ignore[method-assign]
    return app


def _checked_parameters(data: Any) -> dict[str, Any]:
    allowed = {"MaxConcurrentTransforms", "BatchStrategy", "MaxPayloadInMB"}
    if not isinstance(data, dict) or not set(data) <= allowed:
        raise UserCodeFailed("execution_parameters_fn", TypeError(
            f"must return a dict with keys among {sorted(allowed)}, returned {data!r}"))
    return data


def _invoke(invoke: Invoker, get_model: Callable[[], Any], model_name: str | None) -> Response:
    data, headers = invoke(request.environ, get_model, model_name)
    return Response(data, status=200, headers=headers)


def _page(items: list[dict[str, str]], args: Any) -> dict[str, Any]:
    token = args.get("next_page_token") or args.get("nextPageToken") or "0"
    raw_limit = args.get("limit") or str(MAX_PAGE)
    if not token.isdigit():
        raise BadRequest(f"next_page_token {token!r} is invalid")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise BadRequest(f"limit must be an integer 1-{MAX_PAGE}, got {raw_limit!r}")
    start, limit = int(token), int(raw_limit)
    page: dict[str, Any] = {"models": items[start:start + limit]}
    if start + limit < len(items):
        page["nextPageToken"] = str(start + limit)
    return page


def _describe(entries: Iterable[Any]) -> list[dict[str, str]]:
    return [{"modelName": e.model_name, "modelUrl": e.url} for e in entries]


def _add_model_routes(app: Flask, runtime: ServingRuntime, invoke: Invoker) -> None:
    models = runtime.models
    assert models is not None

    @app.post("/models")
    def load_model() -> Response:
        limit = body_io.payload_limit(runtime.max_payload_mb)
        raw = body_io.read_body(request.environ, limit)
        try:
            spec = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequest("the body must be a JSON object with model_name and url") from None
        if not isinstance(spec, dict):
            raise BadRequest("the body must be a JSON object with model_name and url")
        name = spec.get("model_name", spec.get("modelName"))
        url = spec.get("url", spec.get("modelUrl"))
        name = check_model_name(name)
        if not isinstance(url, str) or not url:
            raise BadRequest("url must be the path of the model's directory")
        models.load(name, url)
        return json_response({"status": f"model {name} loaded"})

    @app.get("/models")
    def list_models() -> Response:
        models.sync()
        return json_response(_page(_describe(models.registry.entries().values()), request.args))

    @app.get("/models/<path:name>")
    def describe_model(name: str) -> Response:
        models.sync()
        entry = models.registry.get(name)
        if entry is None:
            raise NotFound(f"model {name!r} is not loaded")
        return json_response(_describe([entry])[0])

    @app.delete("/models/<path:name>")
    def unload_model(name: str) -> Response:
        models.unload(name)
        return json_response({"status": f"model {name} unloaded"})

    @app.post("/models/<path:name>/invoke")
    def invoke_model(name: str) -> Response:
        return _invoke(invoke, lambda: models.get(name), name)


def close_connection_when_asked(app: Callable[..., Iterable[bytes]]) -> Callable[..., Any]:
    """WSGI middleware: when the app set :data:`CLOSE_CONNECTION` (413 before the body was
    read), tell gunicorn to close instead of draining a body we refused; a no-op elsewhere."""

    def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if environ.get(CLOSE_CONNECTION):
                owner = getattr(start_response, "__self__", None)
                force_close = getattr(owner, "force_close", None)
                if callable(force_close):
                    force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapper
