"""TFRecord framing: ``[u64 length][u32 masked_crc32c(length)][data][u32 masked_crc32c(data)]``.

Why the order of checks matters: the length field is the only thing that tells us how much to
read, and a flipped bit there could claim exabytes. With ``check_crc`` (the default) the length's
own CRC is verified *before* the length is used; without it the payload is still read in bounded
chunks, so a corrupt length costs at most the bytes the stream really has, never an allocation
of the claimed size. CRC-32C comes from the ``crc32c`` package (hardware-accelerated).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

import crc32c as _crc32c

from toolkit.formats.recordio import DEFAULT_CHUNK_SIZE, StreamBuffer

__all__ = ["frame_record", "masked_crc32c", "read_records", "write_record"]

_HEADER = struct.Struct("<QI")
_CRC = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8
#: Default upper bound on one record; protects consumers that then hold the record in memory.
DEFAULT_MAX_RECORD_SIZE = 1 << 31


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """TFRecord's masked CRC-32C: rotate right by 15 bits, then add a constant (mod 2**32)."""
    crc = _crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def read_records(stream: BinaryIO, *, source: str = "<stream>", check_crc: bool = True,
                 max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    """Yield each record's data; EOF exactly at a record boundary is a clean end.

    Raises :class:`FormatError` (with source and the record's byte offset) on a bad length CRC,
    a bad data CRC, a length above ``max_record_size`` or truncation anywhere in a record.
    """
    buf = StreamBuffer(stream, source, chunk_size)
    while True:
        if not buf.fill(12):
            have = len(buf.buf) - buf.pos
            if have == 0:
                return
            raise buf.error(f"truncated TFRecord header: {have} of 12 bytes", buf.pos)
        length, length_crc = _HEADER.unpack_from(buf.buf, buf.pos)
        if check_crc and masked_crc32c(memoryview(buf.buf)[buf.pos:buf.pos + 8]) != length_crc:
            raise buf.error(f"TFRecord length CRC mismatch (length field says {length})", buf.pos)
        if length > max_record_size:
            raise buf.error(f"TFRecord of {length} bytes exceeds max_record_size "
                            f"{max_record_size}", buf.pos)
        if not buf.fill(16 + length):
            have = len(buf.buf) - buf.pos - 12
            what = "data" if have < length else "data CRC"
            raise buf.error(f"truncated TFRecord {what}: record needs {length} data bytes and a "
                            f"4-byte CRC, stream has {have}", buf.pos)
        start = buf.pos + 12
        data = bytes(memoryview(buf.buf)[start:start + length])
        if check_crc:
            (data_crc,) = _CRC.unpack_from(buf.buf, start + length)
            if masked_crc32c(data) != data_crc:
                raise buf.error("TFRecord data CRC mismatch", buf.pos)
        buf.pos = start + length + 4
        yield data


def frame_record(payload: bytes | bytearray | memoryview) -> bytes:
    """Return the TFRecord bytes of one payload."""
    length = struct.pack("<Q", len(memoryview(payload).cast("B")))
    return b"".join((length, _CRC.pack(masked_crc32c(length)), payload,
                     _CRC.pack(masked_crc32c(payload))))


def write_record(stream: BinaryIO, payload: bytes | bytearray | memoryview) -> int:
    """Write one TFRecord; return the number of bytes written."""
    size = len(memoryview(payload).cast("B"))
    length = struct.pack("<Q", size)
    stream.write(length + _CRC.pack(masked_crc32c(length)))
    stream.write(payload)
    stream.write(_CRC.pack(masked_crc32c(payload)))
    return size + 16
