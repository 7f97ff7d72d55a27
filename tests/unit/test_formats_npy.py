"""toolkit.formats.npy: no pickle, bounded sizes, round trips, files/mmap, fuzzing."""

from __future__ import annotations

import contextlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toolkit.formats.errors import FormatError
from toolkit.formats.npy import decode_npy, decode_npz, encode_npy, encode_npz, read_npy

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ARRAYS = hnp.arrays(
    st.sampled_from([np.dtype(t) for t in ("<f4", ">f8", "<i8", "u1", "?", "<c8", "<U3", "S2")]),
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))


def _header(descr: str, shape: tuple[int, ...], fortran: bool = False) -> bytes:
    """An NPY 1.0 header; ``descr`` is the literal text of the dtype description."""
    text = f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    text += " " * (63 - (len(text) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def test_round_trip_keeps_dtype_order_and_values() -> None:
    array = np.arange(12, dtype=">f8").reshape(3, 4).T
    got = decode_npy(encode_npy(array))
    assert got.dtype == array.dtype and got.flags.f_contiguous and got.flags.writeable
    np.testing.assert_array_equal(got, array)
    assert decode_npy(encode_npy(np.float32(2.5))) == np.float32(2.5)


def test_reads_what_numpy_writes() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([[1, 2], [3, 4]], dtype=np.int16))
    np.testing.assert_array_equal(decode_npy(buffer.getvalue()), [[1, 2], [3, 4]])


def test_pickled_objects_are_refused() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError, match="pickled objects are refused"):
        decode_npy(buffer.getvalue(), source="req")
    structured = _header("[('a', '<i4'), ('b', '|O')]", (1,)) + b"\0" * 12
    with pytest.raises(FormatError, match="pickled objects are refused"):
        decode_npy(structured)
    with pytest.raises(TypeError, match="pickle"):
        encode_npy(np.array([object()]))


def test_huge_claim_with_short_body_fails_fast() -> None:
    body = _header("'<f8'", (10**12,)) + b"\0" * 64
    with pytest.raises(FormatError) as info:
        decode_npy(body, source="req")
    assert "8000000000000 data bytes" in str(info.value) and info.value.offset == len(body) - 64
    with pytest.raises(FormatError):
        read_npy(io.BytesIO(body))
    with pytest.raises(FormatError):
        decode_npy(_header("'<f8'", (10**10, 10**10, 10**10)))


def test_trailing_bytes_and_bad_headers() -> None:
    good = encode_npy(np.arange(3))
    with pytest.raises(FormatError, match="are present"):
        decode_npy(good + b"x")
    with pytest.raises(FormatError, match="not a valid NPY header"):
        decode_npy(b"PK\x03\x04 not npy")
    with pytest.raises(FormatError, match="not a valid NPY header"):
        decode_npy(_header("'<f8'", (-1,)))
    with pytest.raises(FormatError):
        decode_npy(b"\x93NUMPY\x09\x00" + good[8:])


def test_npz_round_trip_and_limits() -> None:
    arrays = {"x": np.arange(6.0).reshape(2, 3), "names": np.array(["é", "b"])}
    for compress in (False, True):
        got = decode_npz(encode_npz(arrays, compress=compress))
        assert got.keys() == arrays.keys()
        for key, value in arrays.items():
            np.testing.assert_array_equal(got[key], value)
    with np.load(io.BytesIO(encode_npz(arrays))) as loaded:  # numpy can read ours
        np.testing.assert_array_equal(loaded["x"], arrays["x"])
    with pytest.raises(FormatError, match="more than the limit"):
        decode_npz(encode_npz({"x": np.zeros(1000)}), max_bytes=100)
    with pytest.raises(FormatError, match="not a valid NPZ"):
        decode_npz(b"nope")


def test_npz_bad_members() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", b"hi")
    with pytest.raises(FormatError, match=r"not a \.npy file"):
        decode_npz(buffer.getvalue())
    pickled = io.BytesIO()
    np.savez(pickled, bad=np.array([None], dtype=object))
    with pytest.raises(FormatError, match=r"\[bad.npy\].*pickled objects are refused"):
        decode_npz(pickled.getvalue(), source="req")


def test_read_npy_file_memory_mapped_and_copied(tmp_path: Path) -> None:
    array = np.arange(20, dtype=np.float32).reshape(4, 5)
    path = tmp_path / "a.npy"
    np.save(path, array)
    mapped = read_npy(path)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, array)
    del mapped
    loaded = read_npy(path, mmap=False)
    assert not isinstance(loaded, np.memmap) and loaded.flags.writeable
    np.testing.assert_array_equal(read_npy(str(path)), array)
    np.testing.assert_array_equal(read_npy(io.BytesIO(path.read_bytes())), array)
    fortran = np.asfortranarray(array)
    np.save(path, fortran)
    np.testing.assert_array_equal(read_npy(path), fortran)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(FormatError) as info:
        read_npy(path)
    assert info.value.source == str(path)


@FUZZ
@given(ARRAYS)
def test_round_trip_property(array: np.ndarray) -> None:
    body = encode_npy(array)
    for got in (decode_npy(body), read_npy(io.BytesIO(body))):
        assert got.dtype == array.dtype and got.shape == array.shape
        np.testing.assert_array_equal(got, array)


@FUZZ
@given(st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5), ARRAYS, max_size=3))
def test_npz_round_trip_property(arrays: dict[str, np.ndarray]) -> None:
    got = decode_npz(encode_npz(arrays))
    assert got.keys() == arrays.keys()
    for key, value in arrays.items():
        np.testing.assert_array_equal(got[key], value)


def _decode_or_format_error(body: bytes) -> None:
    try:
        array = decode_npy(body)
    except FormatError:
        with pytest.raises(FormatError):
            read_npy(io.BytesIO(body))
        return
    np.testing.assert_array_equal(read_npy(io.BytesIO(body)), array)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(body: bytes) -> None:
    _decode_or_format_error(body)
    _decode_or_format_error(b"\x93NUMPY\x01\x00" + body)
    with contextlib.suppress(FormatError):
        decode_npz(body)


@FUZZ
@given(ARRAYS, st.data())
def test_mutations_and_truncations_never_crash(array: np.ndarray, data: st.DataObject) -> None:
    body = bytearray(encode_npy(array))
    for _ in range(data.draw(st.integers(0, 4))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    _decode_or_format_error(bytes(body[:data.draw(st.integers(0, len(body)))]))


@FUZZ
@given(st.data())
def test_npz_mutations_never_crash(data: st.DataObject) -> None:
    body = bytearray(encode_npz({"a": np.arange(5), "b": np.ones((2, 2))},
                                compress=data.draw(st.booleans())))
    for _ in range(data.draw(st.integers(1, 4))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(FormatError):
        decode_npz(bytes(body[:data.draw(st.integers(0, len(body)))]))
