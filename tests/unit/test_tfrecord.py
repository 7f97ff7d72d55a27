"""TFRecord framing: CRC-32C masking, CRC checks before trusting lengths, fuzzing."""

from __future__ import annotations

import contextlib
import io
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.formats import tfrecord
from toolkit.formats.errors import FormatError

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encode(payloads: list[bytes]) -> bytes:
    out = io.BytesIO()
    for payload in payloads:
        tfrecord.write_record(out, payload)
    return out.getvalue()


def read_all(data: bytes, **kwargs: object) -> list[bytes]:
    return list(tfrecord.read_records(io.BytesIO(data), **kwargs))  # type: ignore[arg-type]


def test_masked_crc_matches_the_tensorflow_definition() -> None:
    crc = 0xE3069283  # CRC-32C("123456789"), the standard check value
    expected = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    assert tfrecord.masked_crc32c(b"123456789") == expected


def test_layout() -> None:
    data = encode([b"hello"])
    length = struct.pack("<Q", 5)
    assert data == (length + struct.pack("<I", tfrecord.masked_crc32c(length)) + b"hello"
                    + struct.pack("<I", tfrecord.masked_crc32c(b"hello")))
    assert tfrecord.frame_record(b"hello") == data


@pytest.mark.parametrize("payloads", [[], [b""], [b"a", b"", b"bc" * 1000], [b"x"] * 500])
def test_round_trip(payloads: list[bytes]) -> None:
    data = encode(payloads)
    assert read_all(data) == payloads
    assert list(tfrecord.read_records(io.BytesIO(data), chunk_size=16)) == payloads


def test_write_returns_bytes_written() -> None:
    assert tfrecord.write_record(io.BytesIO(), b"abc") == 19


def test_bad_length_crc_is_detected_before_the_length_is_used() -> None:
    bogus = struct.pack("<Q", 1 << 60) + b"\0\0\0\0" + b"data"
    with pytest.raises(FormatError, match="length CRC mismatch") as info:
        read_all(encode([b"ok"]) + bogus, source="s3://b/k")
    assert info.value.offset == 18
    assert info.value.source == "s3://b/k"


def test_bad_data_crc() -> None:
    data = bytearray(encode([b"payload"]))
    data[14] ^= 0x01
    with pytest.raises(FormatError, match="data CRC mismatch"):
        read_all(bytes(data))
    assert read_all(bytes(data), check_crc=False) == [bytes(data[12:19])]


def test_huge_valid_length_is_refused_or_read_in_bounded_pieces() -> None:
    length = struct.pack("<Q", 1 << 40)
    data = length + struct.pack("<I", tfrecord.masked_crc32c(length)) + b"short"
    with pytest.raises(FormatError, match="exceeds max_record_size"):
        read_all(data)
    with pytest.raises(FormatError, match="truncated TFRecord data"):
        read_all(data, max_record_size=1 << 41)


@pytest.mark.parametrize(("cut", "message"), [(5, "header: 5 of 12"), (14, "data"),
                                               (19, "data CRC")])
def test_truncation(cut: int, message: str) -> None:
    with pytest.raises(FormatError, match=f"truncated TFRecord {message}"):
        read_all(encode([b"1234567"])[:cut])


VALID = encode([b"", b"abc", b"x" * 40])


def test_every_truncation_is_an_error_except_at_boundaries() -> None:
    boundaries = {0, 16, 35, len(VALID)}
    for cut in range(len(VALID)):
        try:
            read_all(VALID[:cut])
            assert cut in boundaries, cut
        except FormatError:
            assert cut not in boundaries, cut


@FUZZ
@given(st.binary(max_size=200), st.booleans())
def test_random_bytes_raise_only_format_error(data: bytes, check_crc: bool) -> None:
    with contextlib.suppress(FormatError):
        read_all(data, check_crc=check_crc, max_record_size=1 << 20)


@FUZZ
@given(st.integers(0, len(VALID) * 8 - 1))
def test_every_bit_flip_is_detected(bit: int) -> None:
    corrupt = bytearray(VALID)
    corrupt[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(FormatError):
        read_all(bytes(corrupt))


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=10), st.integers(16, 50))
def test_round_trip_property(payloads: list[bytes], chunk_size: int) -> None:
    data = encode(payloads)
    assert list(tfrecord.read_records(io.BytesIO(data), chunk_size=chunk_size)) == payloads
