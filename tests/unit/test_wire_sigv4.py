"""The SigV4 verifier against requests botocore really signed.

Every accepted request here was signed by botocore: by a real boto3 client whose request is
caught at ``before-send`` (so it is exactly what would go on the wire, and nothing does), or by
botocore's signer directly where hypothesis needs thousands of them. The server-side view of a
request is built as an HTTP server would hand it over: header values decoded as latin-1 and
stripped, a ``Host`` header added as http.client adds it, the request-target untouched.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials as BotocoreCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode.wire.sigv4 import (
    AuthError,
    AuthFailure,
    Credentials,
    Scope,
    signing_scope,
    verify,
)

ENDPOINT = "http://127.0.0.1:5000"
HOST = "127.0.0.1:5000"
CREDS = Credentials.generate()
KEYS = {CREDS.access_key_id: CREDS.secret_access_key}
JSON_REPLY = b"{}"
STS_REPLY = (b"<GetCallerIdentityResponse><GetCallerIdentityResult><Account>123456789012"
             b"</Account></GetCallerIdentityResult></GetCallerIdentityResponse>")
LIST_REPLY = b"<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount></ListBucketResult>"


@dataclass(frozen=True)
class Received:
    """A request as the server sees it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    def check(self, keys: dict[str, str] = KEYS, **kwargs: Any) -> Scope:
        return verify(self.method, self.target, self.headers, self.body, keys, **kwargs)

    def with_header(self, name: str, value: str | None) -> Received:
        headers = {k: v for k, v in self.headers.items() if k.lower() != name.lower()}
        if value is not None:
            headers[name] = value
        return replace(self, headers=headers)

    def header(self, name: str) -> str:
        return next(v for k, v in self.headers.items() if k.lower() == name.lower())

    @property
    def signed_at(self) -> datetime:
        value = self.header("X-Amz-Date") if "X-Amz-Date" in self.headers else \
            re.search(r"X-Amz-Date=(\w+)", self.target).group(1)  # type: ignore[union-attr]
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def _received(method: str, url: str, headers: Any, body: Any) -> Received:
    parts = urlsplit(url)
    assert parts.netloc == HOST
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    seen = {name: (value.decode("latin-1") if isinstance(value, bytes) else str(value)).strip()
            for name, value in headers.items()}
    seen["Host"] = HOST
    seen.setdefault("Accept-Encoding", "identity")  # http.client's, unsigned
    if hasattr(body, "read"):  # the request is never sent, so its stream is ours to read
        body = body.read()
    if isinstance(body, str):
        body = body.encode("utf-8")
    return Received(method, target, seen, body or b"")


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def _client(service: str, creds: Credentials = CREDS, endpoint: str = ENDPOINT,
            **config: Any) -> Any:
    return _session().client(
        service, endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=creds.access_key_id, aws_secret_access_key=creds.secret_access_key,
        config=Config(retries={"total_max_attempts": 1}, **config))


def _sent(service: str, operation: str, *, reply: bytes = JSON_REPLY, creds: Credentials = CREDS,
          endpoint: str = ENDPOINT, config: dict[str, Any] | None = None,
          **params: Any) -> Received:
    """What a real boto3 client sends for ``operation``, caught before it leaves."""
    client = _client(service, creds, endpoint, **(config or {}))
    caught: list[AWSPreparedRequest] = []

    def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        caught.append(request)
        return AWSResponse(request.url, 200, {}, _Raw(reply))

    client.meta.events.register("before-send", before_send)
    getattr(client, operation)(**params)
    (request,) = caught
    return _received(request.method, request.url, request.headers, request.body)


def describe_training_job() -> Received:
    return _sent("sagemaker", "describe_training_job", TrainingJobName="my-job")


def invoke_endpoint() -> Received:
    return _sent("sagemaker-runtime", "invoke_endpoint", EndpointName="my-endpoint",
                 Body=bytes(range(256)), ContentType="application/x-npy",
                 CustomAttributes='  trace=1;  q="a  b",c/d?e&f%20g~h:i  ')


