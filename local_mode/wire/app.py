"""The one WSGI application behind the wire API: size limits, the signature check, routing.

Every request is classified before anything else is read, by what the protocols put on the wire:
an ``X-Amz-Target`` header is the JSON protocol (SageMaker, CloudWatch Logs, Application Auto
Scaling, and CloudWatch's awsJson1_0 form, which botocore speaks), ``POST
/service/<service>/operation/<Op>`` is Smithy RPC v2 CBOR (CloudWatch's first protocol), a form
POST is the query protocol (CloudWatch's when signed for ``monitoring``, else STS's),
``POST /endpoints/<name>/invocations`` signed for ``sagemaker`` is the runtime, and the rest is
S3 (path-style, as botocore addresses a loopback endpoint). The RPC v2 path and the runtime's
are S3 paths too (bucket ``service`` or ``endpoints``): a request signed for ``s3`` goes to S3. Then the body is read
within the limit of its kind, the SigV4 signature is verified against the server's credentials,
and only then does a local client see the request. Every refusal is written in the protocol the
caller speaks, so its SDK raises the error it would raise against the cloud.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Literal

from werkzeug.datastructures import EnvironHeaders
from werkzeug.wrappers import Response
from werkzeug.wsgi import ClosingIterator, get_input_stream

from local_mode.endpoints.invocation import MAX_REQUEST_BYTES
from local_mode.wire import s3
from local_mode.wire.cbor_rpc import RpcV2Service, rpc_v2_operation
from local_mode.wire.endpoint import HEALTH_PATH
from local_mode.wire.faults import Fault
from local_mode.wire.json_rpc import JsonService
from local_mode.wire.query_rpc import QueryService
from local_mode.wire.runtime_rest import RuntimeService, runtime_operation
from local_mode.wire.sigv4 import AuthError, SignedRequest

log = logging.getLogger(__name__)

MAX_API_BYTES = 10 * 1024 * 1024
"""Bound on a control-plane request body (SageMaker, Logs, Application Auto Scaling, CloudWatch,
STS). The services document none for these; a CreateTrainingJob at every member's maximum, or a
PutMetricData of 1000 datums with 150 values each, stays far below it."""
MAX_S3_PUT_BYTES = 5 * 1024 ** 3
"""S3's limit on a single PUT (larger objects go up in parts)."""
SPOOL_BYTES = 8 * 1024 * 1024
"""An S3 body above this is spooled to a temporary file while it is hashed, not kept in memory."""
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
FORM = "application/x-www-form-urlencoded"
_DIGITS = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True)
class Services:
    """What answers each protocol. ``s3`` is None when S3 lives elsewhere."""

    sagemaker: JsonService
    logs: JsonService
    autoscaling: JsonService
    cloudwatch: RpcV2Service
    runtime: RuntimeService
    sts: QueryService
    s3: s3.WsgiApp | None


