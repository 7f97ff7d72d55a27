"""LibSVM / SVMlight text: ``label[:weight] [qid:N] index:value ... [# comment]``.

Policy (documented in docs/formats.md):

* Every non-blank line is one row; blank and comment-only lines are skipped but counted.
* Tokens are separated by spaces or tabs. The label is a number; ``:weight`` after it is an
  optional per-row weight -- if any row has one, every row must (a half-weighted file is almost
  certainly a mistake, and defaulting silently would change training).
* ``qid:N`` (SVMrank) is *kept*, not dropped: ``LibSVMData.query_ids``. Same all-or-none rule.
* Indices are decimal integers >= 0, strictly increasing within a row. ``zero_based="auto"``
  (default) treats the file as 1-based unless some index is 0, which is what libsvm/XGBoost
  users expect; pass ``True``/``False`` to be explicit (``False`` then rejects index 0).
* Values, labels and weights are numbers as in CSV: ``nan``/``inf`` literals allowed, a finite
  literal that overflows ``dtype`` is an error. Explicit zeros are kept as stored entries.

scipy is optional (``optml[sparse]``) and imported only when a matrix is built or encoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import numpy as np

from toolkit.formats.errors import FormatError
from toolkit.formats.lines import DEFAULT_MAX_LINE_BYTES, LineBlock, iter_line_blocks, split_block

if TYPE_CHECKING:
    import scipy.sparse

__all__ = ["LibSVMData", "encode_libsvm", "read_libsvm"]

_NUM = (rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
        rb"|[nN][aA][nN]|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)")
_NUMBER = re.compile(_NUM)
_NUMBERS = re.compile(rb"(?:" + _NUM + rb"\n)*")
_INDEX = re.compile(rb"[0-9]{1,18}")
_INDICES = re.compile(rb"(?:[0-9]{1,18}\n)*")


def _scipy_sparse() -> Any:
    try:
        import scipy.sparse  # optional dependency: imported on use
    except ImportError as exc:  # pragma: no cover - the dev environment has scipy
        raise ImportError("LibSVM support needs scipy: pip install 'optml[sparse]'") from exc
    return scipy.sparse


@dataclass(frozen=True)
class LibSVMData:
    """Rows of a LibSVM file: a CSR matrix plus one label (and optional weight/qid) per row."""

    features: scipy.sparse.csr_matrix
    labels: np.ndarray
    weights: np.ndarray | None = None
    query_ids: np.ndarray | None = None


@dataclass
class _Block:
    """Raw tokens of one block of lines, converted to arrays in bulk (one C call per column)."""

    lines: list[int]
    labels: list[bytes]
    weights: list[bytes | None]
    qids: list[bytes | None]
    counts: list[int]
    indices: list[bytes]
    values: list[bytes]


class _Reader:
    def __init__(self, source: str, dtype: np.dtype) -> None:
        self.source = source
        self.dtype = dtype
        self.lines: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        self.qids: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.indices: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.has_weight: bool | None = None
        self.has_qid: bool | None = None

    def error(self, message: str, line: int) -> FormatError:
        return FormatError(message, source=self.source, line=line)

    def tokenize(self, block: LineBlock) -> _Block:
        out = _Block([], [], [], [], [], [], [])
        for line, raw in split_block(block):
            tokens = raw.split(b"#", 1)[0].split()
            if not tokens:
                continue
            label, colon, weight = tokens[0].partition(b":")
            rest = tokens[1:]
            qid = None
            if rest and rest[0].startswith(b"qid:"):
                qid = rest[0][4:]
                rest = rest[1:]
            self._check_optional("a weight", "has_weight", bool(colon), line)
            self._check_optional("qid", "has_qid", qid is not None, line)
            out.lines.append(line)
            out.labels.append(label)
            out.weights.append(weight if colon else None)
            out.qids.append(qid)
            out.counts.append(len(rest))
            for token in rest:
                index, sep, value = token.partition(b":")
                if not sep:
                    raise self.error(f"feature {_show(token)} is not index:value", line)
                out.indices.append(index)
                out.values.append(value)
        return out

    def _check_optional(self, what: str, attr: str, present: bool, line: int) -> None:
        seen = getattr(self, attr)
        if seen is None:
            setattr(self, attr, present)
        elif seen != present:
            state = "has" if present else "lacks"
            raise self.error(f"row {state} {what} but earlier rows do not agree; give it on "
                             "every row or on none", line)

    def add(self, block: LineBlock) -> None:
        raw = self.tokenize(block)
        if not raw.lines:
            return
        lines = np.array(raw.lines, dtype=np.int64)
        counts = np.array(raw.counts, dtype=np.int64)
        row_of_entry = np.repeat(np.arange(len(lines)), counts)
        self.lines.append(lines)
        self.counts.append(counts)
        self.labels.append(self._numbers(raw.labels, lines, "label"))
        if self.has_weight:
            self.weights.append(self._numbers(raw.weights, lines, "weight"))  # type: ignore[arg-type]
        if self.has_qid:
            self.qids.append(self._integers(raw.qids, lines, "qid"))  # type: ignore[arg-type]
        indices = self._integers(raw.indices, lines[row_of_entry], "index")
        self._check_increasing(indices, row_of_entry, lines)
        self.indices.append(indices)
        self.values.append(self._numbers(raw.values, lines[row_of_entry], "value"))

    def _numbers(self, tokens: list[bytes], lines: np.ndarray, what: str) -> np.ndarray:
        if not tokens:
            return np.empty(0, dtype=self.dtype)
        if not _NUMBERS.fullmatch(b"\n".join(tokens) + b"\n"):
            bad = next(i for i, t in enumerate(tokens) if not _NUMBER.fullmatch(t))
            raise self.error(f"{what} {_show(tokens[bad])} is not a number", int(lines[bad]))
        wide = np.array(tokens).astype(np.float64)
        with np.errstate(over="ignore"):
            narrow = wide.astype(self.dtype)
        for bad in np.flatnonzero(np.isinf(narrow)).tolist():
            if b"inf" not in tokens[bad].lower():  # a finite literal that overflowed
                raise self.error(f"{what} {_show(tokens[bad])} is out of range for {self.dtype}",
                                 int(lines[bad]))
        return narrow

    def _integers(self, tokens: list[bytes], lines: np.ndarray, what: str) -> np.ndarray:
        if not tokens:
            return np.empty(0, dtype=np.int64)
        if not _INDICES.fullmatch(b"\n".join(tokens) + b"\n"):
            bad = next(i for i, t in enumerate(tokens) if not _INDEX.fullmatch(t))
            raise self.error(f"{what} {_show(tokens[bad])} is not an integer >= 0 "
                             "(at most 18 digits)", int(lines[bad]))
        return np.array(tokens).astype(np.int64)

    def _check_increasing(self, indices: np.ndarray, row_of_entry: np.ndarray,
                          lines: np.ndarray) -> None:
        same_row = row_of_entry[1:] == row_of_entry[:-1]
        bad = np.flatnonzero((np.diff(indices) <= 0) & same_row)
        if len(bad):
            at = int(bad[0]) + 1
            raise self.error(f"indices must be strictly increasing: {indices[at]} after "
                             f"{indices[at - 1]}", int(lines[row_of_entry[at]]))

    def result(self, n_features: int | None, zero_based: bool | str) -> LibSVMData:
        sparse = _scipy_sparse()
        lines = _cat(self.lines, np.int64)
        counts = _cat(self.counts, np.int64)
        indices = _cat(self.indices, np.int64)
        values = _cat(self.values, self.dtype)
        if zero_based == "auto":
            zero_based = bool(len(indices) == 0 or indices.min() == 0)
        if not zero_based:
            if len(indices) and indices.min() == 0:
                row = _row_of(counts, int(np.argmin(indices)))
                raise self.error("index 0 in a file read with zero_based=False", int(lines[row]))
            indices = indices - 1
        width = int(indices.max()) + 1 if len(indices) else 0
        if n_features is not None:
            if len(indices) and width > n_features:
                row = _row_of(counts, int(np.argmax(indices)))
                raise self.error(f"feature index {int(indices.max()) + (not zero_based)} is "
                                 f"outside n_features={n_features}", int(lines[row]))
            width = n_features
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        matrix = sparse.csr_matrix((values, indices, indptr), shape=(len(counts), width))
        return LibSVMData(
            features=matrix,
            labels=_cat(self.labels, self.dtype),
            weights=_cat(self.weights, self.dtype) if self.has_weight else None,
            query_ids=_cat(self.qids, np.int64) if self.has_qid else None,
        )


def _cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def _row_of(counts: np.ndarray, entry: int) -> int:
    return int(np.searchsorted(np.cumsum(counts), entry + 1, side="left"))


def _show(token: bytes, limit: int = 40) -> str:
    return repr(token[:limit])[1:] + ("..." if len(token) > limit else "")


def read_libsvm(data: bytes | bytearray | memoryview | BinaryIO, *, source: str = "<stream>",
                n_features: int | None = None,
                zero_based: bool | Literal["auto"] = "auto", dtype: Any = np.float32,
                max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> LibSVMData:
    """Parse LibSVM text into a CSR matrix ``(rows, n_features)`` and per-row arrays.

    Without ``n_features`` the width is the largest index + 1. Memory while parsing is one
    line-block of Python tokens plus the growing numpy arrays.
    """
    resolved = np.dtype(dtype)
    if resolved.kind != "f":
        raise ValueError(f"LibSVM values are parsed as floating point; dtype {resolved} is not")
    if zero_based not in (True, False, "auto"):
        raise ValueError(f"zero_based must be True, False or 'auto', got {zero_based!r}")
    if n_features is not None and n_features < 0:
        raise ValueError("n_features must be >= 0")
    reader = _Reader(source, resolved)
    for block in iter_line_blocks(data, source=source, max_line_bytes=max_line_bytes):
        reader.add(block)
    return reader.result(n_features, zero_based)


def _format(dtype: np.dtype) -> str:
    if dtype.kind in "iub":
        return "%d"
    return "%r" if dtype.itemsize == 8 else "%.9g"


def _rows(features: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (column indices, values) per row: stored entries of a sparse matrix, or non-zeros."""
    if hasattr(features, "tocsr"):
        csr = features.tocsr()
        csr.sort_indices()
        for row in range(csr.shape[0]):
            lo, hi = csr.indptr[row], csr.indptr[row + 1]
            yield csr.indices[lo:hi], csr.data[lo:hi]
        return
    dense = np.asarray(features)
    if dense.ndim != 2:
        raise ValueError(f"features must be 2-D, got {dense.ndim}-D")
    for row in dense:
        columns = np.flatnonzero(row)
        yield columns, row[columns]


