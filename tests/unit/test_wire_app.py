"""The wire API's WSGI application, in process: routing, limits and the signature check.

A real :class:`WireApp` over real local clients on a temporary state directory and moto's S3,
driven through werkzeug's test machinery. Requests are signed by botocore: either a real boto3
client whose prepared request is handed to the application at ``before-send`` (so botocore
serialises, signs and parses exactly as it would over a socket), or botocore's SigV4 signer
directly where a test needs to craft what no SDK sends. The request-target reaches the
application as werkzeug's own server hands it over (``RAW_URI``: path and query as received).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import sys
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import boto3
import botocore.auth
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials as BotocoreCredentials
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import Headers
from werkzeug.test import Client, TestResponse, run_wsgi_app

from local_mode.client_base import DEFAULT_ACCOUNT
from local_mode.endpoints.invocation import MAX_REQUEST_BYTES
from local_mode.shapes import response_errors
from local_mode.wire import app as wire_app
from local_mode.wire.app import (
    HEALTH_PATH,
    MAX_API_BYTES,
    MAX_S3_PUT_BYTES,
    SPOOL_BYTES,
    Services,
    WireApp,
)
from local_mode.wire.json_rpc import CONTENT_TYPE as JSON_TYPE
from local_mode.wire.server import build_services as server_services
from local_mode.wire.sigv4 import Credentials
from toolkit.settings import Settings

ENDPOINT = "http://127.0.0.1:5000"
REGION = "us-east-1"
CREDS = Credentials.generate()
FORM = "application/x-www-form-urlencoded"
STS_BODY = b"Action=GetCallerIdentity&Version=2011-06-15"
LOGS_PREFIX = "Logs_20140328."


# -- the application under test -----------------------------------------------------------------

def clean_settings(**extra: str) -> Settings:
    """Settings from this environment without anything that points at AWS or another state."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SAGEMAKER_", "OPTML_"))}
    return Settings.from_environ(env | extra)


def build_services(state_dir: Path) -> Services:
    """The services a server on ``state_dir`` answers with (as ApiServer builds them)."""
    return server_services(clean_settings(), state_dir=state_dir, region=REGION,
                           backend="process", embedded_s3=True)


def build_app(services: Services) -> WireApp:
    return WireApp(services, {CREDS.access_key_id: CREDS.secret_access_key})


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Services:
    return build_services(tmp_path_factory.mktemp("wire-app") / "state")


@pytest.fixture(scope="module")
def app(services: Services) -> WireApp:
    return build_app(services)


@pytest.fixture(scope="module")
def web(app: WireApp) -> Client:
    return Client(app)


# -- sending ------------------------------------------------------------------------------------

def send(web: Client, method: str, target: str, headers: Mapping[str, str] | None = None,
         body: bytes = b"", environ: Mapping[str, Any] | None = None) -> TestResponse:
    """``method target`` as werkzeug's server hands it to the application: the request-target
    untouched in ``RAW_URI``, the Host of :data:`ENDPOINT`."""
    overrides = {"RAW_URI": target, "REQUEST_URI": target, **(environ or {})}
    return web.open(target, base_url=ENDPOINT, method=method, headers=dict(headers or {}),
                    data=body, environ_overrides=overrides, buffered=True)


def signed_headers(method: str, target: str, service: str, body: bytes = b"",
                   headers: Mapping[str, str] | None = None, *,
                   unsigned_payload: bool = False) -> dict[str, str]:
    """The headers botocore's SigV4 signer adds for the request (S3's signer for ``s3``).
    ``unsigned_payload``: sign as botocore does when payload signing is off (over HTTPS)."""
    scheme = "https" if unsigned_payload else "http"
    request = AWSRequest(method, f"{scheme}://127.0.0.1:5000{target}", data=body,
                         headers=dict(headers or {}))
    if unsigned_payload:  # botocore's switches: the operation's, and S3's client option
        request.context["payload_signing_enabled"] = False
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    signer = S3SigV4Auth if service == "s3" else SigV4Auth
    signer(BotocoreCredentials(CREDS.access_key_id, CREDS.secret_access_key), service,
           REGION).add_auth(request)
    return {name: value.decode("latin-1") if isinstance(value, bytes) else str(value)
            for name, value in request.headers.items()}


