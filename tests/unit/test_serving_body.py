"""Reading request bodies under the payload limit."""

from __future__ import annotations

import io

import pytest

from toolkit.serving.body import payload_limit, read_body
from toolkit.serving.errors import BadRequest, PayloadTooLarge


class Exploding(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("the body must not be read")


def test_default_limit_is_6_mib() -> None:
    assert payload_limit(6) == 6291456
    assert payload_limit(0) is None


def test_declared_length_over_the_limit_never_reads() -> None:
    with pytest.raises(PayloadTooLarge):
        read_body({"CONTENT_LENGTH": "11", "wsgi.input": Exploding()}, 10)


def test_declared_length_reads_exactly() -> None:
    stream = io.BytesIO(b"hello world")
    assert read_body({"CONTENT_LENGTH": "5", "wsgi.input": stream}, 10) == b"hello"
    assert read_body({"CONTENT_LENGTH": "0", "wsgi.input": Exploding()}, 10) == b""


def test_chunked_body_is_counted_while_read() -> None:
    assert read_body({"wsgi.input": io.BytesIO(b"x" * 10)}, 10) == b"x" * 10
    with pytest.raises(PayloadTooLarge, match="chunked"):
        read_body({"wsgi.input": io.BytesIO(b"x" * (200 * 1024))}, 100 * 1024)
    assert len(read_body({"wsgi.input": io.BytesIO(b"x" * 200_000)}, None)) == 200_000


def test_bad_content_length() -> None:
    with pytest.raises(BadRequest):
        read_body({"CONTENT_LENGTH": "-1", "wsgi.input": io.BytesIO()}, 10)
