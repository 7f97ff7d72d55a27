"""toolkit.formats.csv: grammar, errors with line numbers, streaming, round trips, fuzzing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toolkit.formats.csv import _RowParser, encode_csv, iter_csv, read_csv
from toolkit.formats.errors import FormatError
from toolkit.formats.lines import LineBlock

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


def test_labels_first_column_and_crlf() -> None:
    features, labels = read_csv(b"1,2,3\r\n4,5,6\r\n")
    assert features.dtype == np.float32
    np.testing.assert_array_equal(features, [[2, 3], [5, 6]])
    np.testing.assert_array_equal(labels, [1, 4])


def test_label_size_zero_and_two() -> None:
    features, labels = read_csv(b"1,2,3\n", label_size=0)
    assert labels is None
    np.testing.assert_array_equal(features, [[1, 2, 3]])
    features, labels = read_csv(b"1,2,3\n", label_size=2, dtype=np.float64)
    assert labels is not None and labels.shape == (1, 2) and features.shape == (1, 1)


def test_quoted_cells_whitespace_and_special_values() -> None:
    features, _ = read_csv(b'"1.5", 2 ,nan,-INF,Infinity\n', label_size=0)
    assert features[0, 0] == 1.5 and features[0, 1] == 2
    assert np.isnan(features[0, 2]) and features[0, 3] == -np.inf and features[0, 4] == np.inf


def test_trailing_blank_lines_ok_and_empty_input() -> None:
    features, labels = read_csv(b"1,2\n\n \r\n\n")
    assert features.shape == (1, 1) and labels is not None and labels.shape == (1,)
    features, labels = read_csv(b"")
    assert features.shape == (0, 0) and labels is not None and labels.shape == (0,)
    assert list(iter_csv(io.BytesIO(b"\n\n"))) == []


def test_no_final_newline() -> None:
    features, _ = read_csv(b"1,2\n3,4", label_size=0)
    np.testing.assert_array_equal(features, [[1, 2], [3, 4]])


@pytest.mark.parametrize(("body", "line", "fragment"), [
    (b"1,2\n3\n", 2, "1 columns, expected 2"),
    (b"1,2\n3,4,5\n", 2, "3 columns, expected 2"),
    (b"1,2\n\n3,4\n", 2, "empty line"),
    (b"1,2\n  \n3,4\n", 2, "empty line"),
    (b"1,2\n3,abc\n", 2, "column 2"),
    (b"1,2\n3,\n", 2, "is not a number"),
    (b"1,2\r\n3,4\r\n5,1_0\r\n", 3, "is not a number"),
    (b"1,2\n3,1e39\n", 2, "out of range for float32"),
    (b"1,2\n3,\"4\n", 2, "malformed quoted cell"),
    (b"1,2\n3\r4,5\n", 2, "is not a number"),
    (b"1,2\n0x10,1\n", 2, "is not a number"),
    (b"1,2\n\xc3\xa9,1\n", 2, "is not a number"),
])
def test_errors_name_source_and_line(body: bytes, line: int, fragment: str) -> None:
    with pytest.raises(FormatError) as info:
        read_csv(body, source="s3://bucket/train.csv")
    assert info.value.line == line and info.value.source == "s3://bucket/train.csv"
    assert fragment in str(info.value)
    assert f"line {line}" in str(info.value)


def test_fewer_columns_than_labels() -> None:
    with pytest.raises(FormatError, match="fewer than label_size=3"):
        read_csv(b"1,2\n", label_size=3)


def test_float64_overflow_and_bad_dtype() -> None:
    with pytest.raises(FormatError, match="out of range"):
        read_csv(b"1e400\n", dtype=np.float64, label_size=0)
    with pytest.raises(ValueError, match="floating point"):
        read_csv(b"1\n", dtype=np.int32)


def test_line_numbers_correct_across_stream_chunks() -> None:
    body = b"1,2\n" * 5000 + b"1,2,3\n"
    with pytest.raises(FormatError) as info:
        list(iter_csv(Trickle(body, 7), chunk_bytes=1000, batch_rows=64))
    assert info.value.line == 5001


def test_blank_line_spanning_chunks_is_reported_at_its_line() -> None:
    body = b"1,2\n" * 300 + b"\n" * 5 + b"3,4\n"
    with pytest.raises(FormatError) as info:
        list(iter_csv(io.BytesIO(body), chunk_bytes=64))
    assert info.value.line == 301


def test_line_length_limit() -> None:
    with pytest.raises(FormatError, match="longer than the limit"):
        list(iter_csv(io.BytesIO(b"1," * 1000), max_line_bytes=100))


def test_streaming_batches_match_whole_buffer() -> None:
    rng = np.random.default_rng(3)
    array = rng.standard_normal((1000, 5)).astype(np.float32)
    body = encode_csv(array)
    batches = list(iter_csv(Trickle(body, 333), batch_rows=128, chunk_bytes=500))
    assert [len(f) for f, _ in batches] == [128] * 7 + [104]
    features = np.concatenate([f for f, _ in batches])
    labels = np.concatenate([lab for _, lab in batches])
    whole_features, whole_labels = read_csv(body)
    np.testing.assert_array_equal(features, whole_features)
    np.testing.assert_array_equal(labels, whole_labels)


def test_encode_shapes_and_labels() -> None:
    assert encode_csv(np.array([1.5, 2.0])) == b"1.5\n2.0\n"
    assert encode_csv(np.array([1.5, 2.0], dtype=np.float32)) == b"1.5\n2\n"
    assert encode_csv(np.array([[1, 2], [3, 4]])) == b"1,2\n3,4\n"
    assert encode_csv(np.array([[0.5]]), labels=np.array([7])) == b"7,0.5\n"
    assert encode_csv(np.array([np.nan, np.inf, -np.inf])) == b"nan\ninf\n-inf\n"
    assert encode_csv(np.array([True, False])) == b"1\n0\n"
    assert encode_csv(np.zeros((0, 3))) == b""
    with pytest.raises(TypeError):
        encode_csv(np.array(["a"]))
    with pytest.raises(ValueError):
        encode_csv(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        encode_csv(np.zeros((2, 0)))


def test_huge_and_tiny_values_round_trip() -> None:
    info32 = np.finfo(np.float32)
    array = np.array([[info32.max, -info32.max, info32.tiny, info32.smallest_subnormal]],
                     dtype=np.float32)
    features, _ = read_csv(encode_csv(array), label_size=0)
    np.testing.assert_array_equal(features, array)
    info64 = np.finfo(np.float64)
    array64 = np.array([[info64.max, info64.smallest_subnormal, 0.1]])
    features64, _ = read_csv(encode_csv(array64), label_size=0, dtype=np.float64)
    np.testing.assert_array_equal(features64, array64)


@FUZZ
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
                  elements=st.floats(width=32)))
def test_round_trip_float32_exact(array: np.ndarray) -> None:
    features, labels = read_csv(encode_csv(array), label_size=0)
    assert labels is None
    np.testing.assert_array_equal(features, array)  # NaN compares equal here


@FUZZ
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=1, min_side=1, max_side=20),
                  elements=st.floats(min_value=-1e300, max_value=1e300)),
       st.booleans())
def test_round_trip_float64_with_labels(labels: np.ndarray, crlf: bool) -> None:
    features = np.column_stack([labels * 2, labels - 1])
    body = encode_csv(features, labels=labels)
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    got_features, got_labels = read_csv(body, dtype=np.float64)
    np.testing.assert_array_equal(got_features, features)
    np.testing.assert_array_equal(got_labels, labels)


def _reference(block: bytes, dtype: type = np.float32) -> np.ndarray | str:
    parser = _RowParser("<t>", np.dtype(dtype), 0)
    try:
        return parser._parse_reference(LineBlock(1, block))
    except FormatError as exc:
        return f"line {exc.line}"


CELLS = st.sampled_from([b"1", b"-2.5", b".5", b"1.", b"1e5", b"1E-3", b"+7", b"nan", b"-inf",
                         b"Infinity", b"1e39", b"e5", b"1e", b".", b"", b" 3 ", b"\t4", b"-",
                         b"infinit", b"nana", b"1.2.3", b"1 2", b"+-1", b"0012", b"-0"])


@FUZZ
@given(st.lists(st.lists(CELLS, min_size=1, max_size=4), min_size=1, max_size=6))
def test_fast_path_agrees_with_reference_parser(rows: list[list[bytes]]) -> None:
    """The numpy fast path may only answer when the pure-Python grammar gives the same result."""
    # a leading "0" column keeps every line non-blank (trailing blank lines are read_csv's rule)
    block = b"".join(b",".join([b"0", *row]) + b"\n" for row in rows)
    expected = _reference(block)
    try:
        got: np.ndarray | str = read_csv(block, label_size=0)[0]
    except FormatError as exc:
        got = f"line {exc.line}"
    if isinstance(expected, str):
        assert got == expected
    else:
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, expected)


VALID = (b"1,2,3\n4,5,6\n", b'"1",2\r\n3,"4"\r\n', b"0.5\n-1e3\nnan\n")


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_mutations_and_truncations_never_crash(valid: bytes, data: st.DataObject) -> None:
    body = bytearray(valid)
    for _ in range(data.draw(st.integers(0, 4))):
        position = data.draw(st.integers(0, len(body) - 1))
        body[position] = data.draw(st.integers(0, 255))
    body = body[:data.draw(st.integers(0, len(body)))]
    _parse_or_format_error(bytes(body))


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(body: bytes) -> None:
    _parse_or_format_error(body)


def _parse_or_format_error(body: bytes) -> None:
    try:
        whole = read_csv(body, label_size=0)[0]
    except FormatError:
        with pytest.raises(FormatError):
            list(iter_csv(Trickle(body, 3), label_size=0, chunk_bytes=5, batch_rows=2))
        return
    parts = [f for f, _ in iter_csv(Trickle(body, 3), label_size=0, chunk_bytes=5, batch_rows=2)]
    streamed = np.concatenate(parts) if parts else np.empty((0, 0), np.float32)
    np.testing.assert_array_equal(streamed.reshape(whole.shape), whole)
