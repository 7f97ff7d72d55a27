"""One invocation over a WSGI environ: checks, body, handler chain, response headers.

Shared by the lean hot path (:mod:`toolkit.serving.hotpath`) and the Flask routes, so both
answer identically. It reads the environ directly instead of a Flask request object: building
Flask's request context and URL adapter cost more than a small model's prediction.

Order matters and is part of the behaviour: checks that need no body come first (413 from
Content-Length, then 400/415 for the Content-Type, then 406), so a request that cannot succeed
costs neither a body read nor a prediction; only then is the model looked up (503/404), the body
read (413 for a chunked body over the limit) and the handlers run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.datastructures import EnvironHeaders

from toolkit.serving import body as body_io
from toolkit.serving.context import RequestContext
from toolkit.serving.runtime import ServingRuntime

Headers = list[tuple[str, str]]


def set_header(headers: Headers, name: str, value: str) -> None:
    """Replace a header case-insensitively (first occurrence kept in place, others dropped), or
    append it: what Werkzeug's ``headers[name] = value`` did for user-set response headers."""
    lowered = name.lower()
    for index, (existing, _) in enumerate(headers):
        if existing.lower() == lowered:
            headers[index] = (name, value)
            headers[index + 1:] = [h for h in headers[index + 1:] if h[0].lower() != lowered]
            return
    headers.append((name, value))


class Invoker:
    """``/invocations`` and ``/models/<name>/invoke`` for one runtime."""

    def __init__(self, runtime: ServingRuntime) -> None:
        self.runtime = runtime
        self.limit = body_io.payload_limit(runtime.max_payload_mb)

    def __call__(self, environ: dict[str, Any], get_model: Callable[[], Any],
                 model_name: str | None) -> tuple[bytes, Headers]:
        """Run one inference; returns the response body and headers (status 200). Raises the
        request's error (an HTTPError, or UserCodeFailed from a handler) otherwise."""
        runtime = self.runtime
        limit = self.limit
        length = body_io.checked_length(environ, limit)
        content_type = environ.get("CONTENT_TYPE")
        accept = runtime.negotiator.resolve(content_type, environ.get("HTTP_ACCEPT"))
        model = get_model()
        payload = body_io.read_checked_body(environ, length, limit)
        context = RequestContext(headers=EnvironHeaders(environ), content_type=content_type,
                                 accept=accept, model_name=model_name)
        data, response_type = runtime.pipeline.run(model, payload, content_type, accept,
                                                   context, runtime.batcher(model))
        headers = [("Content-Type", response_type), ("Content-Length", str(len(data)))]
        for name, value in context.response_headers.items():
            set_header(headers, name, value)
        return data, headers