def encode_libsvm(features: Any, labels: Any = None, *, weights: Any = None,
                  query_ids: Any = None, zero_based: bool = False) -> bytes:
    """Encode a sparse matrix (stored entries, explicit zeros included) or a dense 2-D array
    (non-zero entries) as LibSVM text, one row per line.

    Indices are written 1-based by default, the classic libsvm convention, which
    ``read_libsvm(zero_based="auto")`` always reads back correctly (pass ``n_features`` to keep
    trailing all-zero columns). Without ``labels`` every label is written as ``0`` (a label
    token is mandatory in the format).
    """
    n_rows = features.shape[0]
    dtype = np.dtype(getattr(features, "dtype", np.float64))
    if dtype.kind not in "iubf" or dtype.itemsize > 8:
        raise TypeError(f"LibSVM holds real numbers, not dtype {dtype}")
    value_format = _format(dtype)
    per_row: list[tuple[list[Any], str] | None] = []
    for name, column in (("labels", labels), ("weights", weights), ("query_ids", query_ids)):
        if column is None:
            per_row.append(None)
            continue
        array = np.asarray(column).reshape(-1)
        if name == "query_ids":
            array = array.astype(np.int64)
        if len(array) != n_rows:
            raise ValueError(f"{name} has {len(array)} entries, features have {n_rows} rows")
        per_row.append((array.tolist(), _format(array.dtype)))
    label_values, weight_values, qid_values = per_row
    offset = 0 if zero_based else 1
    out: list[str] = []
    for row, (columns, values) in enumerate(_rows(features)):
        head = (label_values[1] % label_values[0][row]) if label_values else "0"
        if weight_values:
            head += ":" + weight_values[1] % weight_values[0][row]
        tokens = [head]
        if qid_values:
            tokens.append(f"qid:{int(qid_values[0][row])}")
        tokens.extend(f"{column}:{value_format % value}"
                      for column, value in zip((columns + offset).tolist(), values.tolist(),
                                                 strict=True))
        out.append(" ".join(tokens))
    out.append("")
    return "\n".join(out).encode("ascii") if n_rows else b""
