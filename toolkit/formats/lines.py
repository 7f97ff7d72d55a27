"""Bounded splitting of a byte stream into lines, shared by the line-oriented formats.

Why a module of its own: CSV, JSON Lines and LibSVM all read either a whole request body (bytes)
or a possibly huge training file/FIFO (a binary stream). Both must behave identically, and a
stream without newlines must not make a reader buffer unbounded memory. So every text reader goes
through :func:`iter_line_blocks` / :func:`iter_lines`, which

* read fixed-size chunks, never more than ``max_line_bytes`` of one unfinished line;
* number lines from 1 so errors can say where the problem is;
* treat ``\\n`` as the terminator and drop one ``\\r`` before it (CRLF files). A lone ``\\r`` is
  *not* a line break (it is data, which the format parsers then reject or keep).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from toolkit.formats.errors import FormatError

#: Longest line accepted by default (bytes, excluding the terminator).
DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024
#: Read size used on streams; big enough to amortise per-call costs, small enough to stay bounded.
DEFAULT_CHUNK_BYTES = 1024 * 1024

ByteSource = bytes | bytearray | memoryview | BinaryIO


class LineBlock(NamedTuple):
    """Consecutive complete lines: ``data`` starts at line ``first_line`` (1-based).

    ``data`` ends with ``\\n`` except for the last block of an input without a final newline.
    """

    first_line: int
    data: bytes


def as_binary_stream(data: ByteSource) -> BinaryIO:
    """Wrap an in-memory body so bytes and streams go through exactly the same code."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(data)
    return data


def read_chunks(stream: BinaryIO, chunk_bytes: int) -> Iterator[bytes]:
    """Yield non-empty chunks until EOF (a short read is not EOF; an empty one is)."""
    while True:
        chunk = stream.read(chunk_bytes)
        if not chunk:
            return
        if not isinstance(chunk, (bytes, bytearray)):
            raise TypeError(f"expected a binary stream, read() returned {type(chunk).__name__}")
        yield bytes(chunk)


def iter_line_blocks(data: ByteSource, *, source: str = "<stream>",
                     max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                     chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[LineBlock]:
    """Yield blocks of whole lines, reading at most ``max_line_bytes`` of any one line.

    Raises :class:`FormatError` (with the line number) as soon as a line grows longer than
    ``max_line_bytes`` (terminator excluded), before buffering more of it.
    """
    if max_line_bytes < 1 or chunk_bytes < 1:
        raise ValueError("max_line_bytes and chunk_bytes must be positive")
    # Reading chunks no larger than the limit means a line that fits inside one chunk is already
    # within the limit; only lines that span chunks need counting.
    step = min(chunk_bytes, max_line_bytes)
    stream = as_binary_stream(data)
    pending: list[bytes] = []
    pending_len = 0
    line = 1

    def too_long() -> FormatError:
        return FormatError(f"line is longer than the limit of {max_line_bytes} bytes",
                           source=source, line=line)

    for chunk in read_chunks(stream, step):
        cut = chunk.rfind(b"\n")
        if cut < 0:
            pending.append(chunk)
            pending_len += len(chunk)
            if pending_len > max_line_bytes:
                raise too_long()
            continue
        if pending and pending_len + chunk.find(b"\n") > max_line_bytes:
            raise too_long()
        head = chunk[:cut + 1]
        block = b"".join((*pending, head)) if pending else head
        yield LineBlock(line, block)
        line += block.count(b"\n")
        tail = chunk[cut + 1:]
        pending = [tail] if tail else []
        pending_len = len(tail)
    if pending:
        yield LineBlock(line, b"".join(pending))


def split_block(block: LineBlock) -> Iterator[tuple[int, bytes]]:
    """Split a block into ``(line_number, line)`` pairs without terminators (CR of CRLF dropped)."""
    parts = block.data.split(b"\n")
    if block.data.endswith(b"\n"):
        parts.pop()
    for number, raw in enumerate(parts, start=block.first_line):
        yield number, raw[:-1] if raw.endswith(b"\r") else raw


def iter_lines(data: ByteSource, *, source: str = "<stream>",
               max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
               chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` for every line, numbered from 1, terminators removed.

    A final line without ``\\n`` is still a line; an input ending in ``\\n`` has no extra empty one.
    """
    for block in iter_line_blocks(data, source=source, max_line_bytes=max_line_bytes,
                                  chunk_bytes=chunk_bytes):
        yield from split_block(block)
