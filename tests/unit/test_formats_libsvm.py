"""toolkit.formats.libsvm: parsing policy, errors with line numbers, round trips, fuzzing."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toolkit.formats.errors import FormatError
from toolkit.formats.libsvm import LibSVMData, encode_libsvm, read_libsvm

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_basic_one_based_auto() -> None:
    data = read_libsvm(b"1 1:0.5 3:2\n-1 2:1.5\n")
    assert isinstance(data.features, sp.csr_matrix)
    np.testing.assert_array_equal(data.features.toarray(), [[0.5, 0, 2], [0, 1.5, 0]])
    np.testing.assert_array_equal(data.labels, [1, -1])
    assert data.weights is None and data.query_ids is None


def test_zero_based_auto_detection_and_explicit() -> None:
    assert read_libsvm(b"1 0:1 2:1\n").features.shape == (1, 3)
    assert read_libsvm(b"1 1:1 2:1\n", zero_based=True).features.shape == (1, 3)
    with pytest.raises(FormatError) as info:
        read_libsvm(b"1 1:1\n0 0:1\n", zero_based=False)
    assert info.value.line == 2


def test_comments_blank_lines_crlf_tabs() -> None:
    body = b"# header comment\r\n\r\n1\t1:1 # trailing\r\n   \n2 2:2\r\n"
    data = read_libsvm(body)
    np.testing.assert_array_equal(data.labels, [1, 2])
    np.testing.assert_array_equal(data.features.toarray(), [[1, 0], [0, 2]])


def test_weights_and_query_ids_are_kept() -> None:
    data = read_libsvm(b"1:0.5 qid:7 1:1\n0:2 qid:8 2:1\n")
    np.testing.assert_array_equal(data.weights, [0.5, 2])
    np.testing.assert_array_equal(data.query_ids, [7, 8])


def test_rows_without_features_and_n_features() -> None:
    data = read_libsvm(b"1\n2 1:1\n3\n", n_features=4)
    assert data.features.shape == (3, 4)
    assert data.features.nnz == 1
    assert read_libsvm(b"").features.shape == (0, 0)
    with pytest.raises(FormatError) as info:
        read_libsvm(b"1 1:1\n1 9:1\n", n_features=4)
    assert info.value.line == 2 and "n_features=4" in str(info.value)


def test_explicit_zero_kept_and_special_values() -> None:
    data = read_libsvm(b"nan 1:0 2:inf 3:-Infinity\n", zero_based=False)
    assert data.features.nnz == 3 and np.isnan(data.labels[0])
    assert data.features[0, 1] == np.inf


@pytest.mark.parametrize(("body", "line", "fragment"), [
    (b"1 1:1\n1 2:1 1:1\n", 2, "strictly increasing"),
    (b"1 1:1\n1 2:1 2:1\n", 2, "strictly increasing"),
    (b"1 1:1\n1 1\n", 2, "is not index:value"),
    (b"1 1:1\nx 1:1\n", 2, "label"),
    (b"1 1:1\n1 -1:1\n", 2, "not an integer"),
    (b"1 1:1\n1 1.5:1\n", 2, "not an integer"),
    (b"1 1:1\n1 1:abc\n", 2, "value"),
    (b"1 1:1\n1 1:1e39\n", 2, "out of range for float32"),
    (b"1 1:1\n1 1:1_0\n", 2, "value"),
    (b"1:1 1:1\n\n1 1:1\n", 3, "lacks a weight"),
    (b"1 1:1\n1:x 1:1\n", 2, "has a weight"),
    (b"1 qid:1 1:1\n1 1:1\n", 2, "lacks qid"),
    (b"1 qid:a 1:1\n", 1, "qid"),
    (b"1 1:1\n1 1:\xff\n", 2, "value"),
    (b"1 1:1\n1 " + b"9" * 19 + b":1\n", 2, "at most 18 digits"),
])
def test_errors_name_the_line(body: bytes, line: int, fragment: str) -> None:
    with pytest.raises(FormatError) as info:
        read_libsvm(body, source="train.libsvm")
    assert info.value.line == line and info.value.source == "train.libsvm"
    assert fragment in str(info.value)


def test_error_line_in_later_block() -> None:
    body = b"1 1:1 2:2\n" * 200_000 + b"1 3:1 2:1\n"
    with pytest.raises(FormatError) as info:
        read_libsvm(io.BytesIO(body))
    assert info.value.line == 200_001


def test_encode_formats() -> None:
    matrix = sp.csr_matrix(np.array([[0, 1.5], [2, 0]], dtype=np.float32))
    assert encode_libsvm(matrix, np.array([1, 0])) == b"1 2:1.5\n0 1:2\n"
    assert encode_libsvm(matrix, zero_based=True) == b"0 1:1.5\n0 0:2\n"
    dense = np.array([[0.0, 0.25]])
    body = encode_libsvm(dense, np.array([1.0]), weights=np.array([2.0]), query_ids=[3])
    assert body == b"1.0:2.0 qid:3 2:0.25\n"
    assert encode_libsvm(np.zeros((0, 3))) == b""
    with pytest.raises(ValueError):
        encode_libsvm(dense, np.array([1.0, 2.0]))


@st.composite
def sparse_matrices(draw: st.DrawFn) -> sp.csr_matrix:
    dense = draw(hnp.arrays(np.float32, st.tuples(st.integers(0, 6), st.integers(1, 6)),
                            elements=st.floats(width=32) | st.just(0.0)))
    matrix = sp.csr_matrix(dense)
    if draw(st.booleans()) and matrix.nnz:
        matrix.data[0] = 0.0  # an explicit stored zero must survive
    return matrix


@FUZZ
@given(sparse_matrices(), st.booleans(), st.booleans())
def test_round_trip(matrix: sp.csr_matrix, with_weights: bool, zero_based: bool) -> None:
    rows = matrix.shape[0]
    labels = np.arange(rows, dtype=np.float32) - 2.5
    weights = np.full(rows, 0.5, dtype=np.float32) if with_weights else None
    body = encode_libsvm(matrix, labels, weights=weights, zero_based=zero_based)
    data = read_libsvm(body, n_features=matrix.shape[1], zero_based=zero_based)
    _assert_same_matrix(data.features, matrix)
    np.testing.assert_array_equal(data.labels, labels)
    if with_weights:
        np.testing.assert_array_equal(data.weights, weights)
    # 1-based output (the default) is always read back right by zero_based="auto"
    auto = read_libsvm(encode_libsvm(matrix, labels), n_features=matrix.shape[1])
    _assert_same_matrix(auto.features, matrix)


def _assert_same_matrix(got: sp.csr_matrix, expected: sp.csr_matrix) -> None:
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.data, expected.data)


def _parse_or_format_error(body: bytes) -> None:
    try:
        data = read_libsvm(body)
    except FormatError:
        return
    assert isinstance(data, LibSVMData)
    assert data.features.shape[0] == len(data.labels)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(body: bytes) -> None:
    _parse_or_format_error(body)


@FUZZ
@given(st.text(alphabet="0123456789 :.-+#qideNa\n\r\t", max_size=120))
def test_libsvm_like_text_never_crashes(text: str) -> None:
    _parse_or_format_error(text.encode())


@FUZZ
@given(sparse_matrices(), st.data())
def test_mutations_and_truncations_never_crash(matrix: sp.csr_matrix, data: st.DataObject) -> None:
    body = bytearray(encode_libsvm(matrix, weights=np.ones(matrix.shape[0]),
                                   query_ids=np.arange(matrix.shape[0])))
    if not body:
        return
    for _ in range(data.draw(st.integers(0, 4))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    _parse_or_format_error(bytes(body[:data.draw(st.integers(0, len(body)))]))