def get_log_events() -> Received:
    return _sent("logs", "get_log_events", logGroupName="/aws/sagemaker/TrainingJobs",
                 logStreamName="my-job/algo-1-1700000000", startFromHead=True)


def get_caller_identity() -> Received:
    return _sent("sts", "get_caller_identity", reply=STS_REPLY)


S3_KEY = "my data/ünïcödé+plus~tilde (1).csv"


def put_object() -> Received:
    return _sent("s3", "put_object", reply=b"", Bucket="bucket", Key=S3_KEY,
                 Body=b"a,b\n1,2\n", Metadata={"note": "x  y"})


def list_objects() -> Received:
    return _sent("s3", "list_objects_v2", reply=LIST_REPLY, Bucket="bucket",
                 Prefix="my data/ü+", Delimiter="/", StartAfter="k=v&w", MaxKeys=7)


def presigned_get(expires: int = 300, **config: Any) -> Received:
    client = _client("s3", **({"signature_version": "s3v4"} | config))
    url = client.generate_presigned_url("get_object", ExpiresIn=expires,
                                        Params={"Bucket": "bucket", "Key": S3_KEY})
    return _received("GET", url, {}, b"")


SIGNED: dict[str, tuple[Callable[[], Received], str]] = {
    "sagemaker DescribeTrainingJob": (describe_training_job, "sagemaker"),
    "sagemaker-runtime InvokeEndpoint": (invoke_endpoint, "sagemaker"),
    "logs GetLogEvents": (get_log_events, "logs"),
    "sts GetCallerIdentity": (get_caller_identity, "sts"),
    "s3 PutObject": (put_object, "s3"),
    "s3 ListObjectsV2": (list_objects, "s3"),
    "s3 presigned GetObject": (presigned_get, "s3"),
}


# -- what boto3 sends verifies --------------------------------------------------------------

@pytest.mark.parametrize("name", list(SIGNED))
def test_a_request_boto3_signed_verifies(name: str) -> None:
    make, service = SIGNED[name]
    received = make()
    scope = received.check()
    assert scope == Scope(CREDS.access_key_id, received.signed_at.strftime("%Y%m%d"),
                          "us-east-1", service)
    query = received.target.partition("?")[2]
    assert signing_scope(received.headers, query) == scope


def test_the_shapes_under_test_are_the_ones_meant() -> None:
    """The requests exercise what they are named for: a binary body, a custom attribute with
    runs of spaces, S3's signed payload hash, an escaped key and query, query-string auth."""
    runtime = invoke_endpoint()
    assert runtime.body == bytes(range(256))
    assert "  " in runtime.header("X-Amzn-SageMaker-Custom-Attributes")
    put = put_object()
    assert put.header("X-Amz-Content-SHA256") == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert put.target == "/bucket/" + quote(S3_KEY, safe="/~")
    assert "%2B" in put.target and "~" in put.target
    listing = list_objects()
    assert "start-after=k%3Dv%26w" in listing.target
    assert "X-Amz-Signature=" in presigned_get().target
    assert get_caller_identity().body == b"Action=GetCallerIdentity&Version=2011-06-15"


def test_header_names_match_in_any_case() -> None:
    received = describe_training_job()
    assert received.check()
    for transform in (str.lower, str.upper):
        shouted = replace(received, headers={transform(k): v for k, v in received.headers.items()})
        assert shouted.check() == received.check()


def test_a_body_hashed_by_the_caller_verifies() -> None:
    received = put_object()
    digest = hashlib.sha256(received.body).hexdigest()
    assert verify(received.method, received.target, received.headers, None, KEYS,
                  body_sha256=digest).service == "s3"
    with pytest.raises(AuthError) as caught:
        verify(received.method, received.target, received.headers, None, KEYS,
               body_sha256=hashlib.sha256(b"other").hexdigest())
    assert caught.value.kind == "payload_mismatch"
    with pytest.raises(ValueError, match="body"):
        verify(received.method, received.target, received.headers, None, KEYS)


