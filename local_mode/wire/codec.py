"""Values between the JSON protocol's wire form and boto3's Python form, walked by the shape.

The JSON protocol (SageMaker, CloudWatch Logs) writes a timestamp as epoch seconds and a blob as
base64; boto3 hands its callers ``datetime`` and ``bytes``. A request's body is decoded by its
operation's input shape before it reaches a local client, and the client's answer is encoded by
the output shape before it is written, so a local client neither knows nor cares whether it was
called in process or over HTTP. Members a shape does not know are passed through untouched: the
request validation after decoding names them (as the service rejects them), and a response never
carries one (:mod:`local_mode.shapes` checks that).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from botocore.model import Shape
from botocore.utils import parse_timestamp


class SerializationError(ValueError):
    """A value that cannot be what its shape says (a timestamp that is no time, bad base64)."""


def decode(value: Any, shape: Shape | None, path: str = "") -> Any:
    """``value`` as parsed from JSON, with timestamps as aware datetimes and blobs as bytes."""
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {name: decode(item, members.get(name), _join(path, name))
                for name, item in value.items()}
    if kind == "list" and isinstance(value, list):
        return [decode(item, shape.member, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == "map" and isinstance(value, dict):
        return {key: decode(item, shape.value, f"{path}.{key}") for key, item in value.items()}
    if kind == "timestamp" and isinstance(value, (int, float, str)) and \
            not isinstance(value, bool):
        try:
            parsed = parse_timestamp(value)
        except (ValueError, TypeError, OverflowError, RuntimeError):  # dateutil's for huge numbers
            raise SerializationError(f"{path or 'value'}: {value!r} is not a timestamp") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise SerializationError(f"{path or 'value'}: not valid base64") from None
    return value


def walk(value: Any, shape: Shape | None, leaf: Callable[[Any, Shape], Any]) -> Any:
    """``value`` (a boto3-shaped response member) with every scalar member replaced by
    ``leaf(member, its shape)``, unset structure members left out: what each protocol's
    encoder shares (they differ only in how a timestamp or a blob is written)."""
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, Mapping):
        members = shape.members
        return {name: walk(item, members.get(name), leaf) for name, item in value.items()
                if item is not None}
    if kind == "list" and isinstance(value, (list, tuple)):
        return [walk(item, shape.member, leaf) for item in value]
    if kind == "map" and isinstance(value, Mapping):
        return {key: walk(item, shape.value, leaf) for key, item in value.items()}
    return leaf(value, shape)


def _json_leaf(value: Any, shape: Shape) -> Any:
    kind = shape.type_name
    if kind == "timestamp" and isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return stamp.timestamp()
    if kind == "blob" and isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def encode(value: Any, shape: Shape | None) -> Any:
    """``value`` (a boto3-shaped response member) in the JSON protocol's wire form."""
    return walk(value, shape, _json_leaf)


def error_members(error: Exception, service_model: Any) -> dict[str, Any]:
    """The members of ``error``'s modeled error shape that its response carries at the top level
    (``ModelError``'s ``OriginalStatusCode`` ...), in wire form; botocore puts them back there."""
    response = getattr(error, "response", None) or {}
    code = response.get("Error", {}).get("Code", "")
    for shape in service_model.error_shapes:
        if shape.name == code:
            return {name: encode(response[name], member)
                    for name, member in shape.members.items()
                    if name not in ("Message", "message") and name in response}
    return {}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