def send_signed(web: Client, method: str, target: str, service: str, body: bytes = b"",
                headers: Mapping[str, str] | None = None) -> TestResponse:
    return send(web, method, target, signed_headers(method, target, service, body, headers),
                body)


def json_target(web: Client, target: str, service: str, body: bytes = b"{}") -> TestResponse:
    return send_signed(web, "POST", "/", service, body,
                       {"X-Amz-Target": target, "Content-Type": JSON_TYPE})


class _Raw:
    """An AWSResponse's raw stream over bytes already received."""

    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body.read()

    def read(self, amount: int | None = None, **_: Any) -> bytes:
        return self._body.read(amount)


@dataclasses.dataclass
class Bridge:
    """Hands a boto3 client's prepared requests to the application instead of a socket."""

    web: Client
    sent: list[AWSPreparedRequest] = dataclasses.field(default_factory=list)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        self.sent.append(request)
        parts = urlsplit(request.url)
        assert f"{parts.scheme}://{parts.netloc}" == ENDPOINT, request.url
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = {name: value.decode("latin-1") if isinstance(value, bytes) else str(value)
                   for name, value in request.headers.items()}
        answer = send(self.web, request.method, target, headers, body or b"")
        return AWSResponse(request.url, answer.status_code, dict(answer.headers),
                           _Raw(answer.get_data()))


def boto3_client(web: Client, service: str, **config: Any) -> tuple[Any, Bridge]:
    """A real boto3 client for ``service`` whose requests the application answers."""
    client = boto3.session.Session().client(
        service, endpoint_url=ENDPOINT, region_name=REGION,
        aws_access_key_id=CREDS.access_key_id, aws_secret_access_key=CREDS.secret_access_key,
        config=Config(retries={"total_max_attempts": 1}, **config))
    bridge = Bridge(web)
    client.meta.events.register("before-send", bridge)
    return client, bridge


def xml_code(response: TestResponse) -> str:
    """The ``<Code>`` of an XML error (S3's ``<Error>`` or the query protocol's)."""
    assert response.headers["Content-Type"] in ("application/xml", "text/xml"), response.headers
    code = ET.fromstring(response.get_data()).find(".//{*}Code")
    if code is None:
        code = ET.fromstring(response.get_data()).find(".//Code")
    assert code is not None and code.text, response.get_data()
    return code.text


def xml_message(response: TestResponse) -> str:
    root = ET.fromstring(response.get_data())
    message = root.find(".//{*}Message")
    if message is None:
        message = root.find(".//Message")
    return "" if message is None or message.text is None else message.text


def error_code(response: TestResponse) -> str:
    """The error code, whichever protocol wrote it."""
    if "x-amzn-ErrorType" in response.headers:
        return response.headers["x-amzn-ErrorType"]
    if response.headers.get("Content-Type") == JSON_TYPE:
        return str(response.get_json(force=True)["__type"])
    return xml_code(response)


def error_message(response: TestResponse) -> str:
    if response.headers.get("Content-Type") in (JSON_TYPE, "application/json"):
        return str(response.get_json(force=True)["message"])
    return xml_message(response)


@pytest.fixture(scope="module")
def bucket(web: Client) -> str:
    """A bucket of the embedded store, named ``endpoints`` as the runtime's path starts."""
    client, _ = boto3_client(web, "s3")
    try:
        client.create_bucket(Bucket="endpoints")
    except ClientError as exc:  # moto's store is the process's: another app may have made it
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou",
                                                 "BucketAlreadyExists"):
            raise
    return "endpoints"


# -- routing ------------------------------------------------------------------------------------

def test_the_target_header_reaches_sagemaker_or_logs_by_its_prefix(web: Client) -> None:
    sagemaker, bridge = boto3_client(web, "sagemaker")
    listed = sagemaker.list_models()
    assert listed["Models"] == [] and response_errors("ListModels", listed) == []
    assert bridge.sent[0].headers["X-Amz-Target"] == b"SageMaker.ListModels"

    logs, bridge = boto3_client(web, "logs")
    groups = logs.describe_log_groups()
    assert groups["logGroups"] == []
    assert bridge.sent[0].headers["X-Amz-Target"] == b"Logs_20140328.DescribeLogGroups"

    raw = json_target(web, LOGS_PREFIX + "DescribeLogGroups", "logs")
    assert raw.status_code == 200 and raw.headers["Content-Type"] == JSON_TYPE
    assert raw.get_json(force=True) == {"logGroups": []}


