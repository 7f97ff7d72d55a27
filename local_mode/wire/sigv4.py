"""AWS Signature Version 4, checked on the server side of the local wire API.

The server listens on 127.0.0.1, but loopback is no boundary: every local user, and every web page
a browser opens (a form POST, a DNS-rebound name), can reach it, and what it does on request is
start containers. So it answers only requests signed with credentials it knows, the way the
service does, and unchanged SDK code keeps working because SDKs sign every request anyway.

The canonical request, string to sign and signature are computed by botocore's own signer, not by
code of ours: the canonicalisation rules (path normalisation for most services but not S3, header
value trimming, the key derivation chain) are then the very code boto3, the SageMaker SDK and the
AWS CLI ran when they signed. Three things are ours, and say why where they are: the signed
headers are exactly those the request names (botocore's own choice would drop ``user-agent`` or
``expect`` that another SDK may have signed), the canonical query string is rebuilt from the
decoded parameters (as the specification defines it, whatever escaping the client put on the
wire), and the payload line is decided here (see below).

Payload. An ``x-amz-content-sha256`` header carrying a SHA-256 is what the client signed, and it
must match the body (else ``payload_mismatch``). ``UNSIGNED-PAYLOAD`` and the ``STREAMING-*``
values are accepted as the signed strings they are, so such a request's body is not covered by
its signature: the chunk signatures of an ``aws-chunked`` body are not verified here. Without the
header the payload line is the body's SHA-256 (the JSON and query protocols, and presigned URLs
of services other than S3). A presigned S3 URL signs ``UNSIGNED-PAYLOAD``.

Beyond the signature: every ``x-amz-*`` header the request carries must be among those signed (as
S3 requires of every request), the signing time must be within 15 minutes of the server's (a
presigned URL: within its ``X-Amz-Expires``), and the credential scope's date must be the signing
time's.

Not supported: Signature Version 2 (``AWS AKID:sig`` and ``?AWSAccessKeyId=``; refused as
malformed with a hint, since boto3's ``generate_presigned_url`` for S3 makes such URLs unless the
client is configured with ``signature_version="s3v4"``), SigV4a, POST policy uploads, and session
tokens (``X-Amz-Security-Token`` is signed like any header but not checked against anything).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol, get_args
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials as BotocoreCredentials

AuthFailure = Literal["missing", "malformed", "unknown_key", "bad_signature", "expired",
                      "payload_mismatch"]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
MAX_SKEW = timedelta(minutes=15)
"""How far a header-signed request's time may be from the server's, either way (the service's
limit)."""
MAX_PRESIGNED_EXPIRES = 7 * 24 * 3600
"""The longest ``X-Amz-Expires`` S3 accepts: a week."""
ACCESS_KEY_PREFIX = "LOCL"
"""Every generated access key id starts so: the shape of an AWS key, never an AWS key."""

_ACCESS_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_TIMESTAMP = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_DATE = re.compile(r"[0-9]{8}")
_NAME = re.compile(r"[A-Za-z0-9._-]+")  # a region or service in a credential scope
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")  # an RFC 9110 token, lowercased
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_EXPIRES = re.compile(r"[0-9]{1,7}")
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_STREAMING_PREFIX = "STREAMING-"
_QUERY_AUTH = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
               "X-Amz-SignedHeaders", "X-Amz-Signature")
_QUERY_MARKERS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
_HEADER_AUTH = ("Credential", "SignedHeaders", "Signature")
_SIGV2_HINT = ("Signature Version 2 is not supported; sign with AWS4-HMAC-SHA256 (for boto3's "
               "S3 presigned URLs: botocore.config.Config(signature_version='s3v4')).")


class Headers(Protocol):
    """What :func:`verify` reads headers from: any Mapping, or a multi-valued header object
    (werkzeug's) whose ``items()`` repeats a name per value. Names match in any case."""

    def items(self) -> Iterable[tuple[str, str]]: ...


@dataclass(frozen=True)
class Credentials:
    """An access key id and its secret, as the server issues them to its clients."""

    access_key_id: str
    secret_access_key: str = field(repr=False)

    @classmethod
    def generate(cls) -> Credentials:
        """Fresh random credentials shaped like AWS's (a 20-character upper-case id, a
        40-character secret), so tools that check the shape accept them; the ``LOCL`` prefix
        keeps the id from ever being a real AWS key, or being mistaken for one in a log."""
        key = ACCESS_KEY_PREFIX + "".join(secrets.choice(_ACCESS_KEY_ALPHABET)
                                          for _ in range(20 - len(ACCESS_KEY_PREFIX)))
        secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
        return cls(key, secret)


@dataclass(frozen=True)
class Scope:
    """The credential scope a request is signed for: who, on which day, where and for what."""

    access_key_id: str
    date: str
    region: str
    service: str


_DEFAULT_CODES: dict[str, str] = {
    "missing": "MissingAuthenticationTokenException",
    "malformed": "IncompleteSignatureException",
    "unknown_key": "UnrecognizedClientException",
    "bad_signature": "InvalidSignatureException",
    "expired": "InvalidSignatureException",
    "payload_mismatch": "InvalidSignatureException",
}
_CODES: dict[str, dict[str, str]] = {
    "s3": {
        "missing": "AccessDenied",
        "malformed": "AuthorizationHeaderMalformed",
        "unknown_key": "InvalidAccessKeyId",
        "bad_signature": "SignatureDoesNotMatch",
        "expired": "RequestTimeTooSkewed",
        "payload_mismatch": "XAmzContentSHA256Mismatch",
    },
    "sts": {
        "missing": "MissingAuthenticationToken",
        "malformed": "IncompleteSignature",
        "unknown_key": "InvalidClientTokenId",
        "bad_signature": "SignatureDoesNotMatch",
        "expired": "SignatureDoesNotMatch",
        "payload_mismatch": "SignatureDoesNotMatch",
    },
}


class AuthError(Exception):
    """A request the server will not run: what ``kind`` of failure, and a message in the
    service's words. The error code depends on the protocol that answers it
    (:meth:`code_for`); so, for S3, do a few messages (:meth:`message_for`) and one status
    (:meth:`status_for`).

    ``status`` is 400 for a malformed signature (the service's ``IncompleteSignature`` and S3's
    ``AuthorizationHeaderMalformed`` are client errors) and 403 otherwise. A failed signature
    also carries the ``canonical_request`` and ``string_to_sign`` the server computed, which is
    what a client author needs to find the difference (S3 returns both in its error).
    """

    def __init__(self, kind: AuthFailure, message: str, *, s3_message: str | None = None,
                 presigned: bool = False, canonical_request: str | None = None,
                 string_to_sign: str | None = None) -> None:
        if kind not in get_args(AuthFailure):
            raise ValueError(f"unknown authentication failure kind {kind!r}")
        super().__init__(message)
        self.kind: AuthFailure = kind
        self.message = message
        self.s3_message = s3_message
        self.presigned = presigned
        self.canonical_request = canonical_request
        self.string_to_sign = string_to_sign
        self.status = 400 if kind == "malformed" else 403

    def code_for(self, service: str) -> str:
        """The error code ``service`` (a signing name: ``s3``, ``sts``, ``sagemaker``,
        ``logs``, ...) answers this failure with."""
        if service == "s3" and self.presigned and self.kind == "expired":
            return "AccessDenied"  # S3's answer to an expired presigned URL
        return _CODES.get(service, _DEFAULT_CODES)[self.kind]

    def message_for(self, service: str) -> str:
        """The message ``service`` answers with (S3 words some failures its own way)."""
        if service == "s3" and self.s3_message is not None:
            return self.s3_message
        return self.message

    def status_for(self, service: str) -> int:
        """The HTTP status ``service`` answers with (S3 calls a payload mismatch a bad
        request)."""
        if service == "s3" and self.kind == "payload_mismatch":
            return 400
        return self.status


@dataclass(frozen=True)
class _Claim:
    """What a request says about its own signature, parsed but not yet believed."""

    scope: Scope
    timestamp: str  # the signing time, ISO 8601 basic format
    signed_at: datetime
    signed_headers: tuple[str, ...]
    signature: str
    presigned: bool
    expires: int = 0  # seconds a presigned URL stays valid


class SignedRequest:
    """A request's signature, read once: its header fields and query are parsed a single
    time, then the server asks of the same reading where it is addressed (:attr:`scope`),
    whether its key, time and signed headers admit it before any body is read (:meth:`admit`)
    and whether the signature holds (:meth:`verify`).

    ``headers``: case-insensitive access (any Mapping, or an object with ``items()`` that
    repeats a name per value). ``query``: the raw query string. A present but unparsable
    signature raises AuthError("malformed") here.
    """

    def __init__(self, headers: Headers | Mapping[str, str], query: str) -> None:
        self.fields = _fields(headers)
        self.query = query
        self.pairs = _query_pairs(query)
        self.claim = _claim(self.fields, self.pairs)

    @property
    def scope(self) -> Scope | None:
        """The credential scope claimed (None: unsigned). Nothing is verified by it."""
        return None if self.claim is None else self.claim.scope

    @property
    def presigned(self) -> bool:
        """Signed in the query string (a presigned URL) rather than the Authorization header."""
        return self.claim is not None and self.claim.presigned

    @property
    def declared_sha256(self) -> str | None:
        """The body's SHA-256 the request says it signed (hex, lower-case), if it names one:
        S3 requests do, so their signature can be checked before the body is read, and the
        body against that hash while it streams."""
        values = self.fields.get("x-amz-content-sha256")
        value = ",".join(values) if values else ""
        return value.lower() if _SHA256.fullmatch(value) else None

    def admit(self, keys: Mapping[str, str], *, now: datetime | None = None) -> Scope:
        """Everything :meth:`verify` checks that needs no body: a signature is there and well
        formed, its key is one of ``keys``, its time is current and every ``x-amz-*`` header
        is signed. The server runs it before reading a body, so nobody without a key makes it
        read (or spool) one."""
        claim, _secret = self._admitted(keys, now)
        return claim.scope

    def verify(self, method: str, path: str, body: bytes | None, keys: Mapping[str, str], *,
               now: datetime | None = None, body_sha256: str | None = None) -> Scope:
        """Check the signature; return its scope or raise AuthError.

        path: the request-target's path exactly as received (percent-encoding untouched).
        body: the raw body, or None when the caller hashed it itself and passes body_sha256
        (hex) instead (the server streams big S3 uploads to a temp file while hashing). When
        both are given, body_sha256 is used. now: the server's time (aware, or naive UTC).
        """
        if body is None and body_sha256 is None:
            raise ValueError("verify needs the body or its SHA-256")
        claim, secret = self._admitted(keys, now)
        fields = self.fields
        payload = _payload_line(claim, fields, body, body_sha256)
        signed_fields = _signed_fields(claim, fields)
        host = ",".join(signed_fields["host"])
        url = _url(host, path, self.query)
        canonical_query = _canonical_query(self.pairs, presigned=claim.presigned)
        _require_text(method, url, *(v for values in signed_fields.values() for v in values))

        request = AWSRequest(method=method, url=url, data=b"" if body is None else body)
        for name, values in signed_fields.items():
            for value in values:
                request.headers[name] = value  # repeated values stay repeated: joined with ","
        request.context["timestamp"] = claim.timestamp
        signer_class = _S3Signer if claim.scope.service == "s3" else _Signer
        signer = signer_class(BotocoreCredentials(claim.scope.access_key_id, secret),
                              claim.scope.service, claim.scope.region,
                              payload=payload, canonical_query=canonical_query)
        canonical_request = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical_request)
        expected = signer.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, claim.signature.lower()):
            raise AuthError(
                "bad_signature",
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method. Consult the "
                "service documentation for details.",
                s3_message="The request signature we calculated does not match the signature "
                           "you provided. Check your key and signing method.",
                presigned=claim.presigned, canonical_request=canonical_request,
                string_to_sign=string_to_sign)
        return claim.scope

    def _admitted(self, keys: Mapping[str, str],
                  now: datetime | None) -> tuple[_Claim, str]:
        """The request's claim and its key's secret, once the claim is one the keys admit."""
        claim = self.claim
        if claim is None:
            raise AuthError("missing", "Request is missing Authentication Token")
        secret = keys.get(claim.scope.access_key_id)
        if secret is None:
            raise AuthError("unknown_key", "The security token included in the request is "
                                           "invalid.",
                            s3_message="The AWS Access Key Id you provided does not exist in "
                                       "our records.")
        _check_time(claim, now)
        _check_all_amz_headers_signed(claim, self.fields)
        return claim, secret


