"""sagemaker-runtime's REST protocol: ``POST /endpoints/{EndpointName}/invocations``.

The request members travel as the header fields botocore's model names (``Content-Type``,
``X-Amzn-SageMaker-Custom-Attributes``, ``...-Target-Model``, ``...-Target-Variant``,
``...-Inference-Id``, ...) and the body is the payload; the answer is the container's bytes with
``Content-Type``, ``x-Amzn-Invoked-Production-Variant`` and the echoed custom attributes. Header
names come from the model, not from a list kept here, so a member the model adds is carried as
soon as the local client knows it. Errors carry ``x-amzn-ErrorType`` and a JSON body; a
``ModelError`` keeps ``OriginalStatusCode``, ``OriginalMessage`` and ``LogStreamArn`` beside the
message, where boto3 reads them.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import unquote

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response

from local_mode.runtime import RuntimeClient
from local_mode.wire.faults import Fault, fault_of, unknown_operation

_ROUTE = re.compile(r"^/endpoints/(?P<name>[^/]+)/(?P<action>[^/]+)$")
_ACTIONS = {"invocations": "InvokeEndpoint", "async-invocations": "InvokeEndpointAsync",
            "invocations-response-stream": "InvokeEndpointWithResponseStream"}


def runtime_operation(method: str, path: str) -> tuple[str, str] | None:
    """``(operation, endpoint name)`` of a runtime request line, or None if it is not one
    (``path`` as received, percent-encoded)."""
    match = _ROUTE.match(path)
    if method != "POST" or match is None or match["action"] not in _ACTIONS:
        return None
    return _ACTIONS[match["action"]], unquote(match["name"])


class RuntimeService:
    """InvokeEndpoint over HTTP, answered by a local :class:`RuntimeClient`."""

    def __init__(self, client: RuntimeClient) -> None:
        self.client = client
        self.model = client.meta.service_model
        self.signing_name = self.model.signing_name
        operation = self.model.operation_model("InvokeEndpoint")
        self._in_headers = _header_members(operation.input_shape)
        self._out_headers = _header_members(operation.output_shape)

    def handle(self, operation: str, endpoint: str, headers: Headers, body: bytes) -> Response:
        if operation != "InvokeEndpoint":
            return self.error(unknown_operation("sagemaker-runtime", operation,
                                                ["InvokeEndpoint"]))
        request: dict[str, Any] = {"EndpointName": endpoint, "Body": body}
        for member, name in self._in_headers.items():
            value = headers.get(name)
            if value is not None:
                request[member] = value
        try:
            result = self.client.invoke_endpoint(**request)
        except Exception as exc:  # noqa: BLE001 - every failure is answered as the service's
            return self.error(fault_of(exc, self.model))
        answer = Response(result["Body"].read(), status=200)
        answer.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        for member, name in self._out_headers.items():
            if result.get(member) is not None:
                answer.headers[name] = str(result[member])
        return answer

    def error(self, fault: Fault) -> Response:
        """``fault`` as the REST-JSON protocol writes an error."""
        return Response(json.dumps({"message": fault.message, **fault.members}),
                        status=fault.status,
                        headers={"Content-Type": "application/json",
                                 "x-amzn-ErrorType": fault.code,
                                 "x-amzn-RequestId": str(uuid.uuid4())})


def _header_members(shape: Any) -> dict[str, str]:
    """``{member: header name}`` of the members a shape sends as header fields."""
    return {name: member.serialization["name"] for name, member in shape.members.items()
            if member.serialization.get("location") == "header"}
