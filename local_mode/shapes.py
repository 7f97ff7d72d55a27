"""Responses checked against the service's OUTPUT shapes in botocore's API model.

Requests are validated on the way in (:mod:`local_mode.validation`); this is the other side: what
a local client returns must be what boto3 would hand back for the same operation, member for
member. :func:`response_errors` names every difference (a member the shape lacks, a required one
missing, a wrong type, a value off an enum or pattern), so a test can walk every operation;
:func:`public_view` keeps the top-level members a description may show (the stored description
also holds local bookkeeping such as the backend or the router port).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.model import Shape
from botocore.response import StreamingBody

from local_mode.validation import check_string, operation_model

RESPONSE_METADATA = "ResponseMetadata"
"""botocore adds it to every response, outside the operation's shape."""


def public_view(operation: str, description: Mapping[str, Any],
                service: str = "sagemaker") -> dict[str, Any]:
    """The members of ``description`` that ``operation``'s output shape has (None dropped:
    botocore never returns a null member)."""
    members = operation_model(operation, service).output_shape.members
    return {k: v for k, v in description.items() if k in members and v is not None}


def response_errors(operation: str, response: Mapping[str, Any],
                    service: str = "sagemaker") -> list[str]:
    """Every way ``response`` differs from what boto3 returns for ``operation`` (empty: none)."""
    model = operation_model(operation, service)
    shape = model.output_shape
    body = {k: v for k, v in response.items() if k != RESPONSE_METADATA}
    errors: list[str] = []
    if shape is None:
        if body:
            errors.append(f"{operation} has no output members, got {sorted(body)}")
        return errors
    if model.has_streaming_output:  # boto3 hands the payload over as a StreamingBody
        payload = shape.serialization["payload"]
        if not isinstance(body.get(payload), StreamingBody):
            errors.append(f"{payload}: {type(body.get(payload)).__name__}, StreamingBody "
                          "expected (the streamed payload)")
        body = {k: v for k, v in body.items() if k != payload} | {payload: b""}
    _walk(body, shape, "", errors)
    return errors


def _walk(value: Any, shape: Shape, path: str, errors: list[str]) -> None:
    where = path or "<response>"
    kind = shape.type_name
    if value is None:
        errors.append(f"{where}: None ({kind} expected; botocore omits a missing member)")
    elif kind == "structure":
        if not isinstance(value, Mapping):
            errors.append(f"{where}: {type(value).__name__}, structure {shape.name} expected")
            return
        for name in shape.required_members:
            if name not in value:
                errors.append(f"{_join(path, name)}: required member of {shape.name} missing")
        for name, member in value.items():
            if name not in shape.members:
                errors.append(f"{_join(path, name)}: not a member of {shape.name}")
            else:
                _walk(member, shape.members[name], _join(path, name), errors)
    elif kind == "list":
        if not isinstance(value, list):
            errors.append(f"{where}: {type(value).__name__}, list expected")
            return
        for index, item in enumerate(value):
            _walk(item, shape.member, f"{path}[{index}]", errors)
    elif kind == "map":
        if not isinstance(value, Mapping):
            errors.append(f"{where}: {type(value).__name__}, map expected")
            return
        for key, item in value.items():
            _walk(key, shape.key, f"{path}.<key {key!r}>", errors)
            _walk(item, shape.value, f"{path}.{key}", errors)
    else:
        _check_scalar(value, shape, where, errors)


def _check_scalar(value: Any, shape: Shape, where: str, errors: list[str]) -> None:
    kind = shape.type_name
    ok: bool
    if kind == "string":
        ok = isinstance(value, str)
        if ok:
            check_string(value, shape, where, errors)
    elif kind in ("integer", "long"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind in ("float", "double"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "timestamp":
        # boto3 parses timestamps into timezone-aware datetimes
        ok = isinstance(value, datetime) and value.tzinfo is not None
    elif kind == "blob":
        ok = isinstance(value, (bytes, bytearray))
    else:
        ok = True
    if not ok:
        errors.append(f"{where}: {type(value).__name__} {value!r:.80}, {kind} expected")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
