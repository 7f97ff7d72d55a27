"""``read_records``' batch path: chunk-at-a-time framing, reused buffer, same errors as before.

``read_records`` frames a whole chunk per step (a vectorised run of equal-length records, then a
per-record loop) and reuses its chunk buffer. These tests pin it to the reference: the records
and errors of :func:`recordio.scan_batches` (the pre-change ``read_records`` was exactly a loop
over those batches), for any chunk size and any way the stream splits its reads.
"""

from __future__ import annotations

import io
import struct
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_recordio import FUZZ, encode
from toolkit.formats import recordio
from toolkit.formats.errors import FormatError
from toolkit.formats.recordio import MAGIC, MAGIC_BYTES


class SplitReads(io.RawIOBase):
    """A blocking stream whose reads return at most the next of ``sizes`` bytes (a pipe)."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data = data
        self._at = 0
        self._sizes = sizes or [len(data) or 1]
        self._turn = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = min(len(buffer), self._sizes[self._turn % len(self._sizes)],
                   len(self._data) - self._at)
        self._turn += 1
        buffer[:size] = self._data[self._at:self._at + size]
        self._at += size
        return size


def records(stream: io.RawIOBase | io.BytesIO, chunk_size: int | None = None,
            first_read: int = 16, **kwargs: object) -> list[bytes]:
    """All records of ``stream``; with ``chunk_size``, reads start at ``first_read`` bytes and
    double up to ``chunk_size`` (small values exercise every buffer-boundary case)."""
    if chunk_size is None:
        return list(recordio.read_records(stream, **kwargs))  # type: ignore[arg-type]
    with mock.patch.object(recordio, "_RECORDS_CHUNK_SIZE", chunk_size), \
            mock.patch.object(recordio, "_FIRST_READ", first_read):
        return list(recordio.read_records(stream, **kwargs))  # type: ignore[arg-type]


def reference(data: bytes, **kwargs: object) -> list[bytes]:
    """The records as the batch scanner frames them (the pre-change ``read_records``)."""
    batches = recordio.scan_batches(io.BytesIO(data), **kwargs)  # type: ignore[arg-type]
    return [p for batch in batches for p in batch.payloads()]


def outcome(read: object) -> list[bytes] | tuple[str, str | None, int | None]:
    """The records, or the error's message, source and offset."""
    try:
        return read()  # type: ignore[operator, no-any-return]
    except FormatError as error:
        return str(error), error.source, error.offset


def run(length: int, count: int, first: int = 0) -> list[bytes]:
    """``count`` distinct payloads of one ``length``: what the vectorised path frames."""
    return [bytes([(first + i) % 251]) * length for i in range(count)]


# --------------------------------------------------------------------------- examples

def test_returns_an_iterator_of_bytes_and_reads_nothing_until_iterated() -> None:
    stream = io.BytesIO(encode(run(5, 40)))
    it = recordio.read_records(stream)
    assert stream.tell() == 0
    first = next(it)
    assert type(first) is bytes and first == b"\0" * 5
    assert iter(it) is it


def test_records_are_copies_that_survive_buffer_reuse() -> None:
    payloads = run(100, 50) + run(7, 30, first=3) + [b"odd"] * 3
    with mock.patch.object(recordio, "_RECORDS_CHUNK_SIZE", 256):
        it = recordio.read_records(io.BytesIO(encode(payloads)))
        kept = [next(it)]
        kept += list(it)  # many refills of the same buffer happen after kept[0] was handed out
    assert kept == payloads
    assert all(type(p) is bytes for p in kept)


@pytest.mark.parametrize("payloads", [
    run(0, 40),                                     # a run of empty records
    run(1024, 64),                                  # aligned, stride a multiple of 8
    run(13, 100) + run(14, 100),                    # run followed by another run
    run(9, 20) + [MAGIC_BYTES + b"split"] + run(9, 20),  # multi-part record inside a run
    run(6, 17) + [b"x" * 700] + run(6, 17),         # record larger than the chunk
    [b"a" * n for n in range(60)],                  # no two neighbours alike: the loop only
])
@pytest.mark.parametrize("chunk_size", [16, 100, 4096, 1 << 20])
def test_round_trip_equals_the_batch_scanner(payloads: list[bytes], chunk_size: int) -> None:
    data = encode(payloads)
    assert records(io.BytesIO(data), chunk_size) == payloads == reference(data)


def test_bad_magic_in_the_middle_of_a_run_names_its_offset() -> None:
    data = bytearray(encode(run(12, 40)))
    data[20 * 20:20 * 20 + 4] = struct.pack("<I", 0xDEADBEEF)  # 20 bytes per record
    with pytest.raises(FormatError) as info:
        records(io.BytesIO(bytes(data)), source="train_3")
    assert info.value.source == "train_3"
    assert info.value.offset == 400
    assert "bad RecordIO magic 0xdeadbeef" in str(info.value)


def test_length_change_in_a_run_is_framed_by_the_loop() -> None:
    data = bytearray(encode(run(12, 40)))
    data[20 * 30 + 4:20 * 30 + 8] = struct.pack("<I", 4)  # record 30 claims 4 of its 12 bytes
    with pytest.raises(FormatError, match="bad RecordIO magic") as info:
        records(io.BytesIO(bytes(data)))
    assert info.value.offset == 20 * 30 + 8 + 4  # the "header" after the shortened record


