"""Numeric CSV as the built-in-style algorithms use it (``text/csv``): no header, labels first.

Grammar (documented in docs/formats.md): rows separated by ``\\n`` or ``\\r\\n``; cells separated
by ``,``; every row has the same number of cells; a cell is an ASCII number that Python's
``float()`` accepts, without ``_`` digit separators, optionally surrounded by spaces/tabs and
optionally quoted (``"1.5"``, RFC 4180). ``nan``, ``inf`` and ``-inf`` (any case, also
``infinity``) are values; a finite literal too large for ``dtype`` is an error, not ``inf``.
Empty trailing lines are ignored; an empty line anywhere else is an error.

Why two parsers: the common case (unquoted numbers) goes through numpy's C tokenizer
(``np.loadtxt``) a chunk at a time, which is several times faster than a Python ``float()`` per
cell. Anything the fast path does not accept verbatim -- quotes, lone ``\\r``, odd bytes, a
parse error, ``inf`` -- is handed to a small pure-Python reference parser that defines the grammar
and produces the precise :class:`FormatError` (line and column). The fast path is only ever
trusted when its result provably matches the reference (same row count, same column count, no
infinities), and a property test checks the two agree.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np

from toolkit.formats.errors import FormatError
from toolkit.formats.lines import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    ByteSource,
    LineBlock,
    iter_line_blocks,
    split_block,
)

__all__ = ["DEFAULT_BATCH_ROWS", "encode_csv", "iter_csv", "read_csv"]

#: Rows per batch yielded by :func:`iter_csv` unless told otherwise.
DEFAULT_BATCH_ROWS = 65536

CsvBatch = tuple[np.ndarray, "np.ndarray | None"]

# Bytes the C fast path may see. Quotes and lone CRs are left to the reference parser.
_FAST_BYTES = np.zeros(256, dtype=bool)
_FAST_BYTES[np.frombuffer(b"0123456789+-.eE,\n \tnNaAiIfFtTyY", dtype=np.uint8)] = True
_NUMBER = re.compile(rb"[ \t]*[0-9A-Za-z+\-.]+[ \t]*")
_BLANK = b" \t\r\n"


def _check_dtype(dtype: Any) -> np.dtype:
    resolved = np.dtype(dtype)
    if resolved.kind != "f":
        raise ValueError(f"CSV values are parsed as floating point; dtype {resolved} is not")
    return resolved


def _check_label_size(label_size: int) -> None:
    if isinstance(label_size, bool) or not isinstance(label_size, int) or label_size < 0:
        raise ValueError(f"label_size must be an integer >= 0, got {label_size!r}")


class _RowParser:
    """Turns blocks of lines into 2-D arrays, keeping the column count and blank-line state."""

    def __init__(self, source: str, dtype: np.dtype, label_size: int) -> None:
        self.source = source
        self.dtype = dtype
        self.label_size = label_size
        self.ncols: int | None = None
        # First line of a run of blank lines seen last: fine at the end, an error if data follows.
        # Only the number is kept, so a stream of nothing but newlines needs no memory.
        self._blank_from: int | None = None

    def feed(self, block: LineBlock) -> np.ndarray:
        """Parse one block; blank lines at its end only count as an error if data follows."""
        data = block.data
        body_end = len(data.rstrip(_BLANK))
        if body_end == 0:
            if self._blank_from is None:
                self._blank_from = block.first_line
            return self._empty()
        if self._blank_from is not None:
            raise FormatError("empty line" + self._expected(), source=self.source,
                              line=self._blank_from)
        cut = data.find(b"\n", body_end)
        if 0 <= cut < len(data) - 1:
            self._blank_from = block.first_line + data.count(b"\n", 0, cut + 1)
            block = LineBlock(block.first_line, data[:cut + 1])
        return self._parse(block)

    def _empty(self) -> np.ndarray:
        return np.empty((0, self.ncols or 0), dtype=self.dtype)

    def _parse(self, block: LineBlock) -> np.ndarray:
        fast = self._parse_fast(block.data)
        if fast is not None:
            if self.ncols is None:
                self._set_ncols(fast.shape[1], block.first_line)
            return fast
        return self._parse_reference(block)

    def _set_ncols(self, ncols: int, line: int) -> None:
        if ncols < self.label_size:
            raise FormatError(f"row has {ncols} columns, fewer than label_size={self.label_size}",
                              source=self.source, line=line)
        self.ncols = ncols

    def _parse_fast(self, data: bytes) -> np.ndarray | None:
        """numpy's C parser, or None when its answer cannot be trusted to match the grammar."""
        data = data.replace(b"\r\n", b"\n")
        if not _FAST_BYTES[np.frombuffer(data, dtype=np.uint8)].all():
            return None
        rows = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = np.loadtxt(io.BytesIO(data), delimiter=",", dtype=self.dtype,
                                    comments=None, quotechar=None, ndmin=2)
        except ValueError:
            return None
        if parsed.shape[0] != rows or (self.ncols is not None and parsed.shape[1] != self.ncols):
            return None  # loadtxt skipped a blank line or the width changed: let the reference say
        if np.isinf(parsed).any():
            return None  # either a real inf literal or an overflow; only the reference can tell
        return parsed

    def _parse_reference(self, block: LineBlock) -> np.ndarray:
        rows: list[list[float]] = []
        for line, raw in split_block(block):
            cells = raw.split(b",")
            if not raw.strip(b" \t"):
                raise FormatError("empty line" + self._expected(), source=self.source, line=line)
            if self.ncols is None:
                self._set_ncols(len(cells), line)
            elif len(cells) != self.ncols:
                raise FormatError(f"row has {len(cells)} columns, expected {self.ncols}",
                                  source=self.source, line=line)
            rows.append([self._cell(cell, line, column)
                         for column, cell in enumerate(cells, start=1)])
        return np.array(rows, dtype=self.dtype).reshape(len(rows), self.ncols or 0)

    def _expected(self) -> str:
        return f" (expected {self.ncols} columns)" if self.ncols is not None else ""

    def _cell(self, cell: bytes, line: int, column: int) -> float:
        text = cell.strip(b" \t")
        if text.startswith(b'"'):
            if len(text) < 2 or not text.endswith(b'"') or b'"' in text[1:-1]:
                raise FormatError(f"column {column}: malformed quoted cell {_show(cell)}",
                                  source=self.source, line=line)
            text = text[1:-1]
        if not _NUMBER.fullmatch(text) or b"_" in text:
            raise FormatError(f"column {column}: {_show(cell)} is not a number",
                              source=self.source, line=line)
        try:
            value = float(text)
        except ValueError:
            raise FormatError(f"column {column}: {_show(cell)} is not a number",
                              source=self.source, line=line) from None
        if value in (float("inf"), float("-inf")) and b"inf" not in text.lower():
            raise FormatError(f"column {column}: {_show(cell)} is out of range for float",
                              source=self.source, line=line)
        with np.errstate(over="ignore"):
            narrowed = self.dtype.type(value)
        if np.isinf(narrowed) and not np.isinf(value):
            raise FormatError(f"column {column}: {_show(cell)} is out of range for {self.dtype}",
                              source=self.source, line=line)
        return value


