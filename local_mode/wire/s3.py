"""S3 for local mode's wire API: an embedded, in-memory store by default, or one the user names.

The embedded store is moto's S3 (a maintained, broadly compatible implementation) mounted as a
WSGI application behind the server's signature check, so ``s3://`` URIs in unchanged code work
without any other service and nobody without the credentials can read or write them. It lives as
long as the server process: it is a place to hand data to jobs and read their outputs, not a
store to keep them in (name a persistent S3-compatible server, or real S3, for that).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

from local_mode.errors import ValidationException
from local_mode.wire.faults import Fault

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

EMBEDDED = "embedded"
"""``--s3`` value for the store inside the server."""
AWS = "aws"
"""``--s3`` value for the real service (boto3's own endpoint resolution)."""


def is_endpoint_url(value: str) -> bool:
    """Whether ``value`` can be an S3 endpoint URL (``http(s)://host[:port]``)."""
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and \
        parts.path in ("", "/") and not parts.query


def check_store(value: str) -> str:
    """``value`` if it names a store (``embedded``, ``aws`` or an endpoint URL), else the
    ValidationException that says what would."""
    if value in (EMBEDDED, AWS) or is_endpoint_url(value):
        return value
    raise ValidationException(f"s3 {value!r} is not '{EMBEDDED}', '{AWS}' or the http(s) URL "
                              "of an S3-compatible server")


def embedded_app() -> WsgiApp:
    """moto's S3 as a WSGI application (imported here: moto takes a second to load, and only
    a server with the embedded store needs it). Only S3 is ever routed to it, signed or
    presigned, so it is moto's S3 application itself rather than its dispatcher, which would
    guess the service of a presigned URL from its path."""
    from moto.server import create_backend_app

    app: WsgiApp = create_backend_app("s3")
    return app


def error(fault: Fault, resource: str = "") -> Response:
    """``fault`` as S3 writes an error (XML ``<Error>``)."""
    return Response(f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>"
                    f"{escape(fault.code)}</Code><Message>{escape(fault.message)}</Message>"
                    f"<Resource>{escape(resource)}</Resource><RequestId>{uuid.uuid4()}"
                    "</RequestId></Error>",
                    status=fault.status, headers={"Content-Type": "application/xml"})
