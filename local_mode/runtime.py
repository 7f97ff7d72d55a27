"""A client shaped like boto3's ``sagemaker-runtime``: ``invoke_endpoint`` against local endpoints.

It finds the endpoint's router port in the state directory and speaks HTTP/1.1 to it over a
keep-alive connection per thread. Errors come back as the service's: ``ValidationError`` (no such
endpoint, bad variant, payload over 6 MiB), ``ModelError`` with ``OriginalStatusCode`` /
``OriginalMessage`` / ``LogStreamArn`` at the top of ``err.response`` (the container answered
an error), ``ServiceUnavailable`` (no healthy instance), ``InternalFailure``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from botocore.response import StreamingBody

from local_mode.client_base import StateDirClient
from local_mode.endpoints.invocation import (
    CONTENT_TYPE,
    CUSTOM_ATTRIBUTES,
    ERROR_TYPE,
    INVOCATION_TIMEOUT,
    INVOKED_VARIANT,
    REQUEST_MEMBERS,
)
from local_mode.errors import (
    InternalFailure,
    LocalModeError,
    ModelError,
    ModelNotReadyException,
    ResourceNotFound,
    ServiceUnavailable,
    ValidationError,
    error_class,
)
from local_mode.keepalive import KeepAliveClient, NoResponse, Reply
from local_mode.validation import service_model
from toolkit.settings import Settings

SERVICE = "sagemaker-runtime"
INVOKE_TIMEOUT = INVOCATION_TIMEOUT + 10.0  # past the router's own, so the router reports it


__all__ = ["InternalFailure", "ModelError", "ModelNotReadyException", "RuntimeClient",
           "ServiceUnavailable", "ValidationError"]


class RuntimeClient(StateDirClient):
    """The local ``sagemaker-runtime`` client. ``settings`` and ``state_dir`` are local mode's
    own arguments; the others are boto3's client arguments
    (:class:`local_mode.client_base.LocalClient`)."""

    SERVICE = SERVICE

    def __init__(self, settings: Settings | None = None, *,
                 state_dir: str | Path | None = None, **client_args: Any) -> None:
        super().__init__(settings, state_dir=state_dir, **client_args)
        self._http = KeepAliveClient(INVOKE_TIMEOUT)

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        port = self._router_port(request["EndpointName"])
        body = request["Body"]
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode("utf-8")
        fields = [(header.wire, str(request[member]).encode("latin-1"))
                  for member, header in REQUEST_MEMBERS if member in request]
        try:
            reply = self._http.request(port, "POST", "/invocations", fields, body=bytes(body))
        except NoResponse as exc:
            raise InternalFailure(f"the local endpoint router on port {port} is not answering "
                                  f"({exc})") from None
        if reply.status != 200:
            raise _error(reply)
        data, headers = reply.body, reply.headers
        result: dict[str, Any] = {
            "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": headers},
            "Body": StreamingBody(io.BytesIO(data), len(data)),
            "ContentType": headers.get(CONTENT_TYPE.name, "application/octet-stream"),
            "InvokedProductionVariant": headers.get(INVOKED_VARIANT.name, "")}
        if CUSTOM_ATTRIBUTES.name in headers:
            result["CustomAttributes"] = headers[CUSTOM_ATTRIBUTES.name]
        return result

    def _router_port(self, name: str) -> int:
        try:
            description = self.store.get("endpoints", name).describe()
        except (ResourceNotFound, OSError, ValueError):  # or half deleted, or half written
            raise ValidationError(f"Endpoint {name} of account {self.account_id} not "
                                  "found.") from None
        status = description.get("EndpointStatus")
        if status not in ("InService", "Updating") or not description.get("RouterPort"):
            raise ValidationError(f"Endpoint {name} of account {self.account_id} is not in "
                                  f"service (status {status}).")
        return int(description["RouterPort"])

    def close(self) -> None:
        """Close this thread's connection(s) to the routers."""
        self._http.close()


def _error(reply: Reply) -> LocalModeError:
    try:
        payload = json.loads(reply.body)
    except ValueError:
        payload = {"Message": reply.body.decode("utf-8", "replace")}
    code = reply.headers.get(ERROR_TYPE.name, "InternalFailure")
    if code not in {shape.name for shape in service_model(SERVICE).error_shapes}:
        code = "InternalFailure"
    error = error_class(code)(payload.get("Message", ""), "InvokeEndpoint")
    error.response["ResponseMetadata"]["HTTPStatusCode"] = reply.status
    for key in ("OriginalStatusCode", "OriginalMessage", "LogStreamArn"):
        if key in payload:
            error.response[key] = payload[key]
    return error