def test_an_unknown_target_is_unknown_operation_in_json(web: Client) -> None:
    answer = json_target(web, "Glacier_20120601.ListVaults", "sagemaker")
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == JSON_TYPE
    document = answer.get_json(force=True)
    assert document["__type"] == "UnknownOperationException"
    assert "Glacier_20120601.ListVaults" in document["message"]
    # an unknown target is still only answered for a signed request
    unsigned = send(web, "POST", "/", {"X-Amz-Target": "Glacier_20120601.ListVaults",
                                       "Content-Type": JSON_TYPE}, b"{}")
    assert unsigned.status_code == 403
    assert unsigned.get_json(force=True)["__type"] == "MissingAuthenticationTokenException"


def test_a_signed_form_post_is_sts_answered_in_xml(web: Client) -> None:
    answer = send_signed(web, "POST", "/", "sts", STS_BODY,
                         {"Content-Type": f"{FORM}; charset=utf-8"})
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "text/xml"
    root = ET.fromstring(answer.get_data())
    assert root.tag.endswith("GetCallerIdentityResponse")
    account = root.find(".//{*}Account")
    assert account is not None and account.text == DEFAULT_ACCOUNT

    sts, _ = boto3_client(web, "sts")
    assert sts.get_caller_identity()["Account"] == DEFAULT_ACCOUNT


def test_the_invocations_path_signed_for_sagemaker_is_the_runtime(web: Client) -> None:
    answer = send_signed(web, "POST", "/endpoints/no-such-endpoint/invocations", "sagemaker",
                         b"1,2", {"Content-Type": "text/csv"})
    assert answer.status_code == 400
    assert answer.headers["x-amzn-ErrorType"] == "ValidationError"
    assert "no-such-endpoint" in answer.get_json(force=True)["message"]

    runtime, bridge = boto3_client(web, "sagemaker-runtime")
    with pytest.raises(ClientError) as missing:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"1,2")
    assert missing.value.response["Error"]["Code"] == "ValidationError"
    assert urlsplit(bridge.sent[0].url).path == "/endpoints/no-such-endpoint/invocations"


def test_the_same_path_signed_for_s3_is_the_bucket_called_endpoints(web: Client,
                                                                     bucket: str) -> None:
    client, bridge = boto3_client(web, "s3")
    upload = client.create_multipart_upload(Bucket=bucket, Key="x/invocations")
    sent = bridge.sent[0]
    assert (sent.method, urlsplit(sent.url).path) == ("POST", "/endpoints/x/invocations")
    try:
        uploads = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
        assert [(u["Key"], u["UploadId"]) for u in uploads] == \
            [("x/invocations", upload["UploadId"])]
    finally:
        client.abort_multipart_upload(Bucket=bucket, Key="x/invocations",
                                      UploadId=upload["UploadId"])


# -- S3 through the embedded store ---------------------------------------------------------------

class _RecordingSpool(tempfile.SpooledTemporaryFile[bytes]):
    """tempfile's spool, remembering the ones the wire application makes."""

    made: list[_RecordingSpool] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_disk = False
        if sys._getframe(1).f_code.co_filename == wire_app.__file__:
            _RecordingSpool.made.append(self)

    def rollover(self) -> None:
        super().rollover()
        self.on_disk = True


