"""One inference: body -> input_fn -> predict_fn -> output_fn -> (bytes, content type).

Kept apart from the HTTP layer so the exact handler contract is testable without
a server, and shared by ``/invocations`` and ``/models/<name>/invoke``. The server builds one
:class:`Pipeline` at start-up, whose handler calls are specialised once (see
:meth:`~toolkit.serving.handlers.Handler.bind`); :func:`run` is the same chain without that
preparation, for one-off calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from toolkit.serving.batching import MicroBatcher
from toolkit.serving.context import RequestContext
from toolkit.serving.errors import UserCodeFailed
from toolkit.serving.handlers import HandlerSet


def normalize_result(result: Any, accept: str, handler: str) -> tuple[bytes, str]:
    """``output_fn`` may return bytes, str, or ``(body, content_type)``; anything else is the
    handler's bug, reported as such (500 naming it), never a server crash."""
    content_type = accept
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
        result, content_type = result
        if "\r" in content_type or "\n" in content_type or "\0" in content_type:
            raise UserCodeFailed(handler, ValueError(
                f"returned the content type {content_type!r}, which contains a line break or NUL"))
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result), content_type
    if isinstance(result, str):
        return result.encode("utf-8"), content_type
    raise UserCodeFailed(handler, TypeError(
        f"must return bytes, str or (bytes, content_type), returned {type(result).__name__}"))


def run(handlers: HandlerSet, model: Any, body: bytes, content_type: str | None, accept: str,
        context: RequestContext, batcher: MicroBatcher | None = None) -> tuple[bytes, str]:
    """Run the handler chain for one request; user exceptions arrive as UserCodeFailed."""
    if handlers.transform_fn is not None:
        result = handlers.transform_fn(model, body, content_type, accept, context=context)
        return normalize_result(result, accept, "transform_fn")
    assert handlers.input_fn and handlers.predict_fn and handlers.output_fn
    data = handlers.input_fn(body, content_type, context=context)
    if batcher is not None:
        prediction = batcher.predict(data)
    else:
        prediction = handlers.predict_fn(data, model, context=context)
    result = handlers.output_fn(prediction, accept, context=context)
    return normalize_result(result, accept, "output_fn")


class Pipeline:
    """The handler chain of one server, prepared once so a request pays only for the calls."""

    def __init__(self, handlers: HandlerSet) -> None:
        def bound(handler: Any) -> Callable[..., Any] | None:
            return handler.bind() if handler is not None else None

        self._transform = bound(handlers.transform_fn)
        self._input = bound(handlers.input_fn)
        self._predict = bound(handlers.predict_fn)
        self._output = bound(handlers.output_fn)
        if self._transform is None:
            assert self._input and self._predict and self._output

    def run(self, model: Any, body: bytes, content_type: str | None, accept: str,
            context: RequestContext, batcher: MicroBatcher | None = None) -> tuple[bytes, str]:
        """Exactly :func:`run`: user exceptions arrive as UserCodeFailed naming the handler."""
        if self._transform is not None:
            result = self._transform(model, body, content_type, accept, context)
            return normalize_result(result, accept, "transform_fn")
        data = self._input(body, content_type, context)  # type: ignore[misc]
        if batcher is not None:
            prediction = batcher.predict(data)
        else:
            prediction = self._predict(data, model, context)  # type: ignore[misc]
        result = self._output(prediction, accept, context)  # type: ignore[misc]
        return normalize_result(result, accept, "output_fn")
