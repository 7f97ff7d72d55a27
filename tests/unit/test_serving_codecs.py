"""The codec registry and the default codecs (built on toolkit.formats)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from toolkit.formats.errors import FormatError
from toolkit.serving.codecs import CodecRegistry, decode_json, default_registry, encode_json
from toolkit.serving.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from toolkit.serving.negotiation import MediaType, parse_content_type

MATRIX = np.array([[1.5, 2.0], [3.0, -4.0]], dtype=np.float32)


def test_registry_register_lookup_and_order() -> None:
    registry = CodecRegistry()
    registry.register("Text/X-Mine", decode=lambda body, params: body.upper())
    registry.register("text/y", encode=lambda value: b"y")
    assert "text/x-mine" in registry and "TEXT/X-MINE" in registry and 3 not in registry
    assert registry.decodable == ["text/x-mine"]
    assert registry.encodable == ["text/y"]
    assert registry.decode(b"ab", MediaType("text/x-mine")) == b"AB"
    with pytest.raises(UnsupportedMediaType):
        registry.decode(b"", MediaType("text/y"))
    with pytest.raises(NotAcceptable):
        registry.encode(1, "text/x-mine")
    with pytest.raises(ValueError):
        registry.register("a/b")


def test_default_registry_types() -> None:
    registry = default_registry()
    expected = {"application/json", "text/csv", "application/jsonlines", "application/x-npy",
                "application/x-npz", "application/x-recordio-protobuf", "text/libsvm",
                "application/x-parquet"}
    assert expected <= set(registry.decodable) and expected <= set(registry.encodable)
    assert registry.encodable[0] == "application/json"


@pytest.mark.parametrize("mime", ["application/json", "text/csv", "application/x-npy",
                                  "application/x-recordio-protobuf", "application/x-parquet",
                                  "text/libsvm"])
def test_matrix_round_trips(mime: str) -> None:
    registry = default_registry()
    decoded = registry.decode(registry.encode(MATRIX, mime), MediaType(mime))
    if sp.issparse(decoded):
        decoded = decoded.toarray()
    np.testing.assert_allclose(np.asarray(decoded, dtype=np.float64), MATRIX)


def test_npz_and_jsonlines_round_trips() -> None:
    registry = default_registry()
    npz = registry.decode(registry.encode({"a": MATRIX}, "application/x-npz"),
                          MediaType("application/x-npz"))
    np.testing.assert_array_equal(npz["a"], MATRIX)
    single = registry.decode(registry.encode(MATRIX, "application/x-npz"),
                             MediaType("application/x-npz"))
    np.testing.assert_array_equal(single["arr_0"], MATRIX)
    lines = registry.decode(registry.encode(MATRIX, "application/jsonlines"),
                            MediaType("application/jsonlines"))
    assert lines == MATRIX.tolist()


def test_sparse_predictions_encode() -> None:
    registry = default_registry()
    sparse = sp.csr_matrix(MATRIX)
    back = registry.decode(registry.encode(sparse, "application/x-recordio-protobuf"),
                           MediaType("application/x-recordio-protobuf"))
    np.testing.assert_allclose(back.toarray(), MATRIX)
    assert encode_json(sparse) == b"[[1.5,2.0],[3.0,-4.0]]"


def test_vector_predictions_encode_as_columns_or_labels() -> None:
    registry = default_registry()
    vector = np.array([1.0, 2.0, 3.0])
    rows = registry.decode(registry.encode(vector, "text/csv"), MediaType("text/csv"))
    assert np.asarray(rows).reshape(-1).tolist() == [1.0, 2.0, 3.0]
    assert registry.encode(vector, "text/libsvm").splitlines()[0].startswith(b"1")


def test_csv_label_size_parameter() -> None:
    registry = default_registry()
    features = registry.decode(b"9,1,2\n8,3,4\n", parse_content_type("text/csv;label_size=1"))
    assert features.tolist() == [[1, 2], [3, 4]]
    with pytest.raises(BadRequest):
        registry.decode(b"1\n", parse_content_type("text/csv;label_size=-1"))


def test_json_decoding_rules() -> None:
    assert isinstance(decode_json(b"[[1, 2], [3, 4]]", {}), np.ndarray)
    assert decode_json(b'{"a": 1}', {}) == {"a": 1}
    assert decode_json(b'[[1], [2, 3]]', {}) == [[1], [2, 3]]  # ragged stays a list
    assert decode_json(b'["a", "b"]', {}) == ["a", "b"]
    assert decode_json(b"[]", {}) == []
    with pytest.raises(FormatError, match="invalid JSON"):
        decode_json(b"[1,", {})
    with pytest.raises(FormatError, match="UTF-8"):
        decode_json(b"[\"\xff\"]", {})
    with pytest.raises(FormatError, match="deeply"):
        decode_json(b"[" * 100000, {})


def test_json_encodes_numpy_values() -> None:
    assert encode_json({"x": np.float32(1.5), "y": np.arange(2), "z": (1, 2)}) == \
        b'{"x":1.5,"y":[0,1],"z":[1,2]}'
    with pytest.raises(TypeError):
        encode_json(object())


def test_pickled_npy_is_refused() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError):
        default_registry().decode(buffer.getvalue(), MediaType("application/x-npy"))


@given(st.binary(max_size=300), st.sampled_from(default_registry().decodable))
def test_decoders_raise_only_typed_errors(body: bytes, mime: str) -> None:
    with contextlib.suppress(FormatError, BadRequest):
        default_registry().decode(body, MediaType(mime))
