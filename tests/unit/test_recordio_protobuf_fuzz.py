"""Property tests: the fast wire decoder and the protobuf runtime path agree on everything.

"Agree" means the same arrays (NaN payload bits aside: the runtime hands float32 values through
Python floats, which quiets signalling NaNs) or the same FormatError message, and that no input
raises anything but FormatError.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.formats import _record_pb2, recordio
from toolkit.formats import recordio_protobuf as rp
from toolkit.formats.errors import FormatError

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KINDS = ["float32_tensor", "float64_tensor", "int32_tensor"]
ELEMENTS = {
    "float32_tensor": st.floats(width=32),
    "float64_tensor": st.floats(),
    "int32_tensor": st.integers(-(1 << 31), (1 << 31) - 1),
}


def outcome(data: bytes, fast_path: bool) -> tuple[str, object]:
    try:
        return "ok", rp.decode(data, source="fuzz", fast_path=fast_path)
    except FormatError as exc:
        return "error", str(exc)


def same_array(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


def assert_agree(data: bytes) -> tuple[str, object]:
    fast, slow = outcome(data, True), outcome(data, False)
    assert fast[0] == slow[0], (fast, slow)
    if fast[0] == "error":
        assert fast[1] == slow[1]
        return fast
    a, b = fast[1], slow[1]
    assert isinstance(a, rp.DecodedRecords) and isinstance(b, rp.DecodedRecords)
    if isinstance(a.features, np.ndarray):
        assert isinstance(b.features, np.ndarray) and same_array(a.features, b.features)
    else:
        assert scipy.sparse.isspmatrix_csr(b.features) and a.features.shape == b.features.shape
        assert same_array(a.features.indptr, b.features.indptr)
        assert same_array(a.features.indices, b.features.indices)
        assert same_array(a.features.data, b.features.data)
    assert (a.labels is None) == (b.labels is None)
    if a.labels is not None:
        assert same_array(a.labels, b.labels)
    return fast


@st.composite
def records(draw: st.DrawFn) -> list[_record_pb2.Record]:
    """Mostly consistent rows (so decoding often succeeds), with occasional oddities."""
    kind = draw(st.sampled_from(KINDS))
    label_kind = draw(st.sampled_from([None, *KINDS]))
    sparse = draw(st.booleans())
    width = draw(st.integers(0 if not sparse else 1, 6))
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        record = _record_pb2.Record()
        row_kind = kind if draw(st.integers(0, 9)) else draw(st.sampled_from(KINDS))
        tensor = getattr(record.features["values"], row_kind)
        if sparse:
            keys = draw(st.lists(st.integers(0, width), max_size=width, unique=True))
            tensor.keys.extend(keys)
            tensor.values.extend(draw(st.lists(ELEMENTS[row_kind], min_size=len(keys),
                                               max_size=len(keys))))
            tensor.shape.append(width if draw(st.integers(0, 9)) else width + 1)
        else:
            row_width = width if draw(st.integers(0, 9)) else width + 1
            tensor.values.extend(draw(st.lists(ELEMENTS[row_kind], min_size=row_width,
                                               max_size=row_width)))
            if draw(st.integers(0, 5)) == 0:
                tensor.shape.append(row_width)
        if label_kind is not None and draw(st.integers(0, 19)):
            label = getattr(record.label["values"], label_kind)
            label.values.extend(draw(st.lists(ELEMENTS[label_kind], min_size=1, max_size=1)))
        if draw(st.integers(0, 9)) == 0:
            record.uid = draw(st.text(max_size=5))
        if draw(st.integers(0, 19)) == 0:
            record.features["extra"].int32_tensor.values.append(1)
        rows.append(record)
    return rows


def serialize(rows: list[_record_pb2.Record]) -> bytes:
    return b"".join(recordio.frame_record(r.SerializeToString()) for r in rows)


@FUZZ
@given(records())
def test_fast_and_runtime_paths_agree_on_structured_records(rows: list[_record_pb2.Record]
                                                            ) -> None:
    assert_agree(serialize(rows))


@FUZZ
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=5))
def test_fast_and_runtime_paths_agree_on_random_payloads(payloads: list[bytes]) -> None:
    assert_agree(b"".join(recordio.frame_record(p) for p in payloads))


@FUZZ
@given(records(), st.data())
def test_bit_flips_in_payloads_agree_or_raise_format_error(rows: list[_record_pb2.Record],
                                                           data: st.DataObject) -> None:
    payloads = [bytearray(r.SerializeToString()) for r in rows]
    index = data.draw(st.integers(0, len(payloads) - 1))
    if payloads[index]:
        bit = data.draw(st.integers(0, len(payloads[index]) * 8 - 1))
        payloads[index][bit // 8] ^= 1 << (bit % 8)
    assert_agree(b"".join(recordio.frame_record(bytes(p)) for p in payloads))


DENSE = rp.encode_dense(np.arange(12, dtype=np.int32).reshape(4, 3) - 6, np.arange(4.0))
SPARSE = rp.encode_sparse(scipy.sparse.csr_matrix(np.array([[0, 1.5], [0, 0], [2.5, 0]])))


@FUZZ
@given(st.sampled_from([DENSE, SPARSE]), st.data())
def test_bit_flips_anywhere_raise_only_format_error(valid: bytes, data: st.DataObject) -> None:
    corrupt = bytearray(valid)
    bit = data.draw(st.integers(0, len(corrupt) * 8 - 1))
    corrupt[bit // 8] ^= 1 << (bit % 8)
    assert_agree(bytes(corrupt))


def test_every_truncation_raises_format_error_or_decodes_a_prefix() -> None:
    for valid in (DENSE, SPARSE):
        boundaries = [0]
        for batch in recordio.scan_buffer(valid):
            boundaries += (batch.starts + batch.lengths + (-batch.lengths % 4)).tolist()
        for cut in range(len(valid)):
            kind, _ = assert_agree(valid[:cut])
            assert (kind == "ok") == (cut in boundaries), cut


@FUZZ
@given(st.integers(1, 20), st.integers(0, 12), st.sampled_from([np.float32, np.float64,
                                                                 np.int32]), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_encode_decode_round_trip(rows: int, width: int, dtype: type, labelled: bool,
                                  seed: int) -> None:
    rng = np.random.default_rng(seed)
    features = (rng.standard_normal((rows, width)) * 1e6).astype(dtype)
    labels = rng.integers(-9, 9, rows).astype(dtype) if labelled else None
    kind, decoded = assert_agree(rp.encode_dense(features, labels))
    assert kind == "ok" and isinstance(decoded, rp.DecodedRecords)
    assert np.array_equal(decoded.features, features)
    sparse = scipy.sparse.random(rows, width + 1, density=0.3, random_state=seed,
                                 dtype=np.float64).astype(dtype)
    kind, decoded = assert_agree(rp.encode_sparse(sparse, labels))
    assert kind == "ok" and isinstance(decoded, rp.DecodedRecords)
    assert (decoded.features != sparse.tocsr()).nnz == 0