def test_a_put_above_the_spool_threshold_round_trips(web: Client, bucket: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_RecordingSpool, "made", [])
    monkeypatch.setattr(wire_app.tempfile, "SpooledTemporaryFile", _RecordingSpool)
    data = hashlib.sha256(b"seed").digest() * ((SPOOL_BYTES + (1 << 20)) // 32)
    assert len(data) > SPOOL_BYTES
    client, bridge = boto3_client(web, "s3")
    client.put_object(Bucket=bucket, Key="big/object.bin", Body=data)
    put = bridge.sent[0]
    assert put.headers["x-amz-content-sha256"] == hashlib.sha256(data).hexdigest().encode()
    (spool,) = _RecordingSpool.made
    assert spool.on_disk, "the body was kept in memory, not spooled to a file"
    assert spool.closed, "the spool outlived the request"

    got = client.get_object(Bucket=bucket, Key="big/object.bin")
    assert got["ContentLength"] == len(data)
    assert got["Body"].read() == data


@pytest.mark.parametrize("tamper", ["header", "body"])
def test_a_payload_that_is_not_the_signed_hash_is_refused(web: Client, bucket: str,
                                                          tamper: str) -> None:
    data = b"\x01" * (SPOOL_BYTES + 1024)
    key = f"tampered/{tamper}-{uuid.uuid4().hex[:8]}"
    if tamper == "header":  # signed, but declaring the hash of another body
        headers = _signed_with_declared_hash(f"/{bucket}/{key}", data,
                                             hashlib.sha256(b"something else").hexdigest())
        sent = data
    else:  # signed with the body's hash, then another body of the same length sent
        headers = signed_headers("PUT", f"/{bucket}/{key}", "s3", data)
        assert headers["X-Amz-Content-SHA256"] == hashlib.sha256(data).hexdigest()
        sent = data[:-1] + b"\x02"
    answer = send(web, "PUT", f"/{bucket}/{key}", headers, sent)
    assert answer.status_code == 400, answer.get_data()[:500]
    assert xml_code(answer) == "XAmzContentSHA256Mismatch"
    client, _ = boto3_client(web, "s3")
    with pytest.raises(ClientError) as missing:
        client.head_object(Bucket=bucket, Key=key)
    assert missing.value.response["Error"]["Code"] == "404"


def _signed_with_declared_hash(target: str, body: bytes, declared: str) -> dict[str, str]:
    """A PUT whose signature covers ``declared`` as its payload hash, whatever the body."""

    class Declaring(S3SigV4Auth):
        def payload(self, request: AWSRequest) -> str:
            return declared

    request = AWSRequest("PUT", f"http://127.0.0.1:5000{target}", data=body)
    Declaring(BotocoreCredentials(CREDS.access_key_id, CREDS.secret_access_key), "s3",
              REGION).add_auth(request)
    assert request.headers["X-Amz-Content-SHA256"] == declared
    return {name: str(value) for name, value in request.headers.items()}


def test_a_presigned_get_url_works_and_a_tampered_or_expired_one_does_not(
        web: Client, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = boto3_client(web, "s3", signature_version="s3v4")
    client.put_object(Bucket=bucket, Key="shared/a.txt", Body=b"for your eyes")
    client.put_object(Bucket=bucket, Key="shared/b.txt", Body=b"not for yours")
    url = client.generate_presigned_url("get_object", ExpiresIn=300,
                                        Params={"Bucket": bucket, "Key": "shared/a.txt"})
    parts = urlsplit(url)
    assert "X-Amz-Signature=" in parts.query
    target = f"{parts.path}?{parts.query}"
    answer = send(web, "GET", target)  # no Authorization header: the URL is the credential
    assert answer.status_code == 200 and answer.get_data() == b"for your eyes"

    other_key = send(web, "GET", target.replace("/shared/a.txt?", "/shared/b.txt?"))
    assert other_key.status_code == 403 and xml_code(other_key) == "SignatureDoesNotMatch"
    longer = send(web, "GET", target.replace("X-Amz-Expires=300", "X-Amz-Expires=600"))
    assert longer.status_code == 403 and xml_code(longer) == "SignatureDoesNotMatch"

    signed_long_ago = datetime.now(timezone.utc) - timedelta(hours=2)
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda *_, **__: signed_long_ago.replace(tzinfo=None))
    old = urlsplit(client.generate_presigned_url(
        "get_object", ExpiresIn=60, Params={"Bucket": bucket, "Key": "shared/a.txt"}))
    expired = send(web, "GET", f"{old.path}?{old.query}")
    assert expired.status_code == 403 and xml_code(expired) == "AccessDenied"
    assert "expired" in xml_message(expired)


# -- signatures ---------------------------------------------------------------------------------

WRONG_SERVICE = {
    "SageMaker target signed for logs": (
        "POST", "/", {"X-Amz-Target": "SageMaker.ListModels", "Content-Type": JSON_TYPE}, b"{}",
        "logs", "InvalidSignatureException", "sagemaker"),
    "Logs target signed for sagemaker": (
        "POST", "/", {"X-Amz-Target": LOGS_PREFIX + "DescribeLogGroups",
                      "Content-Type": JSON_TYPE}, b"{}",
        "sagemaker", "InvalidSignatureException", "logs"),
    "STS form signed for sagemaker": (
        "POST", "/", {"Content-Type": FORM}, STS_BODY, "sagemaker", "SignatureDoesNotMatch",
        "sts"),
    "runtime signed for logs": (
        "POST", "/endpoints/x/invocations", {"Content-Type": "text/csv"}, b"1",
        "logs", "InvalidSignatureException", "sagemaker"),
    "S3 signed for sagemaker": (
        "GET", "/endpoints", {}, b"", "sagemaker", "SignatureDoesNotMatch", "s3"),
}


@pytest.mark.parametrize("case", list(WRONG_SERVICE))
def test_a_request_signed_for_another_service_is_refused(web: Client, case: str) -> None:
    method, target, headers, body, signed_for, code, expected = WRONG_SERVICE[case]
    answer = send_signed(web, method, target, signed_for, body, headers)
    assert answer.status_code == 403
    assert error_code(answer) == code
    assert f"Credential should be scoped to correct service: '{expected}'" in \
        error_message(answer)


def test_an_unsigned_payload_is_only_accepted_by_s3(web: Client, bucket: str) -> None:
    headers = {"X-Amz-Target": "SageMaker.ListModels", "Content-Type": JSON_TYPE,
               "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    signed = signed_headers("POST", "/", "sagemaker", b"{}", headers, unsigned_payload=True)
    assert signed["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert "x-amz-content-sha256" in signed["Authorization"]
    refused = send(web, "POST", "/", signed, b"{}")
    assert refused.status_code == 403
    assert refused.get_json(force=True)["__type"] == "InvalidSignatureException"
    assert "only accepted by S3" in refused.get_json(force=True)["message"]
    # the same request with its body signed is answered
    assert json_target(web, "SageMaker.ListModels", "sagemaker").status_code == 200

    # S3 may leave its body out of the signature (what botocore does over HTTPS)
    key = f"unsigned/{uuid.uuid4().hex[:8]}"
    put = signed_headers("PUT", f"/{bucket}/{key}", "s3", b"payload", unsigned_payload=True)
    assert put["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert send(web, "PUT", f"/{bucket}/{key}", put, b"payload").status_code == 200
    client, _ = boto3_client(web, "s3")
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"payload"


def test_a_signed_s3_request_the_store_fails_on_is_answered_as_s3(web: Client,
                                                                  bucket: str) -> None:
    """A POST to an object without a sub-resource (no S3 operation) makes moto's S3 raise. The
    caller speaks S3, so the failure must come back as S3 writes one (an XML ``<Error>`` its
    SDK parses, such as ``InternalError``), not as another protocol's JSON: botocore's S3 parser
    cannot read that and reports a bare "500"."""
    answer = send_signed(web, "POST", f"/{bucket}/some/object", "s3", b"x")
    assert answer.headers["Content-Type"] == "application/xml", \
        f"{answer.status_code} {answer.headers['Content-Type']}: {answer.get_data()[:300]!r}"
    assert xml_code(answer)


# -- limits -------------------------------------------------------------------------------------

class _Untouchable(io.RawIOBase):
    """A request body that must not be read."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the application read a body it had to refuse unread")


class _Endless(io.RawIOBase):
    """A streamed (chunked) body that never ends; counts what was read."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        buffer[:size] = b"x" * size
        self.read_bytes += size
        return size


ROUTES: dict[str, tuple[str, str, dict[str, str], int, str, str]] = {
    # route: method, target, headers, limit, code of the 413, the service it is signed for
    "json": ("POST", "/", {"X-Amz-Target": "SageMaker.ListModels", "Content-Type": JSON_TYPE},
             MAX_API_BYTES, "SerializationException", "sagemaker"),
    "query": ("POST", "/", {"Content-Type": FORM}, MAX_API_BYTES, "SerializationException",
              "sts"),
    "runtime": ("POST", "/endpoints/x/invocations", {"Content-Type": "text/csv"},
                MAX_REQUEST_BYTES, "ValidationError", "sagemaker"),
    "s3": ("PUT", "/endpoints/huge.bin", {}, MAX_S3_PUT_BYTES, "EntityTooLarge", "s3"),
}
TOO_LARGE_STATUS = {"json": 413, "query": 413, "runtime": 413, "s3": 400}  # S3 says 400
BAD_LENGTH_CODE = {"json": "SerializationException", "query": "SerializationException",
                   "runtime": "SerializationException", "s3": "InvalidArgument"}


def _signed_route(route: str) -> tuple[str, str, dict[str, str], int, str]:
    """The route's request, signed (over an empty body: the sizes are refused before the
    body would be checked against its signature)."""
    method, target, headers, limit, code, service = ROUTES[route]
    return method, target, signed_headers(method, target, service, b"", headers), limit, code


@pytest.mark.parametrize("route", list(ROUTES))
def test_an_unsigned_request_is_refused_before_its_body_is_read(web: Client,
                                                                route: str) -> None:
    method, target, headers, limit, _, _ = ROUTES[route]
    answer = send(web, method, target, headers | {"Content-Length": str(limit)},
                  environ={"wsgi.input": io.BufferedReader(_Untouchable()),
                           "CONTENT_LENGTH": str(limit)})
    assert answer.status_code == 403


@pytest.mark.parametrize("over", [1, 10 ** 15])
@pytest.mark.parametrize("route", list(ROUTES))
def test_a_declared_length_over_the_routes_limit_is_refused_unread(web: Client, route: str,
                                                                   over: int) -> None:
    method, target, headers, limit, code = _signed_route(route)
    answer = send(web, method, target, headers | {"Content-Length": str(limit + over)},
                  environ={"wsgi.input": io.BufferedReader(_Untouchable()),
                           "CONTENT_LENGTH": str(limit + over)})
    assert answer.status_code == TOO_LARGE_STATUS[route]
    assert error_code(answer) == code
    assert str(limit) in error_message(answer)


@pytest.mark.parametrize("route", ["json", "query", "runtime"])
def test_a_streamed_body_is_cut_one_byte_past_the_limit(web: Client, route: str) -> None:
    method, target, headers, limit, code = _signed_route(route)
    endless = _Endless()
    answer = send(web, method, target, headers, environ={
        "wsgi.input": endless, "wsgi.input_terminated": True, "CONTENT_LENGTH": "",
        "HTTP_TRANSFER_ENCODING": "chunked"})
    assert answer.status_code == 413 and error_code(answer) == code
    assert endless.read_bytes == limit + 1


def test_a_body_of_exactly_the_limit_is_read(web: Client) -> None:
    method, target, headers, limit, _ = _signed_route("runtime")
    answer = send(web, method, target, headers, b"x" * limit)
    assert answer.status_code == 403  # read and checked: it was signed over another body
    assert answer.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


@pytest.mark.parametrize("length", ["-1", "-0000000001", "abc", "1.5", "0x10", "1e3", "\u00b2"])
@pytest.mark.parametrize("route", list(ROUTES))
def test_a_content_length_that_is_no_length_is_a_serialization_exception(
        web: Client, route: str, length: str) -> None:
    method, target, headers, _, _ = _signed_route(route)
    answer = send(web, method, target, headers, environ={
        "wsgi.input": io.BufferedReader(_Untouchable()), "CONTENT_LENGTH": length})
    assert answer.status_code == 400
    assert error_code(answer) == BAD_LENGTH_CODE[route]


@pytest.mark.parametrize("length", ["+2", "2_0"])
def test_a_content_length_only_python_reads_as_a_number_is_refused(web: Client,
                                                                    length: str) -> None:
    """HTTP's Content-Length is digits only. ``int()`` also takes a sign and underscores;
    werkzeug's input stream (``_plain_int``) takes neither and reads no body at all, so the
    application and the stream disagree about the body: here a correctly signed two-byte body
    is verified as empty. Such a header is garbage like any other."""
    method, target, headers, _, _, _ = ROUTES["json"]
    signed = signed_headers(method, target, "sagemaker", b"{}", headers)
    answer = send(web, method, target, signed, b"{}", environ={"CONTENT_LENGTH": length})
    assert (answer.status_code, error_code(answer)) == (400, "SerializationException"), \
        f"Content-Length {length!r} was taken as a number: {error_message(answer)}"


def test_deeply_nested_json_is_a_serialization_exception(web: Client) -> None:
    """The JSON decoder gives up on deep nesting with RecursionError, which is no ValueError:
    the caller's malformed body must still be its own fault (400), not the server's (500)."""
    answer = json_target(web, "SageMaker.ListModels", "sagemaker", b"[" * 100_000)
    assert answer.status_code == 400, answer.get_data()[:300]
    assert answer.get_json(force=True)["__type"] == "SerializationException"


# -- health and the absent store ------------------------------------------------------------------

def test_the_health_path_is_unsigned_and_only_a_get(web: Client) -> None:
    answer = send(web, "GET", HEALTH_PATH)
    assert answer.status_code == 200
    assert answer.get_json(force=True) == {"status": "ok", "service": "optml local api",
                                           "instance": ""}
    assert send(web, "GET", HEALTH_PATH + "?probe=1").status_code == 200
    posted = send(web, "POST", HEALTH_PATH, {}, b"")
    assert posted.status_code == 403 and xml_code(posted) == "AccessDenied"


def test_s3_is_not_implemented_by_a_server_without_the_embedded_store(
        services: Services) -> None:
    web = Client(build_app(dataclasses.replace(services, s3=None)))
    unsigned = send(web, "GET", "/some-bucket")  # nobody learns anything without a key
    assert unsigned.status_code == 403 and xml_code(unsigned) == "AccessDenied"
    signed = send_signed(web, "GET", "/some-bucket", "s3")
    assert signed.status_code == 501 and xml_code(signed) == "NotImplemented"
    assert "AWS_ENDPOINT_URL_S3" in xml_message(signed)

    client, _ = boto3_client(web, "s3")
    with pytest.raises(ClientError) as refused:
        client.list_buckets()
    assert refused.value.response["Error"]["Code"] == "NotImplemented"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    sts, _ = boto3_client(web, "sts")  # everything else is still served
    assert sts.get_caller_identity()["Account"] == DEFAULT_ACCOUNT


# -- whatever arrives ---------------------------------------------------------------------------

_LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
_TOKEN = st.text("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                 min_size=1, max_size=12)
_METHODS = st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH"]) | _TOKEN
_PATHS = st.one_of(
    st.sampled_from(["/", HEALTH_PATH, "/endpoints/x/invocations", "/endpoints/x/nope",
                     "/endpoints/%2F/invocations", "/bucket/key", "*", "http://h/x", ""]),
    st.builds(lambda a, b: a + b, st.sampled_from(["/", "/endpoints/", "/_optml/", "//"]),
              st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF,
                                    exclude_characters="\x7f"), max_size=30)))
_QUERIES = st.one_of(
    st.just(""),
    st.sampled_from(["uploads", "X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Signature=00",
                     "AWSAccessKeyId=x&Signature=y", "X-Amz-Credential=a%2Fb&X-Amz-Date=1"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"),
            max_size=40))
_HEADER_NAMES = st.sampled_from([
    "X-Amz-Target", "Authorization", "Content-Type", "X-Amz-Date", "Date",
    "X-Amz-Content-SHA256", "Host", "X-Amz-Security-Token", "Transfer-Encoding",
    "X-Amzn-SageMaker-Custom-Attributes"]) | _TOKEN
_HEADER_VALUES = st.one_of(
    st.sampled_from([
        "SageMaker.ListModels", LOGS_PREFIX + "DescribeLogGroups", "SageMaker.", "", FORM,
        JSON_TYPE, "UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "chunked",
        "AWS4-HMAC-SHA256 Credential=LOCLX/20240101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
        f"AWS4-HMAC-SHA256 Credential={CREDS.access_key_id}/20240101/us-east-1/sagemaker/"
        "aws4_request, SignedHeaders=host, Signature=" + "a" * 64,
        "AWS AKID:c2ln", "20240101T000000Z", "Mon, 01 Jan 2024 00:00:00 GMT"]),
    st.text(_LATIN1, max_size=80).map(str.strip))
_LENGTHS = st.one_of(st.none(), st.just("exact"), st.sampled_from(["-1", "x", "1.5", "", "0"]),
                     st.integers(0, 64).map(str))


def _environ(method: str, path: str, query: str, headers: dict[str, str], body: bytes,
             length: str | None) -> dict[str, Any]:
    """The WSGI environ werkzeug's server would build for such a request."""
    target = path + (f"?{query}" if query else "")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"), "QUERY_STRING": query,
        "RAW_URI": target, "REQUEST_URI": target, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(), "wsgi.multithread": True, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "HTTP_HOST": "127.0.0.1:5000"}
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            environ[f"HTTP_{key}"] = value
    environ.pop("CONTENT_LENGTH", None)
    if length == "exact":
        environ["CONTENT_LENGTH"] = str(len(body))
    elif length is not None and not (length.isdigit() and int(length) > len(body)):
        environ["CONTENT_LENGTH"] = length  # never more than arrives: that is a disconnect
    return environ


def assert_well_formed(status: int, headers: Headers, body: bytes, method: str) -> None:
    """An answer some SDK can parse: the health document, or an error in one protocol."""
    assert status < 500, (status, body[:500])
    kind = headers.get("Content-Type", "")
    if method == "HEAD":  # a HEAD answer carries the headers of the body it omits
        assert not body and kind
        return
    if kind == JSON_TYPE:
        document = json.loads(body)
        assert status == 200 or ({"__type", "message"} <= set(document)), document
    elif "x-amzn-ErrorType" in headers:
        assert status >= 400 and "message" in json.loads(body)
    elif kind in ("application/xml", "text/xml"):
        root = ET.fromstring(body)
        if status >= 400:
            assert root.tag.split("}")[-1] in ("Error", "ErrorResponse"), body[:300]
            code = root.find(".//{*}Code")
            code = root.find(".//Code") if code is None else code
            assert code is not None and code.text, body[:300]
    else:
        assert kind == "application/json" and json.loads(body)["status"] == "ok", (kind, body)


def _call(app: WireApp, environ: dict[str, Any]) -> tuple[int, Headers, bytes]:
    answer, status, headers = run_wsgi_app(app, environ, buffered=True)
    return int(status.split()[0]), headers, b"".join(answer)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(method=_METHODS, path=_PATHS, query=_QUERIES,
       headers=st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=6),
       body=st.binary(max_size=256), length=_LENGTHS)
def test_whatever_arrives_gets_a_well_formed_answer(app: WireApp, method: str, path: str,
                                                    query: str, headers: dict[str, str],
                                                    body: bytes, length: str | None) -> None:
    status, answered, data = _call(app, _environ(method, path, query, headers, body, length))
    assert_well_formed(status, answered, data, method)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=3),
    max_leaves=8)
