"""Framing on any binary stream: raw chunks, bounded lines, gzip, RecordIO, TFRecord."""

from __future__ import annotations

import gzip
import io
import struct

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.channels.framing import Framing, as_framing, frame
from toolkit.formats.errors import FormatError

payloads = st.lists(st.binary(max_size=300), max_size=20)


def test_raw_chunks_have_the_requested_size() -> None:
    chunks = list(frame(io.BytesIO(b"x" * 10), "raw", chunk_size=4))
    assert chunks == [b"xxxx", b"xxxx", b"xx"]


@settings(deadline=None)  # lazy imports and a shared, loaded machine
@given(data=st.binary(max_size=5000), size=st.integers(1, 700))
def test_raw_chunks_concatenate_to_the_stream(data: bytes, size: int) -> None:
    chunks = list(frame(io.BytesIO(data), Framing.RAW, chunk_size=size))
    assert b"".join(chunks) == data
    assert all(len(c) == size for c in chunks[:-1])


@settings(deadline=None)  # lazy imports and a shared, loaded machine
@given(lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").rstrip(b"\r")),
                      max_size=20), final_newline=st.booleans())
def test_lines_round_trip(lines: list[bytes], final_newline: bool) -> None:
    text = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    expected = lines if text else []
    if lines and not final_newline and lines[-1] == b"":
        expected = lines[:-1]
    assert list(frame(io.BytesIO(text), "LINES")) == expected


def test_an_overlong_line_names_source_and_line() -> None:
    data = b"ok\n" + b"y" * 11 + b"\n"
    with pytest.raises(FormatError) as info:
        list(frame(io.BytesIO(data), "lines", source="part-1", max_line_length=10))
    assert (info.value.source, info.value.line) == ("part-1", 2)
    assert list(frame(io.BytesIO(b"y" * 10 + b"\r\n"), "lines", max_line_length=10)) == [
        b"y" * 10]


@settings(deadline=None)  # lazy imports and a shared, loaded machine
@given(data=st.binary(max_size=3000))
def test_gzip_is_streamed(data: bytes) -> None:
    # two members back to back, as concatenated gzip objects are
    blob = gzip.compress(data[:100]) + gzip.compress(data[100:])
    assert b"".join(frame(io.BytesIO(blob), "raw", compression="Gzip", chunk_size=97)) == data


@pytest.mark.parametrize("blob", [b"not gzip at all", gzip.compress(b"x" * 1000, mtime=0)[:-12]])
def test_corrupt_or_truncated_gzip_is_a_format_error(blob: bytes) -> None:
    with pytest.raises(FormatError, match="gzip") as info:
        list(frame(io.BytesIO(blob), "raw", source="obj.gz", compression="gzip"))
    assert info.value.source == "obj.gz"


@settings(deadline=None)  # lazy imports and a shared, loaded machine
@given(records=payloads)
def test_recordio_framing_reads_what_the_writer_wrote(records: list[bytes]) -> None:
    from toolkit.formats.recordio import write_record

    stream = io.BytesIO()
    for record in records:
        write_record(stream, record)
    stream.seek(0)
    assert list(frame(stream, "RecordIO")) == records


def _tfrecord(data: bytes) -> bytes:
    def masked(b: bytes) -> int:
        c = crc32c.crc32c(b)
        return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked(length)) + data + struct.pack("<I", masked(data))


@settings(deadline=None)  # lazy imports and a shared, loaded machine
@given(records=payloads)
def test_tfrecord_framing(records: list[bytes]) -> None:
    blob = b"".join(map(_tfrecord, records))
    assert list(frame(io.BytesIO(blob), "tfrecord")) == records
    assert list(frame(io.BytesIO(gzip.compress(blob)), "tfrecord", compression="Gzip")) == records


def test_tfrecord_crc_mismatch_is_a_format_error() -> None:
    blob = bytearray(_tfrecord(b"hello"))
    blob[14] ^= 0xFF
    with pytest.raises(FormatError):
        list(frame(io.BytesIO(bytes(blob)), "tfrecord", source="bad.tfrecord"))


def test_unknown_framing_and_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown framing"):
        as_framing("csv")
    with pytest.raises(ValueError, match="chunk_size"):
        list(frame(io.BytesIO(b""), chunk_size=0))
    with pytest.raises(ValueError, match="unknown compression"):
        list(frame(io.BytesIO(b""), compression="zstd"))
