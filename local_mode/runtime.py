"""A client shaped like boto3's ``sagemaker-runtime``: ``invoke_endpoint`` against local endpoints.

It finds the endpoint's router port in the state directory and speaks HTTP/1.1 to it over a
keep-alive connection per thread. Errors come back as the service's: ``ValidationError`` (no such
endpoint, bad variant, payload over 6 MiB), ``ModelError`` with ``OriginalStatusCode`` /
``OriginalMessage`` / ``LogStreamArn`` at the top of ``err.response`` (the container answered
an error), ``ServiceUnavailable`` (no healthy instance), ``InternalFailure``.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
from pathlib import Path
from typing import Any

from botocore.response import StreamingBody

from local_mode.client_base import LocalClient
from local_mode.errors import (
    InternalFailure,
    LocalModeError,
    ModelError,
    ModelNotReadyException,
    ServiceUnavailable,
    ValidationError,
    error_class,
)
from local_mode.state import StateStore
from local_mode.validation import service_model
from toolkit.settings import Settings

SERVICE = "sagemaker-runtime"
INVOKE_TIMEOUT = 70.0  # above the router's own 60 s, so the router reports the timeout
HEADERS = (("ContentType", "Content-Type"), ("Accept", "Accept"),
           ("CustomAttributes", "X-Amzn-SageMaker-Custom-Attributes"),
           ("TargetModel", "X-Amzn-SageMaker-Target-Model"),
           ("TargetVariant", "X-Amzn-SageMaker-Target-Variant"),
           ("InferenceId", "X-Amzn-SageMaker-Inference-Id"))


__all__ = ["InternalFailure", "ModelError", "ModelNotReadyException", "RuntimeClient",
           "ServiceUnavailable", "ValidationError"]


class RuntimeClient(LocalClient):
    """The local ``sagemaker-runtime`` client. ``settings`` and ``state_dir`` are local mode's
    own arguments; the others are boto3's client arguments
    (:class:`local_mode.client_base.LocalClient`)."""

    SERVICE = SERVICE

    def __init__(self, settings: Settings | None = None, *,
                 state_dir: str | Path | None = None, **client_args: Any) -> None:
        super().__init__(**client_args)
        self.settings = settings or Settings.from_environ()
        self.store = StateStore(Path(state_dir) if state_dir else self.settings.local.state_dir)
        self._local = threading.local()

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        port = self._router_port(request["EndpointName"])
        body = request["Body"]
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = {header: str(request[field]) for field, header in HEADERS if field in request}
        status, response_headers, data = self._post(port, bytes(body), headers)
        if status != 200:
            raise _error(status, response_headers, data)
        result: dict[str, Any] = {
            "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": response_headers},
            "Body": StreamingBody(io.BytesIO(data), len(data)),
            "ContentType": response_headers.get("content-type", "application/octet-stream"),
            "InvokedProductionVariant": response_headers.get(
                "x-amzn-invoked-production-variant", "")}
        if "x-amzn-sagemaker-custom-attributes" in response_headers:
            result["CustomAttributes"] = response_headers["x-amzn-sagemaker-custom-attributes"]
        return result

    def _router_port(self, name: str) -> int:
        try:
            description = self.store.get("endpoints", name).describe()
        except Exception:  # noqa: BLE001 - ResourceNotFound, a half-deleted directory
            raise ValidationError(f"Endpoint {name} of account {self.account_id} not "
                                  "found.") from None
        status = description.get("EndpointStatus")
        if status not in ("InService", "Updating") or not description.get("RouterPort"):
            raise ValidationError(f"Endpoint {name} of account {self.account_id} is not in "
                                  f"service (status {status}).")
        return int(description["RouterPort"])

    def _post(self, port: int, body: bytes,
              headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        connections: dict[int, http.client.HTTPConnection] = \
            self._local.__dict__.setdefault("connections", {})
        for attempt in (1, 2):
            connection = connections.get(port)
            fresh = connection is None
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=INVOKE_TIMEOUT)
                connections[port] = connection
            try:
                connection.request("POST", "/invocations", body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    ConnectionRefusedError) as exc:
                connection.close()
                connections.pop(port, None)
                if fresh or attempt == 2:
                    raise InternalFailure(f"the local endpoint router on port {port} is not "
                                          f"answering ({exc!r})") from None
                continue
            if response.will_close:
                connection.close()
                connections.pop(port, None)
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        for connection in self._local.__dict__.get("connections", {}).values():
            connection.close()


def _error(status: int, headers: dict[str, str], data: bytes) -> LocalModeError:
    try:
        payload = json.loads(data)
    except ValueError:
        payload = {"Message": data.decode("utf-8", "replace")}
    code = headers.get("x-amzn-errortype", "InternalFailure")
    if code not in {shape.name for shape in service_model(SERVICE).error_shapes}:
        code = "InternalFailure"
    error = error_class(code)(payload.get("Message", ""), "InvokeEndpoint")
    error.response["ResponseMetadata"]["HTTPStatusCode"] = status
    for key in ("OriginalStatusCode", "OriginalMessage", "LogStreamArn"):
        if key in payload:
            error.response[key] = payload[key]  # type: ignore[literal-required]
    return error
