"""RecordIO framing: dmlc compatibility (multi-part records), strict errors, fuzzing."""

from __future__ import annotations

import contextlib
import io
import mmap
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.formats import recordio
from toolkit.formats.errors import FormatError
from toolkit.formats.recordio import MAGIC, MAGIC_BYTES

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def encode(payloads: list[bytes]) -> bytes:
    out = io.BytesIO()
    for payload in payloads:
        recordio.write_record(out, payload)
    return out.getvalue()


def read_all(data: bytes, **kwargs: object) -> list[bytes]:
    return list(recordio.read_records(io.BytesIO(data), **kwargs))  # type: ignore[arg-type]


def header(cflag: int, length: int) -> bytes:
    return struct.pack("<II", MAGIC, (cflag << 29) | length)


def part(cflag: int, payload: bytes) -> bytes:
    return header(cflag, len(payload)) + payload + b"\0" * (-len(payload) % 4)


def test_layout_is_magic_length_payload_padding() -> None:
    assert encode([b"abcde"]) == header(0, 5) + b"abcde\0\0\0"
    assert encode([b""]) == header(0, 0)


@pytest.mark.parametrize("payloads", [
    [], [b""], [b"x"], [b"ab", b"", b"abcd", b"abcdefg"], [bytes(range(256)) * 9] * 40,
])
def test_round_trip(payloads: list[bytes]) -> None:
    assert read_all(encode(payloads)) == payloads


def test_write_record_returns_bytes_written_and_writer_counts() -> None:
    out = io.BytesIO()
    assert recordio.write_record(out, b"abc") == 12
    with recordio.RecordIOWriter(out) as writer:
        writer.write(b"12345678")
        writer.write(MAGIC_BYTES)
    assert writer.records_written == 2
    assert writer.bytes_written == len(out.getvalue()) - 12
    assert read_all(out.getvalue()) == [b"abc", b"12345678", MAGIC_BYTES]


def test_magic_at_aligned_offsets_is_split_like_dmlc() -> None:
    payload = b"abcd" + MAGIC_BYTES + b"efgh" + MAGIC_BYTES + b"ij"
    expected = part(1, b"abcd") + part(2, b"efgh") + part(3, b"ij")
    assert recordio.frame_record(payload) == expected
    assert encode([payload]) == expected
    assert read_all(expected) == [payload]


def test_magic_at_unaligned_offset_is_not_split() -> None:
    payload = b"ab" + MAGIC_BYTES + b"cd"
    assert recordio.frame_record(payload) == part(0, payload)


@pytest.mark.parametrize("payload", [
    MAGIC_BYTES, MAGIC_BYTES * 3, MAGIC_BYTES + b"x", b"x" * 4 + MAGIC_BYTES,
    MAGIC_BYTES * 2 + b"tail!",
])
def test_multi_part_edge_cases_round_trip(payload: bytes) -> None:
    framed = recordio.frame_record(payload)
    assert framed.count(MAGIC_BYTES) == payload.count(MAGIC_BYTES) + 1
    assert read_all(framed + encode([b"next"])) == [payload, b"next"]


def test_memoryview_payload_is_split_too() -> None:
    payload = MAGIC_BYTES + b"abcd"
    assert recordio.frame_record(memoryview(payload)) == recordio.frame_record(payload)


