"""toolkit.formats.jsonlines (and the shared bounded line splitter in toolkit.formats.lines)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.formats.errors import FormatError
from toolkit.formats.jsonlines import encode_jsonlines, iter_jsonlines, read_jsonlines
from toolkit.formats.lines import iter_line_blocks, iter_lines

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read, like a pipe or socket."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self._step if size < 0 else min(size, self._step)
        chunk = self._data[self._pos:self._pos + size]
        self._pos += len(chunk)
        return chunk


class Endless(io.RawIOBase):
    """Never sends a newline; counts what was read so the test can prove the bound."""

    def __init__(self) -> None:
        self.delivered = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.delivered += size
        return b"x" * size


# ---- lines ------------------------------------------------------------------------------------

def test_lines_numbering_crlf_and_final_line() -> None:
    assert list(iter_lines(b"a\r\nb\n\nc")) == [(1, b"a"), (2, b"b"), (3, b""), (4, b"c")]
    assert list(iter_lines(b"")) == []
    assert list(iter_lines(b"a\rb\n")) == [(1, b"a\rb")]  # a lone CR is data, not a break


def test_lines_same_result_for_any_chunking() -> None:
    body = b"one\r\ntwo\n\nthree\nfour"
    expected = list(iter_lines(body))
    for step in (1, 2, 3, 5, 100):
        assert list(iter_lines(Trickle(body, step), chunk_bytes=step)) == expected


def test_blocks_carry_their_first_line_number() -> None:
    blocks = list(iter_line_blocks(b"a\nb\nc\nd", chunk_bytes=3))
    # chunks "a\nb" "\nc\n" "d" give blocks "a\n", "b\nc\n", "d"
    assert [(b.first_line, b.data) for b in blocks] == [(1, b"a\n"), (2, b"b\nc\n"), (4, b"d")]
    assert b"".join(b.data for b in blocks) == b"a\nb\nc\nd"


def test_line_limit_stops_reading_an_endless_stream() -> None:
    stream = Endless()
    with pytest.raises(FormatError) as info:
        list(iter_lines(stream, max_line_bytes=1000, chunk_bytes=64))
    assert info.value.line == 1
    assert stream.delivered <= 1000 + 64


def test_line_limit_counts_lines_spanning_chunks() -> None:
    assert list(iter_lines(b"x" * 10 + b"\n", max_line_bytes=10, chunk_bytes=4)) == [(1, b"x" * 10)]
    with pytest.raises(FormatError) as info:
        list(iter_lines(b"ok\n" + b"x" * 11 + b"\n", max_line_bytes=10, chunk_bytes=4))
    assert info.value.line == 2


# ---- jsonlines --------------------------------------------------------------------------------

def test_read_values_skips_blank_lines_and_bom() -> None:
    body = b'\xef\xbb\xbf{"a": 1}\r\n\n  \n[1, 2]\n"\xc3\xa9"\n3.5\nnull'
    assert read_jsonlines(body) == [{"a": 1}, [1, 2], "é", 3.5, None]


@pytest.mark.parametrize(("body", "line", "fragment"), [
    (b'{"a": 1}\n{"a": \n', 2, "invalid JSON"),
    (b'1\n\n2 3\n', 3, "Extra data"),
    (b'1\n"\xff"\n', 2, "invalid UTF-8"),
    (b'1\n[NaN]\n', 2, "NaN is not valid JSON"),
    (b'1\n' + b"[" * 100000 + b"\n", 2, "nested too deeply"),
    (b'1\n' + b"9" * 5000 + b"\n", 2, "invalid JSON"),
    (b'1\n\xef\xbb\xbf2\n', 2, "invalid JSON"),  # a BOM is only accepted at the start
])
def test_errors_carry_line_numbers(body: bytes, line: int, fragment: str) -> None:
    with pytest.raises(FormatError) as info:
        read_jsonlines(body, source="req")
    assert info.value.line == line and info.value.source == "req"
    assert fragment in str(info.value)


def test_nan_allowed_on_request() -> None:
    values = read_jsonlines(b"[NaN, Infinity]\n", allow_nan=True)
    assert np.isnan(values[0][0]) and values[0][1] == float("inf")
    assert encode_jsonlines([float("nan")], allow_nan=True) == b"NaN\n"
    with pytest.raises(ValueError):
        encode_jsonlines([float("nan")])


def test_max_line_bytes_is_configurable() -> None:
    with pytest.raises(FormatError, match="longer than the limit of 5 bytes"):
        read_jsonlines(b'"abcdef"\n', max_line_bytes=5)
    assert read_jsonlines(b'"abc"\n', max_line_bytes=5) == ["abc"]


def test_encode_numpy_unicode_and_surrogates() -> None:
    body = encode_jsonlines([np.arange(3), {"x": np.float32(1.5)}, "é\u2028", "\ud800", "a\nb"])
    assert body.count(b"\n") == 5
    assert read_jsonlines(body) == [[0, 1, 2], {"x": 1.5}, "é\u2028", "\ud800", "a\nb"]
    assert encode_jsonlines([]) == b""
    with pytest.raises(TypeError):
        encode_jsonlines([object()])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(st.lists(JSON, max_size=8), st.booleans())
def test_round_trip(items: list, crlf: bool) -> None:
    body = encode_jsonlines(items)
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    assert read_jsonlines(body) == items
    assert list(iter_jsonlines(Trickle(body, 3), chunk_bytes=4)) == items


def _parse_or_format_error(body: bytes) -> None:
    try:
        whole = read_jsonlines(body)
    except FormatError as exc:
        with pytest.raises(FormatError) as again:
            list(iter_jsonlines(Trickle(body, 2), chunk_bytes=3))
        assert again.value.line == exc.line
        return
    assert list(iter_jsonlines(Trickle(body, 2), chunk_bytes=3)) == whole


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(body: bytes) -> None:
    _parse_or_format_error(body)


@FUZZ
@given(st.lists(JSON, min_size=1, max_size=4), st.data())
def test_mutations_and_truncations_never_crash(items: list, data: st.DataObject) -> None:
    body = bytearray(encode_jsonlines(items))
    for _ in range(data.draw(st.integers(0, 4))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    _parse_or_format_error(bytes(body[:data.draw(st.integers(0, len(body)))]))


def test_error_line_is_exact_in_a_long_stream() -> None:
    body = b"".join(json.dumps({"i": i}).encode() + b"\n" for i in range(2000)) + b"{oops}\n"
    with pytest.raises(FormatError) as info:
        list(iter_jsonlines(Trickle(body, 1000), chunk_bytes=777))
    assert info.value.line == 2001