def test_an_unsigned_payload_is_accepted_as_signed_and_its_body_is_not_checked() -> None:
    """What boto3 sends when told not to sign S3 payloads: UNSIGNED-PAYLOAD is the signed
    string, so any body goes with it (the module's documented limit)."""
    received = _sent("s3", "put_object", reply=b"", Bucket="bucket", Key="k", Body=b"data",
                     config={"s3": {"payload_signing_enabled": False}})
    assert received.header("X-Amz-Content-SHA256") == "UNSIGNED-PAYLOAD"
    assert received.check().service == "s3"
    assert replace(received, body=b"other data").check().service == "s3"


def test_an_aws_chunked_upload_verifies_without_its_chunks_being_checked() -> None:
    """boto3 streams an upload to an https endpoint (a TLS proxy in front of the server, say)
    as aws-chunked with a trailing checksum; the STREAMING-* value is what it signed."""
    received = _sent("s3", "put_object", reply=b"", endpoint=f"https://{HOST}", Bucket="bucket",
                     Key="k", Body=io.BytesIO(b"x" * 100))
    assert received.header("X-Amz-Content-SHA256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert received.header("Content-Encoding") == "aws-chunked"
    assert received.check().service == "s3"


def test_a_request_dated_by_its_date_header_verifies() -> None:
    """botocore signs with the HTTP Date header, not X-Amz-Date, when a request carries one."""
    request = AWSRequest("POST", f"{ENDPOINT}/", data=b"{}", headers={
        "Date": "Thu, 01 Jan 2026 00:00:00 GMT", "X-Amz-Target": "SageMaker.ListModels"})
    SigV4Auth(BotocoreCredentials(CREDS.access_key_id, CREDS.secret_access_key), "sagemaker",
              "us-east-1").add_auth(request)
    received = _received("POST", request.url, request.headers, request.body)
    assert "X-Amz-Date" not in received.headers
    signed = parsedate_to_datetime(received.header("Date"))
    assert received.check(now=signed).service == "sagemaker"
    assert _refused(received, now=signed + timedelta(minutes=16)).kind == "expired"


def test_any_of_several_keys_verifies_its_own_requests() -> None:
    other = Credentials.generate()
    keys = {other.access_key_id: other.secret_access_key, **KEYS}
    mine = _sent("sagemaker", "describe_training_job", creds=other, TrainingJobName="j")
    assert mine.check(keys).access_key_id == other.access_key_id
    assert describe_training_job().check(keys).access_key_id == CREDS.access_key_id


def test_headers_another_client_signed_are_honoured() -> None:
    """SignedHeaders decides, not botocore's preference: a client that signs User-Agent (which
    botocore never does) verifies, and a changed User-Agent then fails."""

    class SignsEverything(SigV4Auth):
        def headers_to_sign(self, request: AWSRequest) -> Any:
            headers = super().headers_to_sign(request)
            headers["user-agent"] = request.headers["User-Agent"]
            return headers

    request = AWSRequest("POST", f"{ENDPOINT}/", data=b"{}", headers={
        "User-Agent": "other-sdk/1.0", "X-Amz-Target": "SageMaker.ListModels",
        "Content-Type": "application/x-amz-json-1.1"})
    SignsEverything(BotocoreCredentials(CREDS.access_key_id, CREDS.secret_access_key),
                    "sagemaker", "us-east-1").add_auth(request)
    received = _received("POST", request.url, request.headers, request.body)
    assert "user-agent" in received.header("Authorization")
    assert received.check().service == "sagemaker"
    with pytest.raises(AuthError) as caught:
        received.with_header("User-Agent", "other-sdk/1.1").check()
    assert caught.value.kind == "bad_signature"


def test_the_query_is_canonical_however_the_client_escaped_it() -> None:
    """Lower-case hex or an unescaped '/' on the wire is the same parameter as signed."""
    received = list_objects()
    path, _, query = received.target.partition("?")
    respelled = query.replace("%2F", "%2f").replace("%C3%BC", "%c3%bc")
    assert respelled != query
    assert replace(received, target=f"{path}?{respelled}").check().service == "s3"
    assert replace(received, target=f"{path}?{query.replace('%2F', '/')}").check()


# -- what must fail ------------------------------------------------------------------------

def _refused(received: Received, **kwargs: Any) -> AuthError:
    with pytest.raises(AuthError) as caught:
        received.check(**kwargs)
    return caught.value


def test_a_tampered_body_fails() -> None:
    json_request = describe_training_job()
    error = _refused(replace(json_request, body=json_request.body.replace(b"my-job", b"my-jot")))
    assert error.kind == "bad_signature"
    assert error.code_for("sagemaker") == "InvalidSignatureException"
    assert error.message.startswith("The request signature we calculated does not match")
    assert error.canonical_request is not None and "my-jot" not in error.canonical_request
    form = get_caller_identity()
    assert _refused(replace(form, body=form.body + b"&x=1")).code_for("sts") == \
        "SignatureDoesNotMatch"
    binary = invoke_endpoint()
    assert _refused(replace(binary, body=binary.body[::-1])).kind == "bad_signature"
    s3_put = put_object()
    error = _refused(replace(s3_put, body=b"a,b\n1,3\n"))
    assert error.kind == "payload_mismatch"
    assert error.code_for("s3") == "XAmzContentSHA256Mismatch"
    assert error.status_for("s3") == 400


def test_a_tampered_header_fails() -> None:
    received = describe_training_job()
    error = _refused(received.with_header("X-Amz-Target", "SageMaker.DeleteTrainingJob"))
    assert error.kind == "bad_signature"
    runtime = invoke_endpoint()
    error = _refused(runtime.with_header("X-Amzn-SageMaker-Custom-Attributes", "trace=2"))
    assert error.kind == "bad_signature"


def test_a_tampered_path_or_query_fails() -> None:
    put = put_object()
    assert _refused(replace(put, target=put.target.replace("plus", "minus"))).kind == \
        "bad_signature"
    runtime = invoke_endpoint()
    assert _refused(replace(runtime, target="/endpoints/other-endpoint/invocations")).kind == \
        "bad_signature"
    listing = list_objects()
    assert _refused(replace(listing, target=listing.target.replace("max-keys=7",
                                                                  "max-keys=8"))).kind == \
        "bad_signature"
    assert _refused(replace(listing, target=listing.target + "&fetch-owner=true")).kind == \
        "bad_signature"


def test_the_wrong_secret_fails() -> None:
    error = _refused(describe_training_job(), keys={CREDS.access_key_id: "not the secret"})
    assert error.kind == "bad_signature"
    assert error.status == 403
    assert error.string_to_sign is not None and error.string_to_sign.startswith(
        "AWS4-HMAC-SHA256\n")


def test_an_unknown_access_key_fails() -> None:
    error = _refused(describe_training_job(), keys={"LOCLSOMEBODYELSE0000": "s"})
    assert error.kind == "unknown_key"
    assert error.code_for("sagemaker") == "UnrecognizedClientException"
    assert error.message == "The security token included in the request is invalid."
    assert error.code_for("s3") == "InvalidAccessKeyId"
    assert error.code_for("sts") == "InvalidClientTokenId"


def test_an_unsigned_request_is_missing_authentication() -> None:
    received = describe_training_job().with_header("Authorization", None)
    error = _refused(received)
    assert error.kind == "missing"
    assert error.code_for("sagemaker") == "MissingAuthenticationTokenException"
    assert error.code_for("s3") == "AccessDenied"
    assert signing_scope(received.headers, "") is None


def test_a_header_and_a_query_signature_together_are_malformed() -> None:
    presigned = presigned_get()
    both = presigned.with_header("Authorization", describe_training_job().header("Authorization"))
    assert _refused(both).kind == "malformed"


def test_an_unsigned_amz_header_fails() -> None:
    """An x-amz-* header outside the signature could steer a replayed request."""
    error = _refused(put_object().with_header("x-amz-acl", "public-read"))
    assert error.kind == "bad_signature"
    assert "x-amz-acl" in error.message


def test_a_crafted_host_cannot_move_the_path() -> None:
    received = invoke_endpoint()
    assert _refused(received.with_header("Host", f"{HOST}/endpoints")).kind == "malformed"
    assert _refused(received.with_header("Host", "[::1")).kind == "malformed"
    assert _refused(received.with_header("Host", "127.0.0.1:5001")).kind == "bad_signature"
    assert _refused(received.with_header("Host", None)).kind == "bad_signature"


def test_an_old_or_future_signature_is_expired() -> None:
    received = describe_training_job()
    signed = received.signed_at
    assert received.check(now=signed + timedelta(minutes=15))
    assert received.check(now=signed - timedelta(minutes=15))
    late = _refused(received, now=signed + timedelta(minutes=16))
    assert late.kind == "expired"
    assert late.code_for("sagemaker") == "InvalidSignatureException"
    assert late.code_for("s3") == "RequestTimeTooSkewed"
    assert late.message_for("s3") == ("The difference between the request time and the current "
                                      "time is too large.")
    stamp = signed.strftime("%Y%m%dT%H%M%SZ")
    assert re.fullmatch(rf"Signature expired: {stamp} is now earlier than \d{{8}}T\d{{6}}Z "
                        r"\(\d{8}T\d{6}Z - 15 min\.\)", late.message)
    early = _refused(received, now=(signed - timedelta(minutes=16)).replace(tzinfo=None))
    assert early.kind == "expired"
    assert early.message.startswith(f"Signature not yet current: {stamp}")


def test_a_presigned_url_expires() -> None:
    received = presigned_get(expires=60)
    assert received.check(now=received.signed_at + timedelta(seconds=60))
    error = _refused(received, now=received.signed_at + timedelta(seconds=61))
    assert error.kind == "expired"
    assert error.code_for("s3") == "AccessDenied"
    assert error.message == "Request has expired"


def test_a_presigned_url_for_another_service_signs_its_body() -> None:
    """Outside S3 a presigned request's payload line is the body's hash, not UNSIGNED-PAYLOAD
    (botocore presigns STS for the operation's method, POST, with the form moved to the
    query)."""
    url = _client("sts").generate_presigned_url("get_caller_identity")
    received = _received("POST", url, {}, b"")
    assert received.check().service == "sts"
    assert _refused(replace(received, body=b"Action=GetSessionToken")).kind == "bad_signature"


def test_a_date_at_the_end_of_time_is_merely_not_yet_valid() -> None:
    received = presigned_get(expires=604800)
    stamp = received.signed_at.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    far = replace(received, target=received.target.replace(stamp, "99991231T235959Z")
                  .replace(day, "99991231"))
    error = _refused(far)
    assert (error.kind, error.message) == ("expired", "Request is not yet valid")


def test_a_tampered_presigned_url_fails() -> None:
    received = presigned_get()
    assert _refused(replace(received, target=received.target.replace("plus", "minus"))).kind == \
        "bad_signature"
    longer = re.sub(r"X-Amz-Expires=\d+", "X-Amz-Expires=604800", received.target)
    assert _refused(replace(received, target=longer)).kind == "bad_signature"
    too_long = re.sub(r"X-Amz-Expires=\d+", "X-Amz-Expires=604801", received.target)
    assert _refused(replace(received, target=too_long)).kind == "malformed"


def test_a_signature_version_2_url_is_refused_with_a_hint() -> None:
    """boto3 presigns S3 URLs with SigV2 unless told otherwise: say how to fix that."""
    sigv2 = presigned_get(signature_version="s3")
    assert "AWSAccessKeyId=" in sigv2.target
    error = _refused(sigv2)
    assert error.kind == "malformed"
    assert "s3v4" in error.message


def test_a_payload_hash_that_does_not_match_the_body_fails() -> None:
    received = put_object()
    other = hashlib.sha256(b"something else").hexdigest()
    error = _refused(received.with_header("X-Amz-Content-SHA256", other))
    assert error.kind == "payload_mismatch"
    assert error.code_for("sts") == "SignatureDoesNotMatch"
    assert _refused(received.with_header("X-Amz-Content-SHA256", "sha256!")).kind == \
        "payload_mismatch"
    # the header names what was signed: swapping in UNSIGNED-PAYLOAD changes the signature
    assert _refused(received.with_header("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")).kind == \
        "bad_signature"


def test_a_scope_date_other_than_the_request_date_is_malformed() -> None:
    received = describe_training_job()
    authorization = received.header("Authorization")
    day = received.signed_at.strftime("%Y%m%d")
    other = (received.signed_at - timedelta(days=1)).strftime("%Y%m%d")
    error = _refused(received.with_header("Authorization", authorization.replace(day, other)))
    assert error.kind == "malformed"
    assert error.status == 400
    assert error.code_for("s3") == "AuthorizationHeaderMalformed"
    assert error.code_for("sagemaker") == "IncompleteSignatureException"


@pytest.mark.parametrize("change", [
    lambda a: a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"),
    lambda a: a.replace("aws4_request", "aws4_reqest"),
    lambda a: re.sub(r"SignedHeaders=[^,]*", "SignedHeaders=content-type;x-amz-date", a),
    lambda a: re.sub(r", Signature=\w+", "", a),
    lambda a: a.replace("Signature=", "Signature=zz"),
    lambda a: a + ", Signature=" + "0" * 64,
    lambda a: "AWS AKIDEXAMPLE:c2lnbmF0dXJl",
    lambda a: "",
], ids=["algorithm", "terminator", "host unsigned", "no signature", "not hex", "twice",
        "sigv2", "empty"])
def test_a_malformed_authorization_header_is_malformed(change: Callable[[str], str]) -> None:
    received = describe_training_job()
    changed = received.with_header("Authorization", change(received.header("Authorization")))
    assert _refused(changed).kind == "malformed"
    with pytest.raises(AuthError):
        signing_scope(changed.headers, "")


def test_a_malformed_date_is_malformed() -> None:
    received = describe_training_job()
    assert _refused(received.with_header("X-Amz-Date", "2026-12-03T08:00:00Z")).kind == \
        "malformed"
    assert _refused(received.with_header("X-Amz-Date", None)).kind == "malformed"


# -- the error table -----------------------------------------------------------------------

CODES = {
    "s3": ["AccessDenied", "AuthorizationHeaderMalformed", "InvalidAccessKeyId",
           "SignatureDoesNotMatch", "RequestTimeTooSkewed", "XAmzContentSHA256Mismatch"],
    "sts": ["MissingAuthenticationToken", "IncompleteSignature", "InvalidClientTokenId",
            "SignatureDoesNotMatch", "SignatureDoesNotMatch", "SignatureDoesNotMatch"],
    "sagemaker": ["MissingAuthenticationTokenException", "IncompleteSignatureException",
                  "UnrecognizedClientException", "InvalidSignatureException",
                  "InvalidSignatureException", "InvalidSignatureException"],
    "logs": ["MissingAuthenticationTokenException", "IncompleteSignatureException",
             "UnrecognizedClientException", "InvalidSignatureException",
             "InvalidSignatureException", "InvalidSignatureException"],
}
KINDS: list[AuthFailure] = ["missing", "malformed", "unknown_key", "bad_signature", "expired",
                            "payload_mismatch"]


@pytest.mark.parametrize("service", list(CODES))
def test_each_failure_has_the_services_code(service: str) -> None:
    assert [AuthError(kind, "m").code_for(service) for kind in KINDS] == CODES[service]


def test_an_unknown_failure_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="kind"):
        AuthError("nope", "m")  # type: ignore[arg-type]


