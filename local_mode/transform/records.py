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
        for line in stream:
            stripped = line.rstrip(b"\r\n") if line.endswith(b"\n") else line
            if stripped or line not in (b"\n", b"\r\n"):
                yield stripped
    elif split_type == "RecordIO":
        yield from recordio.read_records(stream, source=source)
    elif split_type == "TFRecord":
        yield from tfrecord.read_records(stream, source=source)
    else:
        raise ValueError(f"SplitType must be one of {', '.join(SPLIT_TYPES)}, got {split_type!r}")


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
    """Group ``records`` into request bodies; ``max_payload_mb`` 0 means no limit."""
    limit = max_payload_mb * MIB if max_payload_mb > 0 else None
    pending: list[bytes] = []
    encoded: list[bytes] = []
    size = 0
    index = 0
    for number, record in enumerate(records):
        wire = encode(record, split_type)
        if limit is not None and len(wire) > limit:
            raise RecordTooLarge(f"record {number} is {len(wire)} bytes, more than "
                                 f"MaxPayloadInMB={max_payload_mb} ({limit} bytes)")
        if strategy == "SingleRecord":
            yield Batch(index, [record], wire)
            index += 1
            continue
        if pending and limit is not None and size + len(wire) > limit:
            yield Batch(index, pending, b"".join(encoded))
            index += 1
            pending, encoded, size = [], [], 0
        pending.append(record)
        encoded.append(wire)
        size += len(wire)
    if pending:
        yield Batch(index, pending, b"".join(encoded))
