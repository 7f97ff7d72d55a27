"""The ceiling: the smallest WSGI app gunicorn can serve (no framework, no model).

Any path answers 200 with a fixed JSON body, so /ping and /invocations both work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_BODY = b'{"ok": true}'
_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(_BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    stream = environ.get("wsgi.input")
    if stream is not None:
        stream.read()
    start_response("200 OK", _HEADERS)
    return [_BODY]
