"""Split a channel's byte stream into the units user code wants.

The same framing applies to a File-mode file, a FastFile file or a Pipe-mode FIFO: all are just
binary streams. RecordIO and TFRecord parsing is delegated to :mod:`toolkit.formats` (imported when
first used, so importing the channels package stays cheap); this module adds raw chunks, bounded
lines and streaming gzip on top.
"""

from __future__ import annotations

import contextlib
import enum
import gzip
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from toolkit.channels.config import Compression
from toolkit.formats.errors import FormatError

DEFAULT_CHUNK_SIZE = 1 << 20
"""Raw framing: bytes per chunk. Large reads are what makes a pipe fast."""
DEFAULT_MAX_LINE_LENGTH = 64 << 20
"""Lines framing: longest line accepted, so one missing newline cannot exhaust memory."""


class Framing(str, enum.Enum):
    """How to cut a stream into items."""

    RAW = "raw"
    """Chunks of up to ``chunk_size`` bytes; concatenated they are the stream."""
    RECORDIO = "recordio"
    """dmlc RecordIO records (split records are joined)."""
    TFRECORD = "tfrecord"
    """TFRecord records, CRCs checked unless ``check_crc=False``."""
    LINES = "lines"
    """Lines without their ``\\n`` / ``\\r\\n`` terminator."""


def as_framing(value: Framing | str) -> Framing:
    """Accept the enum or its name in any case (``"RecordIO"`` as the config spells it)."""
    if isinstance(value, Framing):
        return value
    try:
        return Framing(str(value).lower())
    except ValueError:
        allowed = ", ".join(f.value for f in Framing)
        raise ValueError(f"unknown framing {value!r} (one of: {allowed})") from None


def as_compression(value: Compression | str | None) -> Compression:
    if value is None:
        return Compression.NONE
    if isinstance(value, Compression):
        return value
    for member in Compression:
        if str(value).lower() == member.value.lower():
            return member
    raise ValueError(f"unknown compression {value!r} (one of: None, Gzip)")


def decompressed(stream: BinaryIO, compression: Compression | str | None) -> BinaryIO:
    """``stream`` itself, or a streaming gzip reader over it (concatenated members allowed)."""
    if as_compression(compression) is Compression.GZIP:
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return stream


def _raw_chunks(stream: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    read = stream.read
    while True:
        chunk = read(chunk_size)
        if not chunk:
            return
        yield chunk


def _lines(stream: BinaryIO, max_line_length: int, source: str) -> Iterator[bytes]:
    readline = stream.readline
    number = 0
    while True:
        line = readline(max_line_length + 2)  # room for the longest line plus "\r\n"
        if not line:
            return
        number += 1
        if line.endswith(b"\n"):
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        if len(line) > max_line_length:
            raise FormatError(f"line longer than {max_line_length} bytes", source=source,
                              line=number)
        yield line


def frame(stream: BinaryIO, framing: Framing | str = Framing.RAW, *, source: str = "<stream>",
          compression: Compression | str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
          max_line_length: int = DEFAULT_MAX_LINE_LENGTH, check_crc: bool = True,
          ) -> Iterator[bytes]:
    """Yield the items of ``stream`` (read to its end) as ``framing`` defines them.

    Malformed data — including a corrupt or truncated gzip stream — raises
    :class:`~toolkit.formats.errors.FormatError` naming ``source``.
    """
    kind = as_framing(framing)
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if max_line_length < 1:
        raise ValueError("max_line_length must be >= 1")
    with _decompressing(stream, compression, source) as body:
        if kind is Framing.RAW:
            yield from _raw_chunks(body, chunk_size)
        elif kind is Framing.LINES:
            yield from _lines(body, max_line_length, source)
        elif kind is Framing.RECORDIO:
            from toolkit.formats import recordio  # lazy by design

            yield from recordio.read_records(body, source=source)
        else:
            from toolkit.formats import tfrecord  # lazy by design

            yield from tfrecord.read_records(body, source=source, check_crc=check_crc)


def recordio_views(stream: BinaryIO, *, source: str = "<stream>",
                   compression: Compression | str | None = None) -> Iterator[memoryview]:
    """RecordIO records as read-only views into the reader's chunk buffers: no copy per record.

    The fast path for throughput-bound consumers (``np.frombuffer`` on each view, say). A view
    stays valid after iteration moves on (it keeps its chunk alive), so hold on to views only
    as long as needed.
    """
    from toolkit.formats import recordio  # lazy by design

    with _decompressing(stream, compression, source) as body:
        for batch in recordio.scan_batches(body, source=source):
            view = memoryview(batch.buffer)
            for start, length in zip(batch.starts.tolist(), batch.lengths.tolist()):
                yield view[start:start + length]


@contextlib.contextmanager
def _decompressing(stream: BinaryIO, compression: Compression | str | None,
                   source: str) -> Iterator[BinaryIO]:
    """``stream`` decompressed as ``compression`` says, for the length of the block: a corrupt
    or truncated gzip stream becomes a FormatError naming ``source``, and the gzip reader (never
    ``stream``, which the caller owns) is closed at the end."""
    gzipped = as_compression(compression) is Compression.GZIP
    body = decompressed(stream, compression)
    try:
        yield body
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        if not gzipped:
            raise
        raise FormatError(f"invalid gzip data: {exc or 'truncated stream'}",
                          source=source) from None
    finally:
        if body is not stream:
            body.close()
