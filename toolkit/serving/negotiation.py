"""Content-Type parsing and Accept negotiation, on Werkzeug's header parsers.

Two platform quirks shape this module: ``Accept`` often carries parameters such as
``; charset=utf-8`` that must not stop a match (Werkzeug would treat them as part of the type),
and a missing or ``*/*`` Accept means "the container's default" (``SAGEMAKER_DEFAULT_INVOCATIONS_
ACCEPT``), not "the first type the server happens to list".
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header, parse_options_header

from toolkit.serving.errors import (
    BadRequest,
    NotAcceptable,
    ServerError,
    UnsupportedMediaType,
)

DEFAULT_ACCEPT = "application/json"
"""Response type when neither the client nor ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` picks one."""
NEGOTIATION_CACHE_SIZE = 256
"""Distinct (Content-Type, Accept) pairs remembered per :class:`Negotiator`. Real traffic uses a
handful; the bound keeps a client that invents header values from growing memory."""
CACHEABLE_HEADER_CHARS = 512
"""Longer header pairs are negotiated every time rather than cached (each entry stays small)."""


@dataclass(frozen=True)
class MediaType:
    """A parsed ``type/subtype; k=v`` header value; ``mime`` is lower-case, params keep case."""

    mime: str
    params: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.mime


def parse_content_type(value: str | None) -> MediaType:
    """Parse a request ``Content-Type``: missing is 415 (nothing can decode an unnamed type),
    malformed is 400 naming the header.

    Clients repeat the same value on every request, so short values are parsed once (bounded
    LRU); each call still returns its own ``MediaType`` with its own ``params`` dict, because
    decoders receive that dict and may change it."""
    if value is not None and len(value) <= CACHEABLE_HEADER_CHARS:
        outcome = _parse_content_type_cached(value)
    else:
        outcome = _parse_content_type(value)
    if isinstance(outcome[0], str):
        return MediaType(outcome[0], dict(outcome[1]))
    error, message = outcome
    raise error(message)


def _parse_content_type(value: str | None) -> tuple[str, tuple[tuple[str, str], ...]] | \
        tuple[type[ServerError], str]:
    """The uncached parse: ``(mime, params)``, or the error as ``(class, message)``."""
    if value is None or not value.strip():
        return UnsupportedMediaType, "the request has no Content-Type header"
    mime, params = parse_options_header(value)
    mime = mime.strip().lower()
    kind, sep, sub = mime.partition("/")
    if not sep or not kind or not sub or "/" in sub or "*" in mime:
        return BadRequest, f"Content-Type {value!r} is not a media type like 'text/csv'"
    return mime, tuple(params.items())


_parse_content_type_cached = functools.lru_cache(maxsize=NEGOTIATION_CACHE_SIZE)(
    _parse_content_type)


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


class Negotiator:
    """Content-Type check plus Accept negotiation for one server, memoised per header pair.

    Parsing ``Accept`` with Werkzeug costs more than a no-op model's whole prediction, yet a
    client sends the same two headers on every request. The outcome of one (Content-Type,
    Accept) pair (a media type, or the 400/406/415 error) never changes for a given server
    configuration, so it is computed once and kept in a bounded LRU. Errors are remembered as
    (class, message) and raised as fresh exceptions, never shared between threads.
    """

    def __init__(self, offered: Sequence[str] | None, *, default: str | None,
                 decodable: Sequence[str] | None, maxsize: int = NEGOTIATION_CACHE_SIZE) -> None:
        """``offered``: encodable types (``None``: anything, for a user output_fn);
        ``decodable``: when set, a Content-Type outside it is 415 (toolkit input_fn only)."""
        self._offered = None if offered is None else tuple(offered)
        self._default = default
        self._decodable = None if decodable is None else frozenset(decodable)
        self._supported = None if decodable is None else ", ".join(decodable)
        self._cached = functools.lru_cache(maxsize=maxsize)(self._outcome)

    def resolve(self, content_type: str | None, accept: str | None) -> str:
        """The response media type for these request headers; raises the HTTP error otherwise."""
        if len(content_type or "") + len(accept or "") > CACHEABLE_HEADER_CHARS:
            outcome = self._outcome(content_type, accept)
        else:
            outcome = self._cached(content_type, accept)
        if isinstance(outcome, str):
            return outcome
        error, message = outcome
        raise error(message)

    def _outcome(self, content_type: str | None,
                 accept: str | None) -> str | tuple[type[ServerError], str]:
        try:
            if self._decodable is not None:
                mime = parse_content_type(content_type).mime
                if mime not in self._decodable:
                    raise UnsupportedMediaType(f"Content-Type {mime!r} is not supported; "
                                               f"supported: {self._supported}")
            return negotiate(accept, self._offered, default=self._default)
        except ServerError as exc:
            return type(exc), exc.message

    def cache_info(self) -> Any:
        """``functools`` cache statistics (hits, misses, currsize), for tests and debugging."""
        return self._cached.cache_info()
