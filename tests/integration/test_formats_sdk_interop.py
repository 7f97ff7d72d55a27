"""Interop with the reference SDK (``sagemaker`` 2.x, a test-only dependency).

What the SDK writes must decode exactly with ours, and what we write must be readable by the
SDK's RecordIO reader and its own protobuf ``Record`` class (a different generated module in
the default descriptor pool - importing both in one process must work too).
"""

from __future__ import annotations

import io
import warnings
from types import ModuleType

import numpy as np
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.formats import recordio
from toolkit.formats import recordio_protobuf as rp

SDK_TENSOR = {np.dtype(np.float32): "float32_tensor", np.dtype(np.float64): "float64_tensor",
              np.dtype(np.int64): "int32_tensor"}
OUR_DTYPE = {np.dtype(np.float32): np.float32, np.dtype(np.float64): np.float64,
             np.dtype(np.int64): np.int32}


@pytest.fixture(scope="module")
def sdk() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sagemaker.amazon import common
    return common


def sample(dtype: np.dtype, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 1000).astype(dtype)


@pytest.mark.parametrize("dtype", list(SDK_TENSOR))
@pytest.mark.parametrize("labelled", [False, True])
def test_sdk_dense_output_decodes_exactly(sdk: ModuleType, dtype: np.dtype,
                                          labelled: bool) -> None:
    features = sample(dtype, (300, 17))
    labels = np.arange(300).astype(dtype) if labelled else None
    written = io.BytesIO()
    sdk.write_numpy_to_dense_tensor(written, features, labels)
    decoded = rp.decode(written.getvalue(), source="sdk")
    assert decoded.features.dtype == OUR_DTYPE[dtype]
    assert np.array_equal(decoded.features, features)
    if labelled:
        assert decoded.labels is not None and np.array_equal(decoded.labels, labels)
    else:
        assert decoded.labels is None
    # Same wire bytes: our encoder is a drop-in replacement for the SDK's writer.
    assert rp.encode_dense(features, labels) == written.getvalue()


@pytest.mark.parametrize("dtype", list(SDK_TENSOR))
def test_sdk_sparse_output_decodes_exactly(sdk: ModuleType, dtype: np.dtype) -> None:
    rng = np.random.default_rng(4)
    matrix = scipy.sparse.random(200, 50, density=0.05, format="csr", random_state=4,
                                 data_rvs=lambda n: rng.integers(1, 1000, n)).astype(dtype)
    labels = np.arange(200).astype(np.float32)
    written = io.BytesIO()
    sdk.write_spmatrix_to_sparse_tensor(written, matrix, labels)
    decoded = rp.decode(written.getvalue())
    assert scipy.sparse.isspmatrix_csr(decoded.features)
    assert decoded.features.shape == matrix.shape
    assert decoded.features.dtype == OUR_DTYPE[dtype]
    assert (decoded.features != matrix).nnz == 0
    assert decoded.labels is not None and np.array_equal(decoded.labels, labels)
    assert rp.encode_sparse(matrix, labels) == written.getvalue()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_our_dense_output_reads_with_the_sdk(sdk: ModuleType, dtype: type) -> None:
    features = sample(np.dtype(dtype), (120, 6), seed=2)
    labels = np.arange(120).astype(dtype)
    records = sdk.read_records(io.BytesIO(rp.encode_dense(features, labels)))
    name = {np.float32: "float32_tensor", np.float64: "float64_tensor",
            np.int32: "int32_tensor"}[dtype]
    assert len(records) == 120
    for row, label, record in zip(features, labels, records):
        assert list(record.features.keys()) == ["values"]
        assert np.array_equal(np.array(getattr(record.features["values"], name).values), row)
        assert list(getattr(record.label["values"], name).values) == [label]


def test_our_sparse_output_reads_with_the_sdk(sdk: ModuleType) -> None:
    matrix = scipy.sparse.random(80, 30, density=0.1, format="csr", random_state=9,
                                 dtype=np.float32)
    records = sdk.read_records(io.BytesIO(rp.encode_sparse(matrix)))
    assert len(records) == 80
    for i, record in enumerate(records):
        tensor = record.features["values"].float32_tensor
        row = matrix.getrow(i)
        assert list(tensor.shape) == [30]
        assert list(tensor.keys) == row.indices.tolist()
        assert np.array_equal(np.array(tensor.values, dtype=np.float32), row.data)


def test_sdk_raw_reader_sees_our_framing(sdk: ModuleType) -> None:
    payloads = [b"", b"a", b"abcd", b"abcde" * 50]
    framed = b"".join(recordio.frame_record(p) for p in payloads)
    assert list(sdk.read_recordio(io.BytesIO(framed))) == payloads
    assert list(recordio.read_records(io.BytesIO(framed))) == payloads


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 30), st.integers(1, 20), st.sampled_from(list(SDK_TENSOR)),
       st.integers(0, 2**32 - 1))
def test_sdk_round_trip_property(sdk: ModuleType, rows: int, width: int, dtype: np.dtype,
                                 seed: int) -> None:
    features = sample(dtype, (rows, width), seed)
    written = io.BytesIO()
    sdk.write_numpy_to_dense_tensor(written, features)
    assert np.array_equal(rp.decode(written.getvalue()).features, features)