def _show(cell: bytes, limit: int = 40) -> str:
    text = repr(cell[:limit])[1:]
    return text + ("..." if len(cell) > limit else "")


def _split_labels(rows: np.ndarray, label_size: int) -> CsvBatch:
    if label_size == 0:
        return rows, None
    labels = rows[:, 0].copy() if label_size == 1 else np.ascontiguousarray(rows[:, :label_size])
    return np.ascontiguousarray(rows[:, label_size:]), labels


def iter_csv(stream: ByteSource, *, label_size: int = 1, source: str = "<stream>",
             dtype: Any = np.float32, batch_rows: int = DEFAULT_BATCH_ROWS,
             chunk_bytes: int = DEFAULT_CHUNK_BYTES,
             max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[CsvBatch]:
    """Stream ``(features, labels)`` batches of at most ``batch_rows`` rows with bounded memory.

    Memory is about one chunk plus one batch, whatever the input size. Labels are the first
    ``label_size`` columns: a 1-D array when ``label_size == 1``, 2-D when larger, ``None`` when 0.
    Every batch has the same number of columns; an empty input yields nothing.
    """
    _check_label_size(label_size)
    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    parser = _RowParser(source, _check_dtype(dtype), label_size)
    pending: list[np.ndarray] = []
    pending_rows = 0
    for block in iter_line_blocks(stream, source=source, max_line_bytes=max_line_bytes,
                                  chunk_bytes=chunk_bytes):
        rows = parser.feed(block)
        if not len(rows):
            continue
        pending.append(rows)
        pending_rows += len(rows)
        if pending_rows >= batch_rows:
            joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
            full = (len(joined) // batch_rows) * batch_rows
            for start in range(0, full, batch_rows):
                yield _split_labels(joined[start:start + batch_rows], label_size)
            rest = joined[full:]
            pending = [rest] if len(rest) else []
            pending_rows = len(rest)
    if pending_rows:
        yield _split_labels(np.concatenate(pending), label_size)


def read_csv(data: bytes | bytearray | memoryview | BinaryIO, *, label_size: int = 1,
             source: str = "<stream>", dtype: Any = np.float32,
             max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> CsvBatch:
    """Parse a whole CSV body or stream into ``(features, labels)``.

    ``features`` is 2-D ``(rows, columns - label_size)``; ``labels`` as in :func:`iter_csv`.
    An empty body gives zero rows (features shape ``(0, 0)``).
    """
    _check_label_size(label_size)
    resolved = _check_dtype(dtype)
    parser = _RowParser(source, resolved, label_size)
    parts = [parser.feed(block) for block in
             iter_line_blocks(data, source=source, max_line_bytes=max_line_bytes)]
    parts = [part for part in parts if len(part)]
    if parts:
        return _split_labels(np.concatenate(parts) if len(parts) > 1 else parts[0], label_size)
    empty = np.empty((0, 0), dtype=resolved)
    if label_size == 0:
        return empty, None
    shape = (0,) if label_size == 1 else (0, label_size)
    return empty, np.empty(shape, dtype=resolved)


def _as_rows(array: Any, name: str) -> np.ndarray:
    values = np.asarray(array)
    if values.dtype == np.bool_:
        values = values.astype(np.uint8)
    if values.dtype.kind not in "iuf" or (values.dtype.kind == "f" and values.dtype.itemsize > 8):
        raise TypeError(f"{name}: CSV holds integers and float16/32/64, not dtype {values.dtype}")
    if values.ndim == 0:
        return values.reshape(1, 1)
    if values.ndim == 1:
        return values.reshape(-1, 1)
    if values.ndim == 2:
        return values
    raise ValueError(f"{name}: CSV holds 1-D or 2-D arrays, got {values.ndim}-D")


def _cell_format(dtype: np.dtype) -> str:
    """printf format that round-trips ``dtype`` exactly when parsed back as that dtype.

    float64 uses Python's repr (shortest exact form). float16/32 use 9 significant digits, which
    is exact for float32 (the decimal is far enough from any rounding midpoint that parsing via
    float64 cannot double-round) and about three times faster than numpy's shortest-repr cast.
    """
    if dtype.kind in "iu":
        return "%d"
    return "%r" if dtype.itemsize == 8 else "%.9g"


def encode_csv(array: Any, *, labels: Any = None) -> bytes:
    """Encode a numeric array as CSV: 1-D gives one value per line, 2-D one row per line.

    Reading the bytes back with the same dtype gives the identical array (float32 included):
    float64 is written in its shortest exact form, float32 with 9 significant digits, integers
    exactly. NaN and infinities are written ``nan``, ``inf``, ``-inf``. ``labels`` (1-D or 2-D,
    same number of rows) become the first columns, so
    ``read_csv(encode_csv(x, labels=y), label_size=...)`` returns ``(x, y)``.
    """
    rows = _as_rows(array, "array")
    row_format = ",".join([_cell_format(rows.dtype)] * rows.shape[1])
    if labels is None:
        table: list[Any] = rows.tolist()
    else:
        label_rows = _as_rows(labels, "labels")
        if len(label_rows) != len(rows):
            raise ValueError(f"labels have {len(label_rows)} rows, array has {len(rows)}")
        label_format = ",".join([_cell_format(label_rows.dtype)] * label_rows.shape[1])
        row_format = f"{label_format},{row_format}" if rows.shape[1] else label_format
        pairs = zip(label_rows.tolist(), rows.tolist(), strict=True)
        table = [(*left, *right) for left, right in pairs]
    if not row_format:
        if len(rows):
            raise ValueError("CSV cannot represent rows with zero columns")
        return b""
    if not table:
        return b""
    lines = [row_format % tuple(row) for row in table]
    lines.append("")
    return "\n".join(lines).encode("ascii")
