"""Split an input object into records and group them into request bodies.

``SplitType``: ``None`` (the whole object is one record), ``Line`` (newline-terminated lines),
``RecordIO`` (dmlc RecordIO records; each is sent re-framed, so the container reads RecordIO)
and ``TFRecord`` (each sent as a TFRecord frame). ``BatchStrategy`` ``SingleRecord`` sends one
record per request; ``MultiRecord`` as many whole records as fit in ``MaxPayloadInMB``. A single
record larger than the limit fails its file (:class:`RecordTooLarge`), as on the service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from toolkit.formats import recordio, tfrecord

SPLIT_TYPES = ("None", "Line", "RecordIO", "TFRecord")
MIB = 1024 * 1024
LINE_BLOCK = 1 << 20


class RecordTooLarge(Exception):
    """A record does not fit in one request; names the record's index and sizes."""


@dataclass(frozen=True)
class Batch:
    """Records sent in one request: ``body`` on the wire, ``records`` for joins and counts."""

    index: int
    records: list[bytes]
    body: bytes


def split_records(stream: BinaryIO, split_type: str, source: str) -> Iterator[bytes]:
    """The records of ``stream`` (payloads: lines without their newline, RecordIO / TFRecord
    payloads without framing)."""
    if split_type == "None":
        yield stream.read()
    elif split_type == "Line":
        yield from _lines(stream)
    elif split_type == "RecordIO":
        yield from recordio.read_records(stream, source=source)
    elif split_type == "TFRecord":
        yield from tfrecord.read_records(stream, source=source)
    else:
        raise ValueError(f"SplitType must be one of {', '.join(SPLIT_TYPES)}, got {split_type!r}")


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    """``Line`` records: each line without its newline and the carriage returns before it; a
    blank line (``\\n`` or ``\\r\\n``) is no record; a last line without a newline is one as
    it is. Read a block at a time and split in C (a file may hold millions of lines); a line
    longer than a block is joined once, when its newline arrives."""
    partial: list[bytes] = []  # the start of a line that began in an earlier block
    while True:
        block = stream.read(LINE_BLOCK)
        if not block:
            break
        if b"\n" not in block:
            partial.append(block)
            continue
        pieces = block.split(b"\n")
        if partial:
            partial.append(pieces[0])
            pieces[0] = b"".join(partial)
            partial = []
        last = pieces.pop()
        if last:
            partial.append(last)
        yield from [piece.rstrip(b"\r") for piece in pieces if piece and piece != b"\r"]
    if partial:
        yield b"".join(partial)


def encode(record: bytes, split_type: str) -> bytes:
    """A record as it goes on the wire (framed again for the binary formats)."""
    if split_type == "Line":
        return record + b"\n"
    if split_type == "RecordIO":
        return recordio.frame_record(record)
    if split_type == "TFRecord":
        return tfrecord.frame_record(record)
    return record


def batches(records: Iterable[bytes], split_type: str, strategy: str,
            max_payload_mb: int) -> Iterator[Batch]:
    """Group ``records`` into request bodies; ``max_payload_mb`` 0 means no limit.

    A ``Line`` batch's body is its records joined by newlines (one join, no per-record copy:
    a 6 MB batch holds tens of thousands of lines)."""
    limit = max_payload_mb * MIB if max_payload_mb > 0 else None
    lines = split_type == "Line"
    pending: list[bytes] = []
    encoded: list[bytes] = []
    size = 0
    index = 0
    for number, record in enumerate(records):
        wire = None if lines else encode(record, split_type)
        length = len(record) + 1 if wire is None else len(wire)
        if limit is not None and length > limit:
            raise RecordTooLarge(f"record {number} is {length} bytes, more than "
                                 f"MaxPayloadInMB={max_payload_mb} ({limit} bytes)")
        if strategy == "SingleRecord":
            yield Batch(index, [record], record + b"\n" if wire is None else wire)
            index += 1
            continue
        if pending and limit is not None and size + length > limit:
            yield Batch(index, pending, _body(pending, encoded, lines))
            index += 1
            pending, encoded, size = [], [], 0
        pending.append(record)
        if wire is not None:
            encoded.append(wire)
        size += length
    if pending:
        yield Batch(index, pending, _body(pending, encoded, lines))


def _body(records: list[bytes], encoded: list[bytes], lines: bool) -> bytes:
    return b"\n".join(records) + b"\n" if lines else b"".join(encoded)
