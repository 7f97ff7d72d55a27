"""Parquet (``application/x-parquet``) via pyarrow, which is optional (``optml[parquet]``).

pyarrow is imported only when a function here is called, so the toolkit (and images without
Parquet data) do not pay for it; without it the call raises ImportError naming the extra.
Every pyarrow failure on the *input* (bad magic, corrupt footer or pages, truncation) becomes a
:class:`FormatError` naming the source.

Array conversion policy (``read_parquet_array``/``table_to_array``): integer, floating, decimal
and boolean columns become columns of a 2-D float array; nulls become NaN; any other column type
(strings, lists, timestamps...) is an error naming the column, so nothing is silently dropped.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from toolkit.formats.errors import FormatError

if TYPE_CHECKING:
    import pyarrow

__all__ = ["encode_parquet", "iter_parquet_batches", "read_parquet", "read_parquet_array",
           "table_to_array"]

#: Rows per batch yielded by :func:`iter_parquet_batches` unless told otherwise.
DEFAULT_BATCH_ROWS = 65536

ParquetSource = bytes | bytearray | memoryview | BinaryIO | str | os.PathLike[str]


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow  # optional dependency: imported on use
        import pyarrow.parquet
    except ImportError as exc:  # pragma: no cover - the dev environment has pyarrow
        raise ImportError("Parquet support needs pyarrow: pip install 'optml[parquet]'") from exc
    return pyarrow, pyarrow.parquet


def _open(data: ParquetSource) -> Any:
    if isinstance(data, (bytes, bytearray, memoryview)):
        pa, _ = _pyarrow()
        return pa.BufferReader(bytes(data))
    if isinstance(data, (str, os.PathLike)):
        return str(Path(data))
    return data


def _source_name(data: ParquetSource, source: str | None) -> str:
    if source is not None:
        return source
    if isinstance(data, (str, os.PathLike)):
        return str(data)
    return "<stream>"


def _bad(exc: BaseException, name: str) -> FormatError:
    return FormatError(f"not a valid Parquet file: {exc}", source=name)


def _input_errors() -> tuple[type[BaseException], ...]:
    pa, _ = _pyarrow()
    # ArrowException covers ArrowInvalid/IOError/NotImplementedError/...; pyarrow also lets a
    # few plain ValueError/OSError/IndexError through from its Python layer on corrupt footers.
    return (pa.ArrowException, ValueError, OSError, IndexError, KeyError, EOFError,
            OverflowError, MemoryError)


def read_parquet(data: ParquetSource, *, source: str | None = None,
                 columns: list[str] | None = None) -> pyarrow.Table:
    """Read a whole Parquet body, stream or file into a ``pyarrow.Table``."""
    _, pq = _pyarrow()
    name = _source_name(data, source)
    if isinstance(data, (str, os.PathLike)) and not Path(data).is_file():
        raise FileNotFoundError(str(data))
    try:
        table = pq.read_table(_open(data), columns=columns, use_threads=False)
        table.validate(full=True)
        _ = table.schema.names  # corrupt metadata can hold names that are not UTF-8
        return table
    except _input_errors() as exc:
        raise _bad(exc, name) from None


def table_to_array(table: pyarrow.Table | pyarrow.RecordBatch, *, source: str = "<stream>",
                   dtype: Any = np.float32) -> np.ndarray:
    """Numeric columns → 2-D array ``(rows, columns)`` in column order; nulls become NaN."""
    pa, _ = _pyarrow()
    resolved = np.dtype(dtype)
    if resolved.kind != "f":
        raise ValueError(f"Parquet arrays are floating point; dtype {resolved} is not")
    types = pa.types
    out = np.empty((table.num_rows, table.num_columns), dtype=resolved, order="F")
    try:
        names = table.schema.names
    except UnicodeDecodeError as exc:
        raise FormatError(f"column name is not UTF-8: {exc}", source=source) from None
    for position, name in enumerate(names):
        kind = table.schema.types[position]
        if not (types.is_integer(kind) or types.is_floating(kind) or types.is_boolean(kind)
                or types.is_decimal(kind) or types.is_null(kind)):
            raise FormatError(f"column {name!r} has type {kind}, not a number", source=source)
        try:
            values = table.column(position).cast(pa.float64(), safe=False)
            out[:, position] = values.to_numpy(zero_copy_only=False)
        except pa.ArrowException as exc:
            raise FormatError(f"column {name!r}: {exc}", source=source) from None
    return np.ascontiguousarray(out)


def read_parquet_array(data: ParquetSource, *, source: str | None = None,
                       dtype: Any = np.float32) -> np.ndarray:
    """Read Parquet and convert every (numeric) column into one 2-D array."""
    name = _source_name(data, source)
    return table_to_array(read_parquet(data, source=name), source=name, dtype=dtype)


def iter_parquet_batches(path_or_stream: ParquetSource, *, batch_rows: int = DEFAULT_BATCH_ROWS,
                         source: str | None = None,
                         columns: list[str] | None = None) -> Iterator[pyarrow.RecordBatch]:
    """Yield ``pyarrow.RecordBatch`` es of at most ``batch_rows`` rows, one row group at a time.

    Memory stays around one row group plus one batch, whatever the file size. Concatenating the
    batches gives the same table as :func:`read_parquet`. Use :func:`table_to_array` on each
    batch for numpy arrays.
    """
    _, pq = _pyarrow()
    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    name = _source_name(path_or_stream, source)
    errors = _input_errors()
    try:
        parquet_file = pq.ParquetFile(_open(path_or_stream))
    except errors as exc:
        raise _bad(exc, name) from None
    with parquet_file:
        batches = parquet_file.iter_batches(batch_size=batch_rows, columns=columns,
                                            use_threads=False)
        while True:
            try:
                batch = next(batches)
                batch.validate(full=True)
                _ = batch.schema.names
            except StopIteration:
                return
            except errors as exc:
                raise _bad(exc, name) from None
            yield batch


def encode_parquet(array_or_table: Any, *, compression: str = "snappy",
                   row_group_rows: int | None = None) -> bytes:
    """Encode a ``pyarrow.Table``, a mapping ``{column: 1-D array}``, or a 1-D/2-D array.

    Array columns are named ``"0"``, ``"1"``, ... (a 1-D array is one column ``"0"``).
    """
    pa, pq = _pyarrow()
    table = array_or_table
    if isinstance(table, Mapping):
        table = pa.table({str(key): np.asarray(value) for key, value in table.items()})
    elif not isinstance(table, pa.Table):
        values = np.asarray(table)
        if values.ndim == 1:
            values = values.reshape(-1, 1)
        if values.ndim != 2:
            raise ValueError(f"Parquet arrays must be 1-D or 2-D, got {values.ndim}-D")
        table = pa.table({str(i): values[:, i] for i in range(values.shape[1])})
    out = io.BytesIO()
    pq.write_table(table, out, compression=compression, row_group_size=row_group_rows)
    return out.getvalue()