_READ_TARGETS = st.sampled_from([
    "SageMaker.ListModels", "SageMaker.DescribeModel", "SageMaker.ListTrainingJobs",
    "SageMaker.DescribeTrainingJob", "SageMaker.ListEndpoints", "SageMaker.DescribeEndpoint",
    "SageMaker.ListTags", "SageMaker.ListTransformJobs", "SageMaker.NoSuchOperation",
    LOGS_PREFIX + "DescribeLogGroups", LOGS_PREFIX + "DescribeLogStreams",
    LOGS_PREFIX + "GetLogEvents", LOGS_PREFIX + "FilterLogEvents", "Nobody.Home"])
_MEMBER_BODIES = st.dictionaries(
    st.sampled_from(["ModelName", "TrainingJobName", "EndpointName", "ResourceArn",
                     "MaxResults", "NextToken", "NameContains", "SortBy", "SortOrder",
                     "CreationTimeAfter", "logGroupName", "logStreamName", "startTime",
                     "limit", "nextToken", "startFromHead", "logGroupNamePrefix"]),
    _JSON, max_size=4)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(["json", "sts", "runtime"]), target=_READ_TARGETS,
       members=_MEMBER_BODIES, raw=st.one_of(st.none(), st.binary(max_size=64)),
       name=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                  exclude_characters="/?#%"), min_size=1, max_size=20))
def test_whatever_a_signed_client_sends_gets_a_well_formed_answer(
        app: WireApp, kind: str, target: str, members: dict[str, Any], raw: bytes | None,
        name: str) -> None:
    body = raw if raw is not None else json.dumps(members).encode()
    if kind == "json":
        method, path, service = "POST", "/", "logs" if target.startswith("Logs") else "sagemaker"
        headers = {"X-Amz-Target": target, "Content-Type": JSON_TYPE}
    elif kind == "sts":
        method, path, service, headers = "POST", "/", "sts", {"Content-Type": FORM}
        body = raw if raw is not None else "&".join(
            f"{key}={value}" for key, value in {"Action": "GetCallerIdentity", **members}.items()
        ).encode()
    else:
        method, path, service = "POST", f"/endpoints/{name}/invocations", "sagemaker"
        headers = {"Content-Type": "application/json"}
    signed = signed_headers(method, path, service, body, headers)
    status, answered, data = _call(app, _environ(method, path, "", signed, body, "exact"))
    assert_well_formed(status, answered, data, method)
