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
