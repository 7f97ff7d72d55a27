"""Validate requests against the service's own API model, which ships inside botocore.

botocore checks types and required members but not patterns, enums or upper bounds (boto3 raises
``ParamValidationError`` for those it checks); the service does, so we check those too and fail
with a ValidationException naming the field, as the service would. Local extensions that the cloud does not know are accepted on purpose: ``file://`` wherever
an ``s3://`` URI is allowed, and ``local`` / ``local_gpu`` instance types (as the SDK's local mode).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from botocore.loaders import Loader, create_loader
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import validate_parameters

from local_mode.errors import ValidationException, error_class

LOCAL_INSTANCE_TYPES = frozenset({"local", "local_gpu"})
INVALID_REQUEST = {"sagemaker": "ValidationException", "sagemaker-runtime": "ValidationError",
                   "logs": "InvalidParameterException", "sts": "ValidationError",
                   "cloudwatch": "ValidationError",
                   "application-autoscaling": "ValidationException"}
"""Each service's error code for a request that breaks its model's constraints."""


@lru_cache(maxsize=1)
def model_loader() -> Loader:
    """botocore's loader of the models it ships (API, waiters, paginators), shared: loading
    them is the slow part. A loader and not a session: a session reads the user's AWS
    configuration first, and a profile named in AWS_PROFILE that does not exist would stop
    local mode, which needs none of it."""
    return create_loader()


@lru_cache(maxsize=8)
def service_model(service: str = "sagemaker") -> ServiceModel:
    return ServiceModel(model_loader().load_service_model(service, "service-2"),
                        service_name=service)


def operation_model(operation: str, service: str = "sagemaker") -> OperationModel:
    return service_model(service).operation_model(operation)


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # a Java-only construct: skip rather than reject valid input


def check_string(value: str, shape: Shape, path: str, errors: list[str]) -> None:
    """Append to ``errors`` what the service says of ``value`` at ``path``: not one of the
    shape's enum, longer than its max, off its pattern (local extensions allowed)."""
    meta = shape.metadata
    if shape.enum and value not in shape.enum and \
            not (path.endswith("InstanceType") and value in LOCAL_INSTANCE_TYPES):
        shown = ", ".join(shape.enum[:12]) + (" ..." if len(shape.enum) > 12 else "")
        errors.append(f"Value {value!r} at '{path}' must be one of: {shown}")
        return
    if "max" in meta and len(value) > meta["max"]:
        errors.append(f"Value at '{path}' has length {len(value)}; at most {meta['max']} allowed")
    pattern = meta.get("pattern")
    if pattern and not (value.startswith("file://") and "s3" in pattern):
        # The service matches the whole value (Java ``matches``), so anchors are implied.
        compiled = _compiled(pattern)
        if compiled is not None and compiled.fullmatch(value) is None:
            errors.append(f"Value {value!r} at '{path}' must match pattern {pattern}")


def _walk(value: Any, shape: Shape, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                _walk(member, shape.members[name], f"{path}.{name}" if path else name, errors)
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"'{path}' has {len(value)} items; at most {meta['max']} allowed")
        for index, item in enumerate(value):
            _walk(item, shape.member, f"{path}[{index}]", errors)
    elif kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"'{path}' has {len(value)} entries; at most {meta['max']} allowed")
        for key, item in value.items():
            _walk(key, shape.key, f"{path}.<key {key!r}>", errors)
            _walk(item, shape.value, f"{path}.{key}", errors)
    elif kind == "string" and isinstance(value, str):
        check_string(value, shape, path, errors)
    elif kind in ("integer", "long", "float", "double") and isinstance(value, (int, float)) \
            and "max" in meta and value > meta["max"]:
        errors.append(f"Value {value} at '{path}' must be <= {meta['max']}")


def validate_request(operation: str, params: dict[str, Any], service: str = "sagemaker") -> None:
    """Check ``params`` as a boto3 call of ``operation`` is checked, on both sides.

    botocore's own check comes first and raises what boto3 raises for a bad call
    (:class:`botocore.exceptions.ParamValidationError`: an unknown or missing member, a wrong
    type, below a minimum); then the service's (patterns, enums, upper bounds) raises the
    service's own code for an invalid request (:data:`INVALID_REQUEST`) naming every bad field
    at once.
    """
    model = operation_model(operation, service)
    validate_parameters(params, model.input_shape)
    errors: list[str] = []
    _walk(params, model.input_shape, "", errors)
    if errors:
        invalid = error_class(INVALID_REQUEST.get(service, ValidationException.code))
        raise invalid(f"{len(errors)} validation error(s) detected: " + "; ".join(errors),
                      operation)