# -- properties ----------------------------------------------------------------------------

KEY_IDS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=32)
SECRETS = st.text(min_size=1, max_size=64)
VISIBLE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
BODIES = st.binary(max_size=512)
SERVICES = st.sampled_from(["sagemaker", "logs", "sts", "s3"])


def _signed_by_botocore(key_id: str, secret: str, service: str, segment: str, value: str,
                        body: bytes) -> Received:
    signer = (S3SigV4Auth if service == "s3" else SigV4Auth)(
        BotocoreCredentials(key_id, secret), service, "eu-west-1")
    url = f"{ENDPOINT}/{quote(segment, safe='')}/x?q={quote(value, safe='')}"
    request = AWSRequest("PUT", url, data=body, headers={"X-Amz-Meta-Note": value,
                                                         "Content-Type": "text/plain"})
    signer.add_auth(request)
    return _received(request.method, request.url, request.headers, request.body)


@settings(max_examples=60, deadline=None)
@given(KEY_IDS, SECRETS, SERVICES, st.text(min_size=1, max_size=20), VISIBLE, BODIES)
def test_whatever_botocore_signs_verifies(key_id: str, secret: str, service: str, segment: str,
                                          value: str, body: bytes) -> None:
    received = _signed_by_botocore(key_id, secret, service, segment, value, body)
    scope = received.check({key_id: secret})
    assert (scope.access_key_id, scope.region, scope.service) == (key_id, "eu-west-1", service)