class WireApp:
    """The WSGI application (see the module docstring). ``keys`` maps every accepted access
    key id to its secret."""

    def __init__(self, services: Services, keys: Mapping[str, str], instance: str = "") -> None:
        self.services = services
        self.keys = dict(keys)
        self.instance = instance

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            return self._call(environ, start_response)
        except Exception:  # before the request's protocol was known
            log.exception("the wire API failed to answer %s %s", environ.get("REQUEST_METHOD"),
                          environ.get("PATH_INFO"))  # never the query: it may hold a signature
            return Response(json.dumps({"__type": "InternalFailure",
                                        "message": "local mode failed to answer; see the "
                                                   "server's log"}),
                            status=500, headers={"Content-Type": "application/json",
                                                 "x-amzn-ErrorType": "InternalFailure"}
                            )(environ, start_response)

    def _call(self, environ: dict[str, Any],
              start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = EnvironHeaders(environ)
        method = environ["REQUEST_METHOD"]
        raw_target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or \
            environ.get("PATH_INFO", "/")
        path, _, query = raw_target.partition("?")
        if path == HEALTH_PATH and method == "GET":
            return _health(self.instance)(environ, start_response)
        unreadable: AuthError | None = None
        signed: SignedRequest | None = None
        try:
            signed = SignedRequest(headers, query)  # parsed once, for routing and checking
        except AuthError as exc:
            unreadable = exc
        scope = signed.scope if signed is not None else None
        route = self._route(method, path, headers, scope.service if scope else "")
        try:
            if unreadable is not None:
                raise unreadable
            assert signed is not None
            self._admit(signed, route)  # before a byte of the body is read
            if route.kind == "s3":
                return self._s3(route, environ, start_response, headers, signed, path)
            body = self._body(environ, headers, route)
            signed.verify(method, path, body, self.keys)
            answer = route.answer(headers, body)
        except AuthError as exc:
            service = route.signing_name
            return route.refuse(Fault(exc.code_for(service), exc.message_for(service),
                                      exc.status_for(service)))(environ, start_response)
        except _Refused as exc:
            return route.refuse(exc.fault)(environ, start_response)
        except Exception:
            log.exception("the wire API failed to answer %s %s", method, path)
            return route.refuse(Fault(route.internal_code, "local mode failed to answer; see "
                                      "the server's log", 500))(environ, start_response)
        return answer(environ, start_response)

    # -- classification ----------------------------------------------------------------------
    def _route(self, method: str, path: str, headers: EnvironHeaders, claimed: str) -> _Route:
        """Where the request goes; ``claimed`` is the service its signature is scoped to."""
        services = self.services
        target = headers.get("X-Amz-Target")
        if target:
            for service in (services.sagemaker, services.logs, services.autoscaling):
                operation = service.operation_of(target)
                if operation is not None:
                    return _Route("json", service.signing_name, MAX_API_BYTES, service.error,
                                  _json_answer(service, operation))
            metrics = services.cloudwatch
            operation = metrics.operation_of(target)
            if operation is not None:  # CloudWatch's awsJson1_0 form
                return _Route("json", metrics.signing_name, MAX_API_BYTES, metrics.json_error,
                              _cloudwatch_json_answer(metrics, operation))
            return _Route("json", "", MAX_API_BYTES, services.sagemaker.error,
                          lambda _h, _b: services.sagemaker.error(Fault(
                              "UnknownOperationException",
                              f"local mode does not answer X-Amz-Target {target!r}")))
        rpc = rpc_v2_operation(method, path)
        if rpc is not None and claimed != "s3":
            return self._rpc_v2_route(*rpc)
        invocation = runtime_operation(method, path)
        if invocation is not None and claimed != "s3":
            runtime = services.runtime
            operation, endpoint = invocation
            return _Route("runtime", runtime.signing_name, MAX_REQUEST_BYTES, runtime.error,
                          lambda h, b: runtime.handle(operation, endpoint, h, b),
                          too_large_code="ValidationError")
        if method == "POST" and claimed != "s3" and \
                headers.get("Content-Type", "").split(";")[0].strip() == FORM:
            metrics = services.cloudwatch
            if claimed == metrics.signing_name:  # CloudWatch's query protocol
                return _Route("query", metrics.signing_name, MAX_API_BYTES, metrics.query_error,
                              lambda _h, b: metrics.handle_query(b),
                              bad_request_code="MalformedQueryString")
            sts = services.sts
            return _Route("query", sts.signing_name, MAX_API_BYTES, sts.error,
                          lambda _h, b: sts.handle(b))
        return _Route("s3", "s3", MAX_S3_PUT_BYTES, s3.error, _no_answer,  # S3's own codes
                      too_large_code="EntityTooLarge", too_large_status=400,
                      bad_request_code="InvalidArgument", internal_code="InternalError")

    def _rpc_v2_route(self, name: str, operation: str) -> _Route:
        """An RPC v2 CBOR request for the service ``name`` (a ``targetPrefix``)."""
        metrics = self.services.cloudwatch
        if name == metrics.service_name:
            return _Route("cbor", metrics.signing_name, MAX_API_BYTES, metrics.error,
                          lambda h, b: metrics.handle_cbor(operation, h, b))
        return _Route("cbor", "", MAX_API_BYTES, metrics.error,
                      lambda _h, _b: metrics.error(Fault(
                          "UnknownOperationException",
                          f"local mode does not answer RPC v2 service {name!r}")))

    # -- reading and checking ----------------------------------------------------------------
    def _body(self, environ: dict[str, Any], headers: EnvironHeaders, route: _Route) -> bytes:
        length = _content_length(headers, route)
        stream = get_input_stream(environ, max_content_length=None)
        data = stream.read(route.limit + 1 if length is None else length)
        if len(data) > route.limit:
            raise _Refused(route.too_large(len(data)))
        return data

    def _admit(self, signed: SignedRequest, route: _Route) -> None:
        """What needs no body: signed, by a key of this server, now, for this service."""
        scope = signed.admit(self.keys)
        if route.signing_name and scope.service != route.signing_name:
            raise AuthError("bad_signature", f"Credential should be scoped to correct service: "
                                             f"'{route.signing_name}'.")

    def _s3(self, route: _Route, environ: dict[str, Any], start_response: Callable[..., Any],
            headers: EnvironHeaders, signed: SignedRequest, path: str) -> Iterable[bytes]:
        """Verify the signature over the hash the request declares, then stream the body into
        a spool while checking it against that hash: a request is refused before its body is
        read, and a body never reaches the store unless it is the one that was signed."""
        if self.services.s3 is None:
            raise _Refused(Fault("NotImplemented", "this server does not serve S3; its "
                                 "AWS_ENDPOINT_URL_S3 names the S3 it uses", 501))
        declared = signed.declared_sha256
        if declared is None and not signed.presigned and not headers.get("X-Amz-Content-SHA256"):
            raise _Refused(Fault("InvalidRequest", "Missing required header for this request: "
                                 "x-amz-content-sha256"))
        # UNSIGNED-PAYLOAD, STREAMING-* and presigned URLs sign no hash of the body
        signed.verify(environ["REQUEST_METHOD"], path, None, self.keys,
                      body_sha256=declared or EMPTY_SHA256)
        length = _content_length(headers, route)
        # closed by the response iterator once moto has answered, or below on failure
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        try:
            digest, size = hashlib.sha256(), 0
            stream = get_input_stream(environ, max_content_length=None)
            remaining = route.limit + 1 if length is None else length
            while remaining > 0:
                chunk = stream.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                digest.update(chunk)
                spool.write(chunk)
                size += len(chunk)
                remaining -= len(chunk)
                if size > route.limit:
                    raise _Refused(route.too_large(size))
            if declared is not None and digest.hexdigest() != declared:
                raise AuthError("payload_mismatch", "The provided 'x-amz-content-sha256' header "
                                                    "does not match what was computed.")
            spool.seek(0)
            environ["wsgi.input"] = spool
            environ["CONTENT_LENGTH"] = str(size)
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ["wsgi.input_terminated"] = False
            try:
                result = self.services.s3(environ, start_response)
            except Exception:  # the store failed on a request it should have refused
                log.exception("the embedded S3 store failed on %s %s",
                              environ["REQUEST_METHOD"], environ.get("PATH_INFO"))
                result = s3.error(Fault("InternalError", "We encountered an internal error. "
                                        "Please try again.", 500))(environ, start_response)
        except BaseException:
            spool.close()
            raise
        return ClosingIterator(result, [spool.close])


class _Refused(Exception):
    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.message)
        self.fault = fault


