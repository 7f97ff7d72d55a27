"""RecordIO-protobuf: round trips, wire compatibility, validation errors naming records."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.sparse

from toolkit.formats import _record_pb2, recordio
from toolkit.formats import recordio_protobuf as rp
from toolkit.formats.errors import FormatError

RNG = np.random.default_rng(11)
DTYPES = [np.float32, np.float64, np.int32]


def frame(records: list[_record_pb2.Record]) -> bytes:
    return b"".join(recordio.frame_record(r.SerializeToString()) for r in records)


def dense_record(values: list[float], kind: str = "float32_tensor",
                 label: float | None = None, shape: list[int] | None = None) -> _record_pb2.Record:
    record = _record_pb2.Record()
    tensor = getattr(record.features["values"], kind)
    tensor.values.extend(values)
    if shape is not None:
        tensor.shape.extend(shape)
    if label is not None:
        getattr(record.label["values"], kind).values.append(label)
    return record


def sparse_record(values: list[float], keys: list[int], width: int) -> _record_pb2.Record:
    record = _record_pb2.Record()
    tensor = record.features["values"].float32_tensor
    tensor.values.extend(values)
    tensor.keys.extend(keys)
    tensor.shape.append(width)
    return record


def both(data: bytes) -> rp.DecodedRecords:
    """Decode with the fast path and with the protobuf runtime; both must agree exactly."""
    fast = rp.decode(data)
    slow = rp.decode(data, fast_path=False)
    assert_same(fast, slow)
    return fast


def assert_same(a: rp.DecodedRecords, b: rp.DecodedRecords) -> None:
    assert type(a.features) is type(b.features)
    if isinstance(a.features, np.ndarray):
        assert a.features.dtype == b.features.dtype and a.features.shape == b.features.shape
        assert a.features.tobytes() == b.features.tobytes()
    else:
        assert a.features.shape == b.features.shape and a.features.dtype == b.features.dtype
        assert np.array_equal(a.features.indptr, b.features.indptr)
        assert np.array_equal(a.features.indices, b.features.indices)
        assert a.features.data.tobytes() == b.features.data.tobytes()
    assert (a.labels is None) == (b.labels is None)
    if a.labels is not None:
        assert a.labels.dtype == b.labels.dtype and a.labels.shape == b.labels.shape
        assert a.labels.tobytes() == b.labels.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_labels", [False, True])
def test_dense_round_trip(dtype: type, with_labels: bool) -> None:
    features = (RNG.normal(size=(64, 9)) * 1e4).astype(dtype)
    labels = RNG.integers(-3, 3, 64).astype(dtype) if with_labels else None
    decoded = both(rp.encode_dense(features, labels))
    assert decoded.features.dtype == np.dtype(dtype)
    assert np.array_equal(decoded.features, features)
    if with_labels:
        assert decoded.labels is not None and np.array_equal(decoded.labels, labels)
    else:
        assert decoded.labels is None
    assert len(decoded) == 64


def test_extreme_int32_values_and_label_matrices() -> None:
    features = np.array([[-(1 << 31), (1 << 31) - 1, 0, -1]] * 3, dtype=np.int32)
    labels = np.array([[1.5, 2.5], [3.5, 4.5], [5.5, 6.5]])
    decoded = both(rp.encode_dense(features, labels))
    assert np.array_equal(decoded.features, features)
    assert decoded.labels is not None and np.array_equal(decoded.labels, labels)


def test_mixed_label_dtype_and_special_floats() -> None:
    features = np.array([[np.nan, np.inf, -0.0], [1.0, -np.inf, 5e-45]], dtype=np.float32)
    decoded = both(rp.encode_dense(features, np.array([1, 2], dtype=np.int64)))
    assert decoded.features.tobytes() == features.tobytes()
    assert decoded.labels is not None and decoded.labels.dtype == np.int32


def test_dtype_resolution_and_refusals() -> None:
    half = rp.decode(rp.encode_dense(np.ones((2, 2), dtype=np.float16)))
    assert half.features.dtype == np.float32
    small_ints = rp.decode(rp.encode_dense(np.arange(4, dtype=np.uint8).reshape(2, 2)))
    assert small_ints.features.dtype == np.int32
    with pytest.raises(ValueError, match="int32 range"):
        rp.encode_dense(np.array([[1 << 40]]))
    with pytest.raises(TypeError, match="dtype bool"):
        rp.encode_dense(np.ones((1, 1), dtype=bool))
    with pytest.raises(ValueError, match="2-D"):
        rp.encode_dense(np.ones(3))
    with pytest.raises(ValueError, match="labels must be"):
        rp.encode_dense(np.ones((3, 2)), np.ones(2))


def test_encoding_is_byte_identical_to_the_protobuf_runtime() -> None:
    features = RNG.normal(size=(5, 3))
    labels = np.arange(5, dtype=np.float64)
    expected = frame([dense_record(list(row), "float64_tensor", float(lab))
                      for row, lab in zip(features, labels)])
    assert rp.encode_dense(features, labels) == expected
    ints = np.array([[-5, 300], [7, 0]], dtype=np.int32)
    assert rp.encode_dense(ints) == frame([dense_record([-5, 300], "int32_tensor"),
                                           dense_record([7, 0], "int32_tensor")])
    matrix = scipy.sparse.csr_matrix(np.array([[0, 2.5, 0], [0, 0, 0], [1, 0, 3]],
                                              dtype=np.float32))
    assert rp.encode_sparse(matrix) == frame([sparse_record([2.5], [1], 3),
                                              sparse_record([], [], 3),
                                              sparse_record([1, 3], [0, 2], 3)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_round_trip(dtype: type, fmt: str) -> None:
    matrix = scipy.sparse.random(50, 70, density=0.1, format=fmt, random_state=3,
                                 data_rvs=lambda n: RNG.integers(-99, 99, n)).astype(dtype)
    labels = np.arange(50, dtype=np.float32)
    decoded = both(rp.encode_sparse(matrix, labels))
    assert scipy.sparse.isspmatrix_csr(decoded.features)
    assert decoded.features.shape == (50, 70) and decoded.features.dtype == np.dtype(dtype)
    assert (decoded.features != matrix.tocsr()).nnz == 0
    assert decoded.labels is not None and np.array_equal(decoded.labels, labels)


def test_sparse_refuses_dense_input() -> None:
    with pytest.raises(TypeError, match="scipy sparse"):
        rp.encode_sparse(np.ones((2, 2)))


def test_empty_inputs() -> None:
    assert rp.encode_dense(np.ones((0, 4), dtype=np.float32)) == b""
    decoded = rp.decode(b"")
    assert decoded.features.shape == (0, 0) and decoded.labels is None


def test_zero_width_dense_rows() -> None:
    decoded = both(rp.encode_dense(np.ones((3, 0), dtype=np.float32)))
    assert decoded.features.shape == (3, 0)


def test_payload_containing_the_magic_is_split_and_reassembled() -> None:
    magic_float = np.frombuffer(recordio.MAGIC_BYTES, dtype="<f4")[0]
    features = np.zeros((4, 6), dtype=np.float32)
    features[1, :] = magic_float
    features[2, 3] = magic_float
    data = rp.encode_dense(features, np.array([magic_float] * 4, dtype=np.float32))
    assert data.count(recordio.MAGIC_BYTES) > 4  # some records were split
    decoded = both(data)
    assert decoded.features.tobytes() == features.tobytes()


def test_write_helpers_and_streams() -> None:
    out = io.BytesIO()
    written = rp.write_dense(out, np.eye(3, dtype=np.float32))
    written += rp.write_dense(out, 2 * np.eye(3, dtype=np.float32))
    assert written == len(out.getvalue())
    out.seek(0)
    decoded = rp.decode(out, source="train")
    assert np.array_equal(decoded.features, np.vstack([np.eye(3), 2 * np.eye(3)]))
    sparse_out = io.BytesIO()
    rp.write_sparse(sparse_out, scipy.sparse.identity(4, format="csr"))
    assert (rp.decode(sparse_out.getvalue()).features != scipy.sparse.identity(4)).nnz == 0


def test_iter_decoded_batches_in_order() -> None:
    features = np.arange(100 * 3, dtype=np.float64).reshape(100, 3)
    stream = io.BytesIO(rp.encode_dense(features, np.arange(100.0)))
    batches = list(rp.iter_decoded(stream, source="train_0", batch_size=30))
    assert [len(b) for b in batches] == [30, 30, 30, 10]
    assert np.array_equal(np.vstack([b.features for b in batches]), features)
    assert np.array_equal(np.concatenate([b.labels for b in batches]), np.arange(100.0))
    with pytest.raises(ValueError):
        list(rp.iter_decoded(io.BytesIO(), batch_size=0))


def test_iter_decoded_reports_a_layout_change_between_batches() -> None:
    data = rp.encode_dense(np.ones((4, 3), dtype=np.float32)) + rp.encode_dense(
        np.ones((2, 5), dtype=np.float32))
    with pytest.raises(FormatError, match="record 4 starts a run of dense float32 rows of "
                                          "width 5"):
        list(rp.iter_decoded(io.BytesIO(data), batch_size=4))


# ------------------------------------------------------------------ errors naming records

def error_of(data: bytes, fast_path: bool = True) -> FormatError:
    with pytest.raises(FormatError) as info:
        rp.decode(data, source="chan", fast_path=fast_path)
    assert info.value.source == "chan"
    return info.value


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize(("records", "message"), [
    ([dense_record([1, 2]), dense_record([1, 2, 3])], "record 1 has 3 values but record 0 has 2"),
    ([dense_record([1.0]), dense_record([1.0], "float64_tensor")],
     "record 1 has feature tensor type float64_tensor but record 0 has float32_tensor"),
    ([dense_record([1.0, 2.0]), sparse_record([1.0], [0], 2)],
     "record 1 is sparse but record 0 is dense"),
    ([sparse_record([1.0], [0], 2), sparse_record([1.0], [0], 3)],
     "record 1 has width 3 but record 0 has width 2"),
    ([sparse_record([1.0], [0], 2), sparse_record([1.0], [5], 2)],
     "record 1 has key 5 outside its width 2"),
    ([sparse_record([1.0, 2.0], [0], 2)], "record 0 is sparse with 1 keys but 2 values"),
    ([dense_record([1.0], label=1.0), dense_record([1.0])],
     "record 1 has label tensor type no label"),
    ([dense_record([1.0, 2.0], shape=[3])], "record 0 has 2 values but its shape holds 3"),
    ([_record_pb2.Record()], "record 0 has feature keys []"),
])
def test_inconsistent_records_are_named(records: list[_record_pb2.Record], message: str,
                                        fast_path: bool) -> None:
    error = error_of(frame(records), fast_path)
    assert message in str(error) or pytest.fail(str(error))


def test_unsupported_records_are_named() -> None:
    bytes_record = _record_pb2.Record()
    bytes_record.features["values"].bytes.value.append(b"jpeg")
    assert "record 1 feature 'values' holds bytes" in str(
        error_of(frame([dense_record([1.0]), bytes_record])))
    two_keys = dense_record([1.0])
    two_keys.features["other"].float32_tensor.values.append(2.0)
    assert "feature keys ['other', 'values']" in str(error_of(frame([two_keys])))
    sparse_label = dense_record([1.0])
    sparse_label.label["values"].float32_tensor.keys.append(0)
    assert "sparse or shaped label" in str(error_of(frame([sparse_label])))


def test_garbage_payload_names_record_and_offset() -> None:
    data = rp.encode_dense(np.ones((2, 2), dtype=np.float32)) + recordio.frame_record(b"\xff\xff")
    error = error_of(data)
    assert "record 2 is not a valid protobuf Record" in str(error)
    assert error.offset == len(rp.encode_dense(np.ones((2, 2), dtype=np.float32)))


def test_unusual_but_valid_records_take_the_runtime_path() -> None:
    with_uid = dense_record([1.0, 2.0], label=3.0)
    with_uid.uid = "row-1"
    with_uid.metadata = "{}"
    shaped = dense_record([4.0, 5.0], shape=[2], label=6.0)
    unpacked = dense_record([7.0, 8.0], label=9.0).SerializeToString()
    decoded = both(frame([with_uid, shaped]) + recordio.frame_record(unpacked))
    assert np.array_equal(decoded.features, [[1, 2], [4, 5], [7, 8]])
    assert decoded.labels is not None and np.array_equal(decoded.labels, [3, 6, 9])


def test_canonical_records_never_touch_the_protobuf_runtime(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def refuse(*args: object) -> None:
        raise AssertionError("the fast path fell back to the protobuf runtime")

    monkeypatch.setattr(rp, "_runtime_record", refuse)
    ints = RNG.integers(-(1 << 31), 1 << 31, size=(40, 5)).astype(np.int32)
    matrix = scipy.sparse.random(40, 9, density=0.3, format="csr", random_state=5)
    for data in (rp.encode_dense(RNG.normal(size=(40, 5)).astype(np.float32), np.ones(40)),
                 rp.encode_dense(ints, np.arange(40)),
                 rp.encode_sparse(matrix, np.arange(40.0)),
                 rp.encode_dense(np.ones((2, 3))) + rp.encode_dense(np.ones((2, 3)), None)):
        rp.decode(data)
    varying = frame([dense_record([1.0, 2.0]), dense_record([3.0, 4.0], shape=[2])])
    assert np.array_equal(rp.decode(varying).features, [[1, 2], [3, 4]])


def test_a_feature_key_that_is_not_utf8_is_a_format_error_naming_it() -> None:
    # two Record.features entries, each an empty Value: "values" and b"valu\xe5s" (invalid
    # UTF-8, which the runtime hands back as bytes: sorting str with bytes raised TypeError)
    good, bad = (b"\x0a\x06" + key + b"\x12\x00" for key in (b"values", b"valu\xe5s"))
    record = b"".join(b"\x0a" + bytes([len(entry)]) + entry for entry in (good, bad))
    stream = io.BytesIO()
    recordio.write_record(stream, record)
    with pytest.raises(FormatError, match="record 0"):
        rp.decode(stream.getvalue())
