"""Accept negotiation and Content-Type parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolkit.serving.errors import BadRequest, HTTPError, NotAcceptable, UnsupportedMediaType
from toolkit.serving.negotiation import DEFAULT_ACCEPT, negotiate, parse_content_type

OFFERED = ["application/json", "text/csv", "application/x-npy"]


@pytest.mark.parametrize(("header", "default", "expected"), [
    (None, None, DEFAULT_ACCEPT),
    ("", "text/csv", "text/csv"),
    ("*/*", "text/csv", "text/csv"),
    ("*/*;q=0.8", "application/x-npy", "application/x-npy"),
    ("text/csv", None, "text/csv"),
    ("TEXT/CSV", None, "text/csv"),
    ("application/json; charset=utf-8", None, "application/json"),
    ("text/csv;q=0.5, application/x-npy;q=0.9", None, "application/x-npy"),
    ("text/csv, application/json", "text/csv", "text/csv"),  # tie: the default wins
    ("text/*", None, "text/csv"),
    ("application/json;q=0, */*;q=0.1", None, "text/csv"),
    ("image/png, */*;q=0.1", "application/json", "application/json"),
])
def test_negotiate(header: str | None, default: str | None, expected: str) -> None:
    assert negotiate(header, OFFERED, default=default) == expected


@pytest.mark.parametrize("header", ["image/png", "text/csv;q=0", "garbage", ";;,,"])
def test_negotiate_refuses_with_406(header: str) -> None:
    with pytest.raises(NotAcceptable) as info:
        negotiate(header, OFFERED)
    assert info.value.status_code == 406


def test_custom_output_takes_the_clients_favourite_concrete_type() -> None:
    assert negotiate("image/png;q=0.4, text/x-mine", None) == "text/x-mine"
    assert negotiate("*/*", None, default="text/csv") == "text/csv"
    with pytest.raises(NotAcceptable):
        negotiate("image/*", None, default="text/csv")


@pytest.mark.parametrize(("value", "mime", "params"), [
    ("text/csv", "text/csv", {}),
    ("Text/CSV; label_size=1; charset=utf-8", "text/csv", {"label_size": "1",
                                                         "charset": "utf-8"}),
    ("application/json;charset=UTF-8", "application/json", {"charset": "UTF-8"}),
])
def test_parse_content_type(value: str, mime: str, params: dict[str, str]) -> None:
    parsed = parse_content_type(value)
    assert (parsed.mime, parsed.params) == (mime, params)
    assert str(parsed) == mime


def test_missing_content_type_is_415_and_malformed_is_400() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_content_type(None)
    with pytest.raises(UnsupportedMediaType):
        parse_content_type("  ")
    for bad in ["csv", "text/", "*/*", "a/b/c"]:
        with pytest.raises(BadRequest):
            parse_content_type(bad)


@given(st.text(max_size=80))
def test_any_header_text_yields_a_type_or_an_http_error(text: str) -> None:
    try:
        assert "/" in negotiate(text, OFFERED)
    except HTTPError as exc:
        assert exc.status_code == 406
    try:
        assert "/" in parse_content_type(text).mime
    except HTTPError as exc:
        assert exc.status_code in (400, 415)


def test_negotiator_remembers_each_header_pair_and_raises_fresh_errors() -> None:
    from toolkit.serving.negotiation import Negotiator

    negotiator = Negotiator(OFFERED, default=None, decodable=["application/json"])
    assert negotiator.resolve("application/json", "text/csv") == "text/csv"
    assert negotiator.resolve("application/json", "text/csv") == "text/csv"
    errors = []
    for _ in range(2):
        with pytest.raises(NotAcceptable) as info:
            negotiator.resolve("application/json", "image/png")
        errors.append(info.value)
    assert errors[0] is not errors[1]  # never one exception object shared between threads
    with pytest.raises(UnsupportedMediaType, match="'text/csv' is not supported"):
        negotiator.resolve("text/csv", None)  # the Content-Type is checked before Accept
    with pytest.raises(BadRequest):
        negotiator.resolve("csv", "text/csv")
    info = negotiator.cache_info()
    assert (info.hits, info.misses) == (2, 4)


def test_negotiator_cache_is_bounded_and_skips_huge_headers() -> None:
    from toolkit.serving.negotiation import CACHEABLE_HEADER_CHARS, Negotiator

    negotiator = Negotiator(None, default="text/csv", decodable=None, maxsize=4)
    for i in range(20):
        assert negotiator.resolve(None, f"text/x-{i}") == f"text/x-{i}"
    assert negotiator.cache_info().currsize == 4
    huge = "text/x-big, " + "a" * CACHEABLE_HEADER_CHARS
    assert negotiator.resolve(None, huge) == "text/x-big"
    assert negotiator.cache_info().currsize == 4


def test_parse_content_type_gives_each_caller_its_own_params() -> None:
    first = parse_content_type("text/csv; label_size=1")
    first.params["label_size"] = "changed"
    assert parse_content_type("text/csv; label_size=1").params == {"label_size": "1"}


@given(st.one_of(st.none(), st.text(max_size=40)), st.one_of(st.none(), st.text(max_size=60)))
def test_negotiator_agrees_with_the_uncached_functions(content_type: str | None,
                                                      accept: str | None) -> None:
    from toolkit.serving.negotiation import Negotiator

    negotiator = Negotiator(OFFERED, default="text/csv", decodable=OFFERED)

    def direct() -> str:
        mime = parse_content_type(content_type).mime
        if mime not in OFFERED:
            raise UnsupportedMediaType("x")
        return negotiate(accept, OFFERED, default="text/csv")

    for _ in range(2):  # a miss, then a hit
        try:
            expected: str | int = direct()
        except HTTPError as exc:
            expected = exc.status_code
        try:
            got: str | int = negotiator.resolve(content_type, accept)
        except HTTPError as exc:
            got = exc.status_code
        assert got == expected
