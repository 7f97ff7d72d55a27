"""What a handler's optional trailing ``context`` argument gives it.

Users have long asked to read request headers (custom attributes above all) inside handlers and
to set response headers; a context object does both without changing the classic signatures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.datastructures import Headers

CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
INFERENCE_ID = "X-Amzn-SageMaker-Inference-Id"
TARGET_MODEL = "X-Amzn-SageMaker-Target-Model"


def _check_header(name: str, value: str) -> None:
    if not name or any(c in name for c in " \t\r\n:") or not name.isascii():
        raise ValueError(f"invalid response header name {name!r}")
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"response header {name} contains a line break or NUL")


@dataclass
class RequestContext:
    """One request: its headers and negotiated types, and the response headers to add."""

    headers: Headers | Mapping[str, str]
    """The request headers (case-insensitive when they come from a request)."""
    content_type: str | None
    accept: str
    model_name: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def custom_attributes(self) -> str | None:
        """``X-Amzn-SageMaker-Custom-Attributes`` as sent (opaque to the platform)."""
        return self.headers.get(CUSTOM_ATTRIBUTES)

    @property
    def inference_id(self) -> str | None:
        return self.headers.get(INFERENCE_ID)

    @property
    def target_model(self) -> str | None:
        return self.headers.get(TARGET_MODEL)

    def set_response_header(self, name: str, value: str) -> None:
        """Add a header to the response; raises ValueError for a header-splitting value."""
        value = str(value)
        _check_header(name, value)
        self.response_headers[name] = value

    def set_custom_attributes(self, value: str) -> None:
        """Answer with ``X-Amzn-SageMaker-Custom-Attributes`` (the platform passes it back)."""
        self.set_response_header(CUSTOM_ATTRIBUTES, value)


@dataclass(frozen=True)
class LoadContext:
    """Given to ``model_fn(model_dir, context)``: which model is being loaded."""

    model_dir: Path
    model_name: str | None = None