def test_run_of_records_over_max_record_size_is_refused_at_the_first() -> None:
    with pytest.raises(FormatError, match="exceeds max_record_size 8") as info:
        records(io.BytesIO(encode(run(12, 40))), max_record_size=8)
    assert info.value.offset == 0


def test_truncated_last_record_of_a_run() -> None:
    data = encode(run(12, 40))
    with pytest.raises(FormatError, match="truncated RecordIO payload") as info:
        records(io.BytesIO(data[:-5]))
    assert info.value.offset == 39 * 20
    with pytest.raises(FormatError, match="truncated RecordIO header: 3 of 8") as info:
        records(io.BytesIO(data + MAGIC_BYTES[:3]))
    assert info.value.offset == len(data)


def test_streams_without_readinto_and_short_reads() -> None:
    class ReadOnly:
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._inner.read(min(size, 7))

    payloads = run(3, 30) + [b"q" * 50, b"", MAGIC_BYTES * 2, b"end"]
    data = encode(payloads)
    assert list(recordio.read_records(ReadOnly(data))) == payloads  # type: ignore[arg-type]
    assert records(SplitReads(data, [1, 5, 3]), 32) == payloads


def test_cflag_errors_match_the_batch_scanner() -> None:
    def part(cflag: int, payload: bytes) -> bytes:
        return struct.pack("<II", MAGIC, (cflag << 29) | len(payload)) + payload

    for data in (encode(run(4, 20)) + part(2, b"abcd"),
                 encode(run(4, 20)) + part(1, b"abcd") + part(0, b"efgh")):
        assert outcome(lambda d=data: records(io.BytesIO(d))) == \
            outcome(lambda d=data: reference(d))
        assert isinstance(outcome(lambda d=data: reference(d)), tuple)


# --------------------------------------------------------------------------- properties

PAYLOAD_GROUPS = st.lists(
    st.one_of(
        st.binary(max_size=40).map(lambda payload: [payload]),
        st.sampled_from([[MAGIC_BYTES], [MAGIC_BYTES * 2 + b"x"], [b"abcd" + MAGIC_BYTES]]),
        st.builds(run, st.integers(0, 24), st.integers(16, 40), st.integers(0, 250)),
    ),
    max_size=8,
)
READ_SIZES = st.lists(st.integers(1, 97), min_size=1, max_size=6)


@FUZZ
@given(PAYLOAD_GROUPS, st.integers(16, 300), st.integers(16, 64), READ_SIZES)
def test_round_trip_any_chunk_size_and_read_split(groups: list[list[bytes]], chunk_size: int,
                                                  first_read: int,
                                                  read_sizes: list[int]) -> None:
    payloads = [payload for group in groups for payload in group]
    data = encode(payloads)
    assert records(SplitReads(data, read_sizes), chunk_size, first_read) == payloads


def test_reads_grow_from_the_first_read_to_the_chunk_size() -> None:
    class Recording(io.BytesIO):
        requests: list[int] = []

        def readinto(self, buffer: object) -> int:  # type: ignore[override]
            self.requests.append(len(buffer))  # type: ignore[arg-type]
            return super().readinto(buffer)  # type: ignore[arg-type]

    # The second fill must hold a 300-byte record although the second read would be 128.
    payloads = [b"y" * 300] + run(100, 60) + run(3, 20)
    stream = Recording(encode(payloads))
    assert records(stream, 512, 64) == payloads
    assert stream.requests[:4] == [64, 308 - 64, 256, 512]
    assert set(stream.requests[4:]) == {512}


@FUZZ
@given(PAYLOAD_GROUPS, st.data(), st.integers(16, 300), READ_SIZES)
def test_corrupt_or_truncated_input_fails_exactly_like_the_batch_scanner(
        groups: list[list[bytes]], data: st.DataObject, chunk_size: int,
        read_sizes: list[int]) -> None:
    stream = bytearray(encode([payload for group in groups for payload in group]))
    if stream:
        for _ in range(data.draw(st.integers(0, 3))):
            at = data.draw(st.integers(0, len(stream) - 1))
            stream[at] ^= 1 << data.draw(st.integers(0, 7))
        stream = stream[:data.draw(st.integers(0, len(stream)))]
    corrupt = bytes(stream)
    ours = outcome(lambda: records(SplitReads(corrupt, read_sizes), chunk_size))
    assert ours == outcome(lambda: reference(corrupt))


@FUZZ
@given(st.binary(max_size=400), st.integers(16, 120))
def test_random_bytes_fail_like_the_batch_scanner(data: bytes, chunk_size: int) -> None:
    assert outcome(lambda: records(io.BytesIO(data), chunk_size)) == \
        outcome(lambda: reference(data))


@FUZZ
@given(st.integers(16, 64), st.integers(0, 30), st.integers(1, 60))
def test_uniform_run_counts_exactly_the_equal_headers(length: int, tail: int,
                                                      count: int) -> None:
    payloads = run(length, count) + [b"t" * tail]
    data = encode(payloads)
    scanner = recordio._Scanner(io.BytesIO(data), "<t>", recordio.LENGTH_LIMIT, 1 << 20)
    assert scanner.fill(len(data))
    found, found_length = scanner.uniform_run()
    candidates = len(data) // (8 + (length + 3) // 4 * 4)  # header slots at the run's stride
    if candidates < 16:  # too few to vectorise: left to the per-record loop
        assert found == 0
    else:
        assert found == count + (tail == length)
        assert found_length == length
