"""Content-Type parsing and Accept negotiation, on Werkzeug's header parsers.

Two platform quirks shape this module: ``Accept`` often carries parameters such as
``; charset=utf-8`` that must not stop a match (Werkzeug would treat them as part of the type),
and a missing or ``*/*`` Accept means "the container's default" (``SAGEMAKER_DEFAULT_INVOCATIONS_
ACCEPT``), not "the first type the server happens to list".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header, parse_options_header

from toolkit.serving.errors import BadRequest, NotAcceptable, UnsupportedMediaType

DEFAULT_ACCEPT = "application/json"
"""Response type when neither the client nor ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` picks one."""


@dataclass(frozen=True)
class MediaType:
    """A parsed ``type/subtype; k=v`` header value; ``mime`` is lower-case, params keep case."""

    mime: str
    params: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.mime


def parse_content_type(value: str | None) -> MediaType:
    """Parse a request ``Content-Type``: missing is 415 (nothing can decode an unnamed type),
    malformed is 400 naming the header."""
    if value is None or not value.strip():
        raise UnsupportedMediaType("the request has no Content-Type header")
    mime, params = parse_options_header(value)
    mime = mime.strip().lower()
    kind, sep, sub = mime.partition("/")
    if not sep or not kind or not sub or "/" in sub or "*" in mime:
        raise BadRequest(f"Content-Type {value!r} is not a media type like 'text/csv'")
    return MediaType(mime, dict(params))


def _client_accept(header: str) -> MIMEAccept:
    """The client's Accept list with parameters other than ``q`` dropped and types lower-cased."""
    cleaned: list[tuple[str, float]] = []
    for value, quality in parse_accept_header(header):
        mime = parse_options_header(value)[0].strip().lower()
        kind, sep, sub = mime.partition("/")
        if sep and kind and sub and "/" not in sub:
            cleaned.append((mime, quality))
    return MIMEAccept(cleaned)


def _only_wildcards(accept: MIMEAccept) -> bool:
    return all(value == "*/*" for value, quality in accept if quality > 0)


def negotiate(accept_header: str | None, offered: Sequence[str] | None, *,
              default: str | None = None) -> str:
    """Pick the response media type.

    ``offered`` is what the server can encode; ``None`` means "anything" (a user ``output_fn``
    that may produce types the codec registry does not know), in which case the client's most
    preferred concrete type is returned. Missing, empty or wildcard-only Accept gives ``default``.
    Raises :class:`NotAcceptable` (406) when nothing the client accepts can be produced.
    """
    default = (default or DEFAULT_ACCEPT).strip().lower()
    if accept_header is None or not accept_header.strip():
        return default
    accept = _client_accept(accept_header)
    if not accept:
        raise NotAcceptable(f"Accept {accept_header!r} names no media type")
    if _only_wildcards(accept) and accept["*/*"] > 0:
        return default
    if offered is None:
        concrete = [(v, q) for v, q in accept if q > 0 and "*" not in v]
        if concrete:
            return max(concrete, key=lambda item: item[1])[0]
        offered = [default]
    ordered = [default] + [m for m in offered if m != default] if default in offered else \
        list(offered)
    match = accept.best_match(ordered)
    if match is None:
        raise NotAcceptable(
            f"none of the types in Accept {accept_header!r} can be produced; "
            f"supported: {', '.join(ordered)}")
    return match
