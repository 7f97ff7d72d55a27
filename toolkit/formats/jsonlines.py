"""JSON Lines (``application/jsonlines``): one JSON value per line, UTF-8.

Policy (documented in docs/formats.md):

* Lines end with ``\\n`` (a ``\\r`` before it is dropped); lines that are empty or only
  whitespace are skipped but still counted, so error line numbers match what an editor shows.
* A UTF-8 byte-order mark is accepted at the very start of the input only.
* Strict JSON: ``NaN``/``Infinity`` are rejected on read and refused on encode unless
  ``allow_nan=True`` is passed (then Python's ``json`` spelling is used both ways).
* One line may not exceed ``max_line_bytes`` (64 MiB by default), so a stream that never sends a
  newline fails with :class:`FormatError` instead of exhausting memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import numpy as np

from toolkit.formats.errors import FormatError
from toolkit.formats.lines import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    ByteSource,
    iter_lines,
)

__all__ = ["encode_jsonlines", "iter_jsonlines", "read_jsonlines"]

_BOM = b"\xef\xbb\xbf"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (pass allow_nan=True to accept it)")


def iter_jsonlines(stream: ByteSource, *, source: str = "<stream>",
                   max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, allow_nan: bool = False,
                   chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[Any]:
    """Yield the decoded value of every non-blank line, reading with bounded memory."""
    decoder = json.JSONDecoder(parse_constant=None if allow_nan else _refuse_constant)
    for number, raw in iter_lines(stream, source=source, max_line_bytes=max_line_bytes,
                                  chunk_bytes=chunk_bytes):
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"invalid UTF-8 at column {exc.start + 1}", source=source,
                              line=number) from None
        if not text.strip(" \t\r\n"):
            continue
        try:
            yield decoder.decode(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"invalid JSON at column {exc.colno}: {exc.msg}", source=source,
                              line=number) from None
        except RecursionError:
            raise FormatError("JSON nested too deeply", source=source, line=number) from None
        except ValueError as exc:  # NaN refused, integer with too many digits, ...
            raise FormatError(f"invalid JSON: {exc}", source=source, line=number) from None


def read_jsonlines(data: bytes | bytearray | memoryview | BinaryIO, *, source: str = "<stream>",
                   max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                   allow_nan: bool = False) -> list[Any]:
    """Decode a whole JSON Lines body or stream into a list of values (blank lines skipped)."""
    return list(iter_jsonlines(data, source=source, max_line_bytes=max_line_bytes,
                               allow_nan=allow_nan))


def _numpy_default(value: Any) -> Any:
    """Let predictions that are numpy arrays/scalars be encoded without a manual ``tolist()``."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_jsonlines(items: Iterable[Any], *, allow_nan: bool = False) -> bytes:
    """Encode each item as compact JSON on its own ``\\n``-terminated line (UTF-8, not escaped).

    numpy arrays and scalars are converted to lists and Python numbers. NaN/infinity raise
    ``ValueError`` unless ``allow_nan=True``. The output always reads back with
    :func:`read_jsonlines` (JSON escapes newlines inside strings, so one item is one line).
    """
    options: dict[str, Any] = {"allow_nan": allow_nan, "separators": (",", ":"),
                               "default": _numpy_default}
    readable = json.JSONEncoder(ensure_ascii=False, **options)
    escaped = json.JSONEncoder(ensure_ascii=True, **options)
    out = bytearray()
    for item in items:
        try:
            out += readable.encode(item).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: only the \uXXXX escape keeps it
            out += escaped.encode(item).encode("ascii")
        out += b"\n"
    return bytes(out)
