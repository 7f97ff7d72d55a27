"""toolkit.formats.parquet: tables, numeric arrays, row-group streaming, corrupt input."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toolkit.formats.errors import FormatError
from toolkit.formats.parquet import (
    encode_parquet,
    iter_parquet_batches,
    read_parquet,
    read_parquet_array,
    table_to_array,
)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_array_round_trip_with_nan_inf_and_extremes() -> None:
    info = np.finfo(np.float32)
    array = np.array([[1.5, np.nan], [np.inf, -np.inf], [info.max, info.smallest_subnormal]],
                     dtype=np.float32)
    body = encode_parquet(array)
    table = read_parquet(body)
    assert table.column_names == ["0", "1"] and table.num_rows == 3
    np.testing.assert_array_equal(read_parquet_array(body), array)


def test_one_dimensional_array_is_one_column() -> None:
    np.testing.assert_array_equal(read_parquet_array(encode_parquet(np.arange(4))),
                                  np.arange(4, dtype=np.float32).reshape(4, 1))


def test_mixed_numeric_columns_and_nulls() -> None:
    table = pa.table({"i": pa.array([1, None, 3], pa.int64()),
                      "b": pa.array([True, False, None]),
                      "f": pa.array([0.5, 1.5, 2.5], pa.float64())})
    array = read_parquet_array(encode_parquet(table), dtype=np.float64)
    expected = np.array([[1, 1, 0.5], [np.nan, 0, 1.5], [3, np.nan, 2.5]])
    np.testing.assert_array_equal(array, expected)


def test_non_numeric_column_is_named() -> None:
    body = encode_parquet({"x": np.arange(2.0), "name": np.array(["a", "é"])})
    assert read_parquet(body).column("name").to_pylist() == ["a", "é"]
    with pytest.raises(FormatError, match="column 'name' has type string") as info:
        read_parquet_array(body, source="req")
    assert info.value.source == "req"


def test_paths_and_streams(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.float64).reshape(6, 2)
    path = tmp_path / "part-0.parquet"
    path.write_bytes(encode_parquet(array))
    np.testing.assert_array_equal(read_parquet_array(path, dtype=np.float64), array)
    np.testing.assert_array_equal(read_parquet_array(str(path), dtype=np.float64), array)
    with path.open("rb") as stream:
        np.testing.assert_array_equal(read_parquet_array(stream, dtype=np.float64), array)
    with pytest.raises(FileNotFoundError):
        read_parquet(tmp_path / "missing.parquet")


def test_batches_follow_row_groups_and_match_whole_read(tmp_path: Path) -> None:
    array = np.arange(1000, dtype=np.float32).reshape(500, 2)
    body = encode_parquet(array, row_group_rows=128)
    path = tmp_path / "data.parquet"
    path.write_bytes(body)
    for source in (path, io.BytesIO(body), body):
        batches = list(iter_parquet_batches(source, batch_rows=100))
        assert all(batch.num_rows <= 100 for batch in batches)
        streamed = np.concatenate([table_to_array(batch) for batch in batches])
        np.testing.assert_array_equal(streamed, read_parquet_array(body))


def test_corrupt_input_is_a_format_error(tmp_path: Path) -> None:
    body = encode_parquet(np.arange(10.0))
    for bad in (b"", b"PAR1", b"not parquet at all", body[:-10], body[:20] + body[30:]):
        with pytest.raises(FormatError) as info:
            read_parquet(bad, source="req.parquet")
        assert info.value.source == "req.parquet"
        with pytest.raises(FormatError):
            list(iter_parquet_batches(bad))
    path = tmp_path / "broken.parquet"
    path.write_bytes(body[:-10])
    with pytest.raises(FormatError) as from_path:
        read_parquet(path)
    assert from_path.value.source == str(path)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        list(iter_parquet_batches(encode_parquet(np.arange(3.0)), batch_rows=0))
    with pytest.raises(ValueError):
        encode_parquet(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        read_parquet_array(encode_parquet(np.arange(3.0)), dtype=np.int64)


@FUZZ
@given(hnp.arrays(np.float64, st.tuples(st.integers(0, 20), st.integers(1, 4)),
                  elements=st.floats()),
       st.integers(1, 7))
def test_round_trip_and_streaming_property(array: np.ndarray, batch_rows: int) -> None:
    body = encode_parquet(array, row_group_rows=5)
    whole = read_parquet_array(body, dtype=np.float64)
    np.testing.assert_array_equal(whole, array)
    batches = [table_to_array(b, dtype=np.float64)
               for b in iter_parquet_batches(body, batch_rows=batch_rows)]
    streamed = np.concatenate(batches) if batches else np.empty((0, array.shape[1]))
    np.testing.assert_array_equal(streamed, array)


def _read_or_format_error(body: bytes) -> None:
    with contextlib.suppress(FormatError):
        read_parquet_array(body)
    try:
        for batch in iter_parquet_batches(body, batch_rows=3):
            table_to_array(batch)
    except FormatError:
        pass


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(body: bytes) -> None:
    _read_or_format_error(body)
    _read_or_format_error(b"PAR1" + body + b"PAR1")


@FUZZ
@given(st.data())
def test_mutations_and_truncations_never_crash(data: st.DataObject) -> None:
    body = bytearray(encode_parquet({"a": np.arange(8.0), "b": np.arange(8)}, row_group_rows=3))
    for _ in range(data.draw(st.integers(1, 4))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    _read_or_format_error(bytes(body[:data.draw(st.integers(0, len(body)))]))