@pytest.mark.parametrize(("data", "message"), [
    (part(2, b"ab"), "no preceding first part"),
    (part(3, b"ab"), "no preceding first part"),
    (part(1, b"abcd") + part(0, b"ef"), "continuation"),
    (part(1, b"abcd") + part(1, b"ef"), "continuation"),
    (part(1, b"abcd"), "truncated RecordIO header: 0 of 8"),
    (part(1, b"abcd") + part(2, b"efgh"), "multi-part record that starts at byte 0"),
])
def test_invalid_cflag_sequences(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        read_all(data)


def test_bad_magic_names_source_and_offset() -> None:
    data = encode([b"abcd"]) + struct.pack("<II", 0xDEADBEEF, 4) + b"abcd"
    with pytest.raises(FormatError) as info:
        read_all(data, source="train_0")
    assert info.value.source == "train_0"
    assert info.value.offset == 12
    assert "bad RecordIO magic 0xdeadbeef" in str(info.value)


def test_truncation_kinds_are_named() -> None:
    data = encode([b"abcde"])
    with pytest.raises(FormatError, match="header: 3 of 8"):
        read_all(data[:3])
    with pytest.raises(FormatError, match="payload"):
        read_all(data[:10])
    with pytest.raises(FormatError, match="padding"):
        read_all(data[:14])


def test_max_record_size_is_enforced_before_reading() -> None:
    with pytest.raises(FormatError, match="exceeds max_record_size 10"):
        read_all(header(0, 100), max_record_size=10)
    with pytest.raises(FormatError, match="exceeds max_record_size"):
        read_all(recordio.frame_record(b"aaaa" + MAGIC_BYTES + b"bbbb"), max_record_size=8)


def test_huge_claimed_length_reads_only_what_exists() -> None:
    class CountingStream(io.BytesIO):
        largest = 0

        def readinto(self, buffer: object) -> int:  # type: ignore[override]
            CountingStream.largest = max(CountingStream.largest, len(buffer))  # type: ignore[arg-type]
            return super().readinto(buffer)  # type: ignore[arg-type]

    with pytest.raises(FormatError, match="truncated RecordIO payload"):
        list(recordio.read_records(CountingStream(header(0, (1 << 29) - 1) + b"abc")))
    assert CountingStream.largest <= recordio.DEFAULT_CHUNK_SIZE


def test_oversized_payload_is_refused_by_writer() -> None:
    untouched = np.zeros(1 << 29, dtype=np.uint8)  # calloc'd: pages are never touched
    out = io.BytesIO()
    with pytest.raises(ValueError, match="2\\*\\*29"):
        recordio.write_record(out, memoryview(untouched))
    assert out.getvalue() == b""


@pytest.mark.parametrize("chunk_size", [16, 17, 64, 1000, 1 << 20])
def test_scan_batches_any_chunk_size(chunk_size: int) -> None:
    rng = np.random.default_rng(7)
    payloads = [bytes(rng.integers(0, 256, int(n), dtype=np.uint8))
                for n in rng.integers(0, 90, 300)]
    payloads += [b"fixed-size!"] * 200 + [MAGIC_BYTES + b"split"] + [b"z" * 33] * 50
    data = encode(payloads)
    batches = list(recordio.scan_batches(io.BytesIO(data), chunk_size=chunk_size))
    assert [p for batch in batches for p in batch.payloads()] == payloads
    offsets = np.concatenate([batch.offsets for batch in batches])
    assert offsets[0] == 0
    assert all(data[o:o + 4] == MAGIC_BYTES for o in offsets.tolist())
    assert [p for b in recordio.scan_buffer(data) for p in b.payloads()] == payloads


def test_uniform_records_use_one_batch_per_chunk() -> None:
    data = encode([b"%07d" % i for i in range(1000)])
    batches = list(recordio.scan_batches(io.BytesIO(data), chunk_size=1 << 20))
    assert len(batches) == 1 and len(batches[0]) == 1000
    assert batches[0].payloads()[999] == b"0000999"


def test_read_pieces_path_for_streams_without_readinto() -> None:
    class ReadOnly:
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._inner.read(min(size, 7))

    payloads = [b"q" * 50, b"", MAGIC_BYTES * 2, b"end"]
    got = list(recordio.read_records(ReadOnly(encode(payloads)), max_record_size=100))  # type: ignore[arg-type]
    assert got == payloads


def test_non_blocking_stream_without_data_is_reported() -> None:
    class Empty:
        def readinto(self, buffer: object) -> None:
            return None

    with pytest.raises(BlockingIOError):
        list(recordio.read_records(Empty()))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- fuzzing

VALID = encode([b"", b"abc", MAGIC_BYTES + b"defg" + MAGIC_BYTES, b"x" * 9, b"tail"])


def consume(data: bytes) -> list[bytes] | None:
    try:
        return read_all(data)
    except FormatError:
        return None


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_format_error(data: bytes) -> None:
    consume(data)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_after_magic_raise_only_format_error(tail: bytes) -> None:
    consume(MAGIC_BYTES + tail)


def test_every_truncation_of_a_valid_stream_is_an_error_or_a_record_boundary() -> None:
    boundaries = {0}
    position = 0
    for payload in [b"", b"abc", MAGIC_BYTES + b"defg" + MAGIC_BYTES, b"x" * 9, b"tail"]:
        position += len(recordio.frame_record(payload))
        boundaries.add(position)
    for cut in range(len(VALID)):
        result = consume(VALID[:cut])
        assert (result is not None) == (cut in boundaries), cut


@FUZZ
@given(st.integers(0, len(VALID) * 8 - 1), st.integers(0, 3))
def test_bit_flips_raise_only_format_error(bit: int, chunk_choice: int) -> None:
    corrupt = bytearray(VALID)
    corrupt[bit // 8] ^= 1 << (bit % 8)
    chunk = (16, 20, 64, 1 << 16)[chunk_choice]
    with contextlib.suppress(FormatError):
        list(recordio.scan_batches(io.BytesIO(bytes(corrupt)), chunk_size=chunk))


@FUZZ
@given(st.lists(st.binary(max_size=40) | st.sampled_from([MAGIC_BYTES, MAGIC_BYTES * 2]),
                max_size=20), st.integers(16, 80))
def test_round_trip_property(payloads: list[bytes], chunk_size: int) -> None:
    data = encode(payloads)
    batches = recordio.scan_batches(io.BytesIO(data), chunk_size=chunk_size)
    assert [p for batch in batches for p in batch.payloads()] == payloads


@pytest.mark.parametrize(("payload", "expected"), [
    (b"", False), (b"abc", False), (MAGIC_BYTES, True), (b"abcd" + MAGIC_BYTES, True),
    (b"ab" + MAGIC_BYTES + b"cd", False), (b"abcdef" + MAGIC_BYTES[:2], False),
])
def test_needs_split_matches_the_writer(payload: bytes, expected: bool) -> None:
    assert recordio.needs_split(payload) is expected
    assert recordio.needs_split(memoryview(payload)) is expected
    whole = recordio.record_header(len(payload))
    assert (recordio.frame_record(payload)[:8] != whole) is expected


def test_needs_split_reads_a_file_mapping_without_copying(tmp_path: Path) -> None:
    path = tmp_path / "payload"
    path.write_bytes(b"\0" * 4096 + MAGIC_BYTES)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mapped:
        assert recordio.needs_split(mapped)
        # needs_split released its view: the mapping can be closed by the with block


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 1000])
def test_header_and_padding_equal_frame_record(size: int) -> None:
    payload = b"x" * size
    assert recordio.record_header(size) + payload + recordio.record_padding(size) == \
        recordio.frame_record(payload)


def test_record_header_rejects_oversized_payloads() -> None:
    with pytest.raises(ValueError, match="2\\*\\*29"):
        recordio.record_header(recordio.LENGTH_LIMIT)