@settings(max_examples=60, deadline=None)
@given(KEY_IDS, SECRETS, SERVICES, st.binary(min_size=1, max_size=256), st.data())
def test_any_change_of_one_body_byte_fails(key_id: str, secret: str, service: str, body: bytes,
                                           data: st.DataObject) -> None:
    received = _signed_by_botocore(key_id, secret, service, "p", "v", body)
    index = data.draw(st.integers(0, len(body) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]))
    changed = body[:index] + bytes([byte]) + body[index + 1:]
    with pytest.raises(AuthError) as caught:
        replace(received, body=changed).check({key_id: secret})
    assert caught.value.kind == ("payload_mismatch" if service == "s3" else "bad_signature")


PREFIXED = st.builds(lambda tail: "AWS4-HMAC-SHA256 " + tail, st.text(max_size=200))
CREDENTIALED = st.builds(
    lambda parts, rest: "AWS4-HMAC-SHA256 Credential=" + "/".join(parts) + rest,
    st.lists(st.text(max_size=12), max_size=6), st.text(max_size=120))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), PREFIXED, CREDENTIALED), st.text(max_size=40),
       st.text(max_size=60), st.text(max_size=30))
def test_garbage_is_only_ever_an_auth_error(authorization: str, date: str, query: str,
                                            host: str) -> None:
    headers = {"Authorization": authorization, "X-Amz-Date": date, "Host": host}
    with pytest.raises(AuthError):
        verify("POST", f"/?{query}", headers, b"{}", KEYS)
    try:
        scope = signing_scope(headers, query)
    except AuthError:
        return
    assert scope is None or isinstance(scope, Scope)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), st.text(max_size=60))
def test_garbage_queries_are_only_ever_auth_errors(query: str, target: str) -> None:
    with pytest.raises(AuthError):
        verify("GET", f"{target}?{query}", {"Host": HOST}, b"", KEYS)


# -- credentials ---------------------------------------------------------------------------

def test_generated_credentials_have_the_shape_of_aws_keys() -> None:
    made = [Credentials.generate() for _ in range(200)]
    for creds in made:
        assert re.fullmatch(r"LOCL[A-Z0-9]{16}", creds.access_key_id)
        assert re.fullmatch(r"[A-Za-z0-9+/]{40}", creds.secret_access_key)
    assert len({c.access_key_id for c in made}) == len(made)
    assert len({c.secret_access_key for c in made}) == len(made)
    assert made[0].secret_access_key not in repr(made[0])