Answer = Callable[[EnvironHeaders, bytes], Response]


@dataclass(frozen=True)
class _Route:
    """Where a request goes: its protocol ``kind``, the service its signature must be scoped
    to, its body limit, how to write a refusal and how to answer it."""

    kind: Literal["json", "cbor", "runtime", "query", "s3"]
    signing_name: str
    limit: int
    refuse: Callable[[Fault], Response]
    answer: Answer
    too_large_code: str = "SerializationException"
    too_large_status: int = 413
    bad_request_code: str = "SerializationException"
    internal_code: str = "InternalFailure"

    def too_large(self, size: int) -> Fault:
        return Fault(self.too_large_code, f"The request body of {size} bytes exceeds the "
                                          f"limit of {self.limit} bytes", self.too_large_status)

    def bad_request(self, message: str) -> Fault:
        return Fault(self.bad_request_code, message)


def _json_answer(service: JsonService, operation: str) -> Answer:
    return lambda _headers, body: service.handle(operation, body)


def _cloudwatch_json_answer(service: RpcV2Service, operation: str) -> Answer:
    return lambda _headers, body: service.handle_json(operation, body)


def _no_answer(_headers: EnvironHeaders, _body: bytes) -> Response:
    raise AssertionError("S3 requests are answered by the S3 application")


def _content_length(headers: EnvironHeaders, route: _Route) -> int | None:
    """The declared body length, None when the body is chunked (chunked wins, as HTTP says) or
    undeclared; only digits count, as HTTP allows (``int`` would take ``+2`` or ``2_0``)."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return None
    raw = headers.get("Content-Length")
    if raw is None or raw == "":
        return None
    if not _DIGITS.fullmatch(raw):
        raise _Refused(route.bad_request(f"Content-Length {raw!r} is not a length"))
    length = int(raw)
    if length > route.limit:
        raise _Refused(route.too_large(length))
    return length


def _health(instance: str) -> Response:
    return Response(json.dumps({"status": "ok", "service": "optml local api",
                                "instance": instance}),
                    headers={"Content-Type": "application/json"})