def signing_scope(headers: Headers | Mapping[str, str], query: str) -> Scope | None:
    """The credential scope a request claims, or None if unsigned (see
    :class:`SignedRequest`)."""
    return SignedRequest(headers, query).scope


def verify(method: str, raw_target: str, headers: Headers | Mapping[str, str],
           body: bytes | None, keys: Mapping[str, str], *, now: datetime | None = None,
           body_sha256: str | None = None) -> Scope:
    """Check a request's SigV4 signature in one call (``raw_target``: path and query as
    received); see :meth:`SignedRequest.verify`."""
    path, _, query = raw_target.partition("?")
    return SignedRequest(headers, query).verify(method, path, body, keys, now=now,
                                                body_sha256=body_sha256)


class _Signer(SigV4Auth):
    """botocore's SigV4 signer, told what the request says it signed rather than choosing."""

    def __init__(self, credentials: BotocoreCredentials, service: str, region: str, *,
                 payload: str, canonical_query: str) -> None:
        super().__init__(credentials, service, region)
        self._payload = payload
        self._canonical_query = canonical_query

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        # exactly the SignedHeaders list: the request carries those and no others
        chosen = HTTPHeaders()
        for name, value in request.headers.items():
            chosen[name.lower()] = value
        return chosen

    def canonical_query_string(self, request: AWSRequest) -> str:
        return self._canonical_query

    def payload(self, request: AWSRequest) -> str:
        return self._payload


