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

from local_mode.errors import LocalModeError, ModelError, ServiceUnavailable
from local_mode.state import StateStore
from local_mode.validation import validate_request
from toolkit.settings import Settings

SERVICE = "sagemaker-runtime"
ACCOUNT = "000000000000"
INVOKE_TIMEOUT = 70.0  # above the router's own 60 s, so the router reports the timeout
HEADERS = (("ContentType", "Content-Type"), ("Accept", "Accept"),
           ("CustomAttributes", "X-Amzn-SageMaker-Custom-Attributes"),
           ("TargetModel", "X-Amzn-SageMaker-Target-Model"),
           ("TargetVariant", "X-Amzn-SageMaker-Target-Variant"),
           ("InferenceId", "X-Amzn-SageMaker-Inference-Id"))


class ValidationError(LocalModeError):
    code = "ValidationError"
    http_status = 400


class InternalFailure(LocalModeError):
    code = "InternalFailure"
    http_status = 500


class ModelNotReadyException(LocalModeError):
    code = "ModelNotReadyException"
    http_status = 429


RUNTIME_ERRORS: dict[str, type[LocalModeError]] = {
    "ValidationError": ValidationError, "ModelError": ModelError,
    "ServiceUnavailable": ServiceUnavailable, "InternalFailure": InternalFailure,
    "ModelNotReadyException": ModelNotReadyException}


class _Exceptions:
    def __init__(self) -> None:
        from botocore.exceptions import ClientError

        self.ClientError = ClientError
        for name, error in RUNTIME_ERRORS.items():
            setattr(self, name, error)


class RuntimeClient:
    """The local ``sagemaker-runtime`` client."""

    def __init__(self, settings: Settings | None = None, *,
                 state_dir: str | Path | None = None) -> None:
        self.settings = settings or Settings.from_environ()
        self.store = StateStore(Path(state_dir) if state_dir else self.settings.local.state_dir)
        self.exceptions = _Exceptions()
        self._local = threading.local()

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        validate_request("InvokeEndpoint", request, service=SERVICE)
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
        missing = ValidationError(f"Endpoint {name} of account {ACCOUNT} not found.",
                                  "InvokeEndpoint")
        try:
            description = self.store.get("endpoints", name).describe()
        except Exception:  # noqa: BLE001 - ResourceNotFound, a half-deleted directory
            raise missing from None
        status = description.get("EndpointStatus")
        if status not in ("InService", "Updating") or not description.get("RouterPort"):
            raise ValidationError(f"Endpoint {name} of account {ACCOUNT} is not in service "
                                  f"(status {status}).", "InvokeEndpoint")
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
                                          f"answering ({exc!r})", "InvokeEndpoint") from None
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
    error = RUNTIME_ERRORS.get(code, InternalFailure)(payload.get("Message", ""),
                                                        "InvokeEndpoint")
    error.response["ResponseMetadata"]["HTTPStatusCode"] = status
    for key in ("OriginalStatusCode", "OriginalMessage", "LogStreamArn"):
        if key in payload:
            error.response[key] = payload[key]  # type: ignore[literal-required]
    return error
