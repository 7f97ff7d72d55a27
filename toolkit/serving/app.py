"""The Flask application: /ping, /invocations, /execution-parameters and the /models API.

Routes stay thin: checks that need no body run first (413 from Content-Length, 415, 406), so a
request that cannot succeed costs neither a body read nor a prediction. Every error, including
Flask's own 404/405, leaves as the JSON body of :mod:`toolkit.serving.errors`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from toolkit.serving import body as body_io
from toolkit.serving import pipeline
from toolkit.serving.context import TARGET_MODEL, RequestContext
from toolkit.serving.errors import (
    BadRequest,
    ErrorResponse,
    NotFound,
    UnsupportedMediaType,
    UserCodeFailed,
    error_response,
    reason,
)
from toolkit.serving.multimodel import check_model_name
from toolkit.serving.negotiation import negotiate, parse_content_type
from toolkit.serving.runtime import ServingRuntime

log = logging.getLogger("optml.serving")

CLOSE_CONNECTION = "optml.close_connection"
"""WSGI environ key: the response must close the connection (the body was not read)."""
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

    @app.errorhandler(HTTPException)
    def http_exception(exc: HTTPException) -> Response:
        status = exc.code or 500
        return _error(ErrorResponse(status, reason(status),
                                    exc.description or exc.name or "error"))

    @app.errorhandler(Exception)
    def any_exception(exc: Exception) -> Response:
        resp = error_response(exc, debug=runtime.debug_errors)
        if resp.status >= 500 and resp.status != 503:
            log.error("%s %s -> %d: %s", request.method, request.path, resp.status,
                      resp.message, exc_info=_cause(exc))
        else:
            log.debug("%s %s -> %d: %s", request.method, request.path, resp.status,
                      resp.message)
        if resp.status == 413:
            request.environ[CLOSE_CONNECTION] = True
        return _error(resp)

    @app.get("/ping")
    def ping() -> Response:
        if runtime.failure is not None:
            return json_response({"error": "model_load_failed", "message": runtime.failure}, 503)
        if not runtime.ready.is_set():
            return json_response({"error": "service_unavailable",
                                  "message": "the model is still loading"}, 503)
        return Response(b"", status=200, mimetype="text/plain")

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
            return _invoke(runtime, lambda: models.get(name), name)
        return _invoke(runtime, runtime.current_model, None)

    if runtime.models is not None:
        _add_model_routes(app, runtime)
    return app


def _cause(exc: BaseException) -> BaseException:
    return exc.cause if isinstance(exc, UserCodeFailed) else exc


def _checked_parameters(data: Any) -> dict[str, Any]:
    allowed = {"MaxConcurrentTransforms", "BatchStrategy", "MaxPayloadInMB"}
    if not isinstance(data, dict) or not set(data) <= allowed:
        raise UserCodeFailed("execution_parameters_fn", TypeError(
            f"must return a dict with keys among {sorted(allowed)}, returned {data!r}"))
    return data


def _invoke(runtime: ServingRuntime, get_model: Callable[[], Any],
            model_name: str | None) -> Response:
    limit = body_io.payload_limit(runtime.max_payload_mb)
    body_io.check_declared_length(request.environ, limit)
    content_type = request.headers.get("Content-Type")
    handlers = runtime.handlers
    if handlers.input_fn is not None and handlers.input_fn.origin == "toolkit":
        media = parse_content_type(content_type)
        if media.mime not in runtime.codecs.decodable:
            raise UnsupportedMediaType(
                f"Content-Type {media.mime!r} is not supported; "
                f"supported: {', '.join(runtime.codecs.decodable)}")
    offered = None if handlers.custom_output else runtime.codecs.encodable
    accept = negotiate(request.headers.get("Accept"), offered, default=runtime.default_accept)
    model = get_model()
    payload = body_io.read_body(request.environ, limit)
    context = RequestContext(headers=request.headers, content_type=content_type, accept=accept,
                             model_name=model_name)
    data, response_type = pipeline.run(handlers, model, payload, content_type, accept, context,
                                       runtime.batcher(model))
    response = Response(data, status=200)
    response.headers["Content-Type"] = response_type
    for name, value in context.response_headers.items():
        response.headers[name] = value
    return response


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


def _add_model_routes(app: Flask, runtime: ServingRuntime) -> None:
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
        return _invoke(runtime, lambda: models.get(name), name)


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
