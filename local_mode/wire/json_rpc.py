"""The JSON protocol (``X-Amz-Target: <prefix>.<Operation>``) in front of a local client.

SageMaker and CloudWatch Logs speak it: a POST to ``/`` whose target header names the operation
and whose JSON body is the request. The body is decoded by the operation's input shape
(:mod:`local_mode.wire.codec`), the local client runs it exactly as an in-process call (botocore's
validation, then the service's), and the answer is encoded by the output shape. Errors are the
service's: HTTP 400 with ``__type`` for the caller's mistakes, 500 for local mode's own.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from botocore.exceptions import ParamValidationError
from werkzeug.wrappers import Response

from local_mode.client_base import LocalClient
from local_mode.wire.codec import SerializationError, decode, encode
from local_mode.wire.faults import Fault, fault_of, unknown_operation

CONTENT_TYPE = "application/x-amz-json-1.1"


class JsonService:
    """One JSON-protocol service answered by ``client``."""

    def __init__(self, client: LocalClient) -> None:
        self.client = client
        self.model = client.meta.service_model
        self.prefix = self.model.metadata["targetPrefix"] + "."
        self.signing_name = self.model.signing_name

    def operation_of(self, target: str) -> str | None:
        """The operation an ``X-Amz-Target`` value names, if it is addressed to this service."""
        return target[len(self.prefix):] if target.startswith(self.prefix) else None

    def handle(self, operation: str, body: bytes) -> Response:
        method = self.client.method_of(operation)
        if method is None:
            return self.error(unknown_operation(self.model.service_name, operation,
                                                list(self.client.OPERATIONS.values())))
        shapes = self.model.operation_model(operation)
        try:
            request = _request(body, shapes.input_shape)
            unknown = sorted(set(request) - set(shapes.input_shape.members
                                                if shapes.input_shape else ()))
            if unknown:  # as botocore would refuse them, and never bound to the method's own
                raise ParamValidationError(report=f"Unknown parameter(s) in input: "
                                                  f"{', '.join(unknown)}")
            result = getattr(self.client, method)(**request)
        except Exception as exc:  # noqa: BLE001 - every failure is answered as the service's
            return self.error(fault_of(exc, self.model))
        result.pop("ResponseMetadata", None)
        payload = encode(result, shapes.output_shape) if shapes.output_shape else {}
        return _response(200, payload)

    def error(self, fault: Fault) -> Response:
        """``fault`` as this protocol writes an error."""
        return _response(fault.status, {"__type": fault.code, "message": fault.message,
                                         **fault.members})


def read_json_object(body: bytes) -> dict[str, Any]:
    """A JSON request body as an object (an empty body is an empty request, as botocore sends
    for an operation without input); SerializationError otherwise."""
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # nesting deeper than Python's
        raise SerializationError("the request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise SerializationError("the request body must be a JSON object")
    return parsed


def _request(body: bytes, shape: Any) -> dict[str, Any]:
    """The request members of a JSON body, decoded by the operation's input shape."""
    parsed = read_json_object(body)
    if not parsed:
        return {}
    decoded = decode(parsed, shape)
    assert isinstance(decoded, dict)
    return decoded


def _response(status: int, payload: dict[str, Any]) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), status=status,
                    headers={"Content-Type": CONTENT_TYPE,
                             "x-amzn-RequestId": str(uuid.uuid4())})
