"""Reading a request body under the payload limit, without trusting the client.

A declared ``Content-Length`` over the limit is refused before a single body byte is read (the
client may be streaming gigabytes); a chunked body has no length, so it is counted while read
and refused as soon as it passes the limit, never buffered whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, BinaryIO

from toolkit.serving.errors import BadRequest, PayloadTooLarge

CHUNK = 64 * 1024
MIB = 1024 * 1024


def payload_limit(max_payload_mb: int) -> int | None:
    """Bytes allowed per request; ``SAGEMAKER_MAX_PAYLOAD_IN_MB=0`` means unlimited (streaming)."""
    return max_payload_mb * MIB if max_payload_mb > 0 else None


def declared_length(environ: Mapping[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH")
    if raw is None or str(raw).strip() == "":
        return None
    text = str(raw).strip()
    if not text.isdigit():
        raise BadRequest(f"Content-Length {raw!r} is not a non-negative integer")
    return int(text)


def check_declared_length(environ: Mapping[str, Any], limit: int | None) -> None:
    """Raise 413 from the header alone, before the body is touched."""
    length = declared_length(environ)
    if limit is not None and length is not None and length > limit:
        raise PayloadTooLarge(_too_large(length, limit))


def _too_large(size: int, limit: int) -> str:
    return (f"request body of {size} bytes is over the limit of {limit} bytes "
            f"({limit // MIB} MiB; SAGEMAKER_MAX_PAYLOAD_IN_MB)")


def read_body(environ: Mapping[str, Any], limit: int | None) -> bytes:
    """The whole body, or 413 as soon as it is known to be over ``limit``."""
    return read_checked_body(environ, checked_length(environ, limit), limit)


def checked_length(environ: Mapping[str, Any], limit: int | None) -> int | None:
    """The declared length (None: chunked), 413 from the header alone when over ``limit``; for
    callers that check early and read later without parsing the header twice."""
    length = declared_length(environ)
    if limit is not None and length is not None and length > limit:
        raise PayloadTooLarge(_too_large(length, limit))
    return length


def read_checked_body(environ: Mapping[str, Any], length: int | None,
                      limit: int | None) -> bytes:
    """Read the body whose declared ``length`` :func:`checked_length` returned."""
    stream: BinaryIO = environ["wsgi.input"]
    if length is not None:
        return stream.read(length) if length else b""
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if limit is not None and total > limit:
            raise PayloadTooLarge(f"chunked request body is over the limit of {limit} bytes "
                                  f"({limit // MIB} MiB; SAGEMAKER_MAX_PAYLOAD_IN_MB)")
        parts.append(chunk)