class _S3Signer(_Signer, S3SigV4Auth):
    """The same for S3, whose canonical path is the path as sent (not normalised)."""


def _fields(headers: Headers | Mapping[str, str]) -> dict[str, list[str]]:
    """The request's header values by lower-case name, repeats kept in order."""
    fields: dict[str, list[str]] = {}
    for name, value in headers.items():
        fields.setdefault(str(name).lower(), []).append(str(value))
    return fields


def _one(fields: Mapping[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise AuthError("malformed", f"The request has more than one {name!r} header.")
    return values[0]


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """The query's parameters as sent (still percent-encoded), empty pieces dropped."""
    _require_text(query)
    pairs = []
    for piece in query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((name, value))
    return pairs


def _claim(fields: Mapping[str, list[str]], pairs: list[tuple[str, str]]) -> _Claim | None:
    """The signature a request claims, or None when it claims none."""
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(unquote(name), []).append(unquote(value))
    authorization = _one(fields, "authorization")
    presigned = any(name in params for name in _QUERY_MARKERS)
    if authorization is not None and presigned:
        raise AuthError("malformed", "Only one auth mechanism allowed; only the X-Amz-Algorithm "
                                     "query parameter or the Authorization header should be "
                                     "specified.")
    if authorization is not None:
        return _header_claim(authorization, fields)
    if presigned:
        return _query_claim(params)
    if "AWSAccessKeyId" in params or "Signature" in params:
        raise AuthError("malformed", _SIGV2_HINT)
    return None


def _header_claim(authorization: str, fields: Mapping[str, list[str]]) -> _Claim:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        hint = _SIGV2_HINT if algorithm == "AWS" else f"sign with {ALGORITHM}."
        raise AuthError("malformed", f"Unsupported Authorization Type {algorithm[:40]!r}: {hint}")
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, equals, value = part.strip().partition("=")
        if not equals or name not in _HEADER_AUTH:
            raise AuthError("malformed", f"Authorization header component {part.strip()[:60]!r} "
                                         f"is not one of {', '.join(_HEADER_AUTH)}.")
        if name in params:
            raise AuthError("malformed", f"Authorization header has {name!r} twice.")
        params[name] = value.strip()
    absent = [name for name in _HEADER_AUTH if name not in params]
    if absent:
        raise AuthError("malformed", " ".join(f"Authorization header requires {name!r} "
                                              f"parameter." for name in absent))
    timestamp, signed_at = _header_time(fields)
    return _Claim(_scope(params["Credential"], timestamp), timestamp, signed_at,
                  _signed_header_names(params["SignedHeaders"]),
                  _signature(params["Signature"]), presigned=False)


def _query_claim(params: Mapping[str, list[str]]) -> _Claim:
    values: dict[str, str] = {}
    for name in _QUERY_AUTH:
        given = params.get(name, [])
        if len(given) != 1:
            problem = "is missing" if not given else "is given more than once"
            raise AuthError("malformed", f"Query-string authentication requires the {name} "
                                         f"parameter exactly once; it {problem}.", presigned=True)
        values[name] = given[0]
    if values["X-Amz-Algorithm"] != ALGORITHM:
        raise AuthError("malformed", f"X-Amz-Algorithm only supports {ALGORITHM!r}.",
                        presigned=True)
    expires = values["X-Amz-Expires"]
    if not _EXPIRES.fullmatch(expires) or not 1 <= int(expires) <= MAX_PRESIGNED_EXPIRES:
        raise AuthError("malformed", f"X-Amz-Expires must be a whole number of seconds from 1 to "
                                     f"{MAX_PRESIGNED_EXPIRES} (a week); got {expires[:20]!r}.",
                        presigned=True)
    timestamp = values["X-Amz-Date"]
    return _Claim(_scope(values["X-Amz-Credential"], timestamp), timestamp,
                  _parse_timestamp(timestamp), _signed_header_names(values["X-Amz-SignedHeaders"]),
                  _signature(values["X-Amz-Signature"]), presigned=True, expires=int(expires))


def _header_time(fields: Mapping[str, list[str]]) -> tuple[str, datetime]:
    """The signing time of a header-signed request: ``X-Amz-Date``, else the HTTP ``Date``."""
    amz_date = _one(fields, "x-amz-date")
    if amz_date is not None:
        return amz_date, _parse_timestamp(amz_date)
    date = _one(fields, "date")
    if date is None:
        raise AuthError("malformed", "Authorization header requires existence of either a "
                                     "'X-Amz-Date' or a 'Date' header.")
    try:
        parsed = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError, OverflowError):
        raise AuthError("malformed", f"The Date header {date[:40]!r} is not an HTTP "
                                     f"date.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    parsed = parsed.astimezone(timezone.utc)
    return parsed.strftime(_TIMESTAMP_FORMAT), parsed


def _parse_timestamp(value: str) -> datetime:
    problem = f"Date must be in ISO-8601 'basic format' (YYYYMMDD'T'HHMMSS'Z'); got {value[:40]!r}."
    if not _TIMESTAMP.fullmatch(value):
        raise AuthError("malformed", problem)
    try:
        return datetime.strptime(value, _TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise AuthError("malformed", problem) from None


def _scope(credential: str, timestamp: str) -> Scope:
    """The scope in a ``Credential``: ``<key>/<YYYYMMDD>/<region>/<service>/aws4_request``."""
    parts = credential.split("/")
    if len(parts) != 5 or not parts[0]:
        raise AuthError("malformed", f"Credential {credential[:80]!r} is not "
                                     f"<access key>/<date>/<region>/<service>/{TERMINATOR}.")
    key, date, region, service, terminator = parts
    if not _DATE.fullmatch(date):
        raise AuthError("malformed", f"Credential should be scoped to a valid date (YYYYMMDD), "
                                     f"not {date[:20]!r}.")
    if date != timestamp[:8]:
        raise AuthError("malformed", f"Date in Credential scope does not match YYYYMMDD from "
                                     f"ISO-8601 version of date from HTTP: {date!r} != "
                                     f"{timestamp[:8]!r}, from {timestamp[:40]!r}.")
    if not _NAME.fullmatch(region):
        raise AuthError("malformed", f"Credential should be scoped to a valid region, not "
                                     f"{region[:40]!r}.")
    if not _NAME.fullmatch(service):
        raise AuthError("malformed", f"Credential should be scoped to a valid service, not "
                                     f"{service[:40]!r}.")
    if terminator != TERMINATOR:
        raise AuthError("malformed", f"Credential should be scoped with a valid terminator: "
                                     f"{TERMINATOR!r}, not {terminator[:40]!r}.")
    return Scope(key, date, region, service)


def _signed_header_names(value: str) -> tuple[str, ...]:
    names = tuple(name.lower() for name in value.split(";"))
    bad = [name for name in names if not _HEADER_NAME.fullmatch(name)]
    if bad:
        raise AuthError("malformed", f"SignedHeaders {value[:80]!r} is not a ';'-separated list "
                                     f"of header names.")
    if "host" not in names:
        raise AuthError("malformed", "'Host' must be a signed header.")
    return names


def _signature(value: str) -> str:
    if not _SIGNATURE.fullmatch(value):
        raise AuthError("malformed", f"Signature {value[:80]!r} is not 64 hexadecimal digits.")
    return value


def _check_time(claim: _Claim, now: datetime | None) -> None:
    now = datetime.now(timezone.utc) if now is None else now
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    age = now - claim.signed_at  # a difference, never a sum: a year-9999 date must not overflow
    if claim.presigned:
        if age > timedelta(seconds=claim.expires):
            raise AuthError("expired", "Request has expired", presigned=True)
        if -age > MAX_SKEW:
            raise AuthError("expired", "Request is not yet valid", presigned=True)
        return
    too_far = "The difference between the request time and the current time is too large."
    if age > MAX_SKEW:
        raise AuthError("expired", f"Signature expired: {claim.timestamp} is now earlier than "
                                   f"{_basic(now - MAX_SKEW)} ({_basic(now)} - 15 min.)",
                        s3_message=too_far)
    if -age > MAX_SKEW:
        raise AuthError("expired", f"Signature not yet current: {claim.timestamp} is still "
                                   f"later than {_basic(now + MAX_SKEW)} ({_basic(now)} + "
                                   f"15 min.)", s3_message=too_far)


def _basic(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(_TIMESTAMP_FORMAT)


def _check_all_amz_headers_signed(claim: _Claim, fields: Mapping[str, list[str]]) -> None:
    """Refuse ``x-amz-*`` headers outside the signature, as S3 does: they steer what a request
    does (the JSON protocol's operation is ``X-Amz-Target``), so a replayed request must not be
    able to gain one. Every SDK signs them."""
    unsigned = sorted(name for name in fields
                      if name.startswith("x-amz-") and name not in claim.signed_headers)
    if unsigned:
        raise AuthError("bad_signature", f"There were headers present in the request which were "
                                         f"not signed: {', '.join(unsigned)}",
                        presigned=claim.presigned)


def _payload_line(claim: _Claim, fields: Mapping[str, list[str]], body: bytes | None,
                  body_sha256: str | None) -> str:
    """The canonical request's last line (see the module docstring)."""
    declared = fields.get("x-amz-content-sha256")  # signed: _check_all_amz_headers_signed
    if declared:
        value = ",".join(declared)
        if value == _UNSIGNED_PAYLOAD or value.startswith(_STREAMING_PREFIX):
            if claim.scope.service != "s3":  # only S3 may leave its body out of the signature
                raise AuthError("payload_mismatch", f"x-amz-content-sha256 {value} is only "
                                                    "accepted by S3; sign the body.",
                                presigned=claim.presigned)
            return value
        if not _SHA256.fullmatch(value):
            raise AuthError("payload_mismatch", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                                                "STREAMING-..., or a valid sha256 value.",
                            presigned=claim.presigned)
        if value.lower() != _body_sha256(body, body_sha256):
            raise AuthError("payload_mismatch", "The provided 'x-amz-content-sha256' header does "
                                                "not match what was computed.",
                            presigned=claim.presigned)
        return value
    if claim.presigned and claim.scope.service == "s3":
        return _UNSIGNED_PAYLOAD
    return _body_sha256(body, body_sha256)


def _body_sha256(body: bytes | None, body_sha256: str | None) -> str:
    if body_sha256 is not None:
        return body_sha256.lower()
    assert body is not None
    return hashlib.sha256(body).hexdigest()


def _signed_fields(claim: _Claim, fields: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The values of the headers the request signed, each of which it must carry."""
    absent = [name for name in claim.signed_headers if not fields.get(name)]
    if absent:
        raise AuthError("bad_signature", f"The request does not carry the signed header(s) "
                                         f"{', '.join(absent)}.", presigned=claim.presigned)
    return {name: fields[name] for name in claim.signed_headers}


def _url(host: str, path: str, query: str) -> str:
    """``http://<Host><target>`` for botocore, which takes the canonical path from a URL; the
    URL must split back into exactly the path received, or a crafted Host (or target) could
    make the signed path differ from the one the server acts on."""
    if not path.startswith("/"):
        raise AuthError("malformed", "The request-target must be a path beginning with '/'.")
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    try:
        split = urlsplit(url)
    except ValueError:
        split = None
    if split is None or split.path != path or split.query != query or split.fragment:
        raise AuthError("malformed", f"The Host header {host[:80]!r} and request-target do not "
                                     f"form a URL.")
    return url


def _canonical_query(pairs: list[tuple[str, str]], *, presigned: bool) -> str:
    """The canonical query string: every parameter (a presigned URL's but its signature),
    decoded and encoded again as the specification says (RFC 3986 unreserved characters kept,
    upper-case hex), sorted by name, then value. Decoding first makes the result independent
    of how the client escaped the query on the wire, which is how the service reads it."""
    encoded = []
    for name, value in pairs:
        if presigned and unquote(name) == "X-Amz-Signature":
            continue
        encoded.append((_encode(name), _encode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(encoded))


def _encode(text: str) -> str:
    return quote(unquote_to_bytes(text), safe="-_.~")


def _require_text(*values: Any) -> None:
    """Text the signer will UTF-8 encode must be encodable (a lone surrogate is not)."""
    for value in values:
        try:
            str(value).encode("utf-8")
        except UnicodeEncodeError:
            raise AuthError("malformed", "The request carries text that is not valid "
                                         "Unicode.") from None
