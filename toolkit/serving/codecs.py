"""The content-type codec registry: MIME type -> decode / encode functions.

Parsing lives in :mod:`toolkit.formats` (one reader per format, shared with training and batch
transform); this module only maps HTTP media types onto those readers and writers, so a format
bug is fixed in one place. JSON is the one format owned here, because HTTP is its only user.
Format modules are imported inside each function: importing the registry stays cheap and a
missing optional dependency (pyarrow) only removes its media type.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from toolkit.formats.errors import FormatError
from toolkit.serving.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from toolkit.serving.negotiation import MediaType

SOURCE = "request body"

Decoder = Callable[[bytes, Mapping[str, str]], Any]
"""``decode(body, content_type_params) -> data``; raises FormatError on malformed input."""
Encoder = Callable[[Any], bytes]
"""``encode(prediction) -> bytes``."""


@dataclass(frozen=True)
class Codec:
    decode: Decoder | None = None
    encode: Encoder | None = None


class CodecRegistry:
    """Ordered mapping of lower-case MIME types to codecs; the first registered type of each
    kind is preferred when a client accepts several equally."""

    def __init__(self) -> None:
        self._codecs: dict[str, Codec] = {}
        self.version = 0
        """Bumped by every :meth:`register`, so caches derived from the registry (the
        server's negotiation cache) can tell that they are stale."""

    def register(self, mime: str, *, decode: Decoder | None = None,
                 encode: Encoder | None = None) -> None:
        """Add or replace the codec for ``mime`` (framework images add their own types)."""
        if decode is None and encode is None:
            raise ValueError(f"codec for {mime!r} needs a decode or an encode function")
        self._codecs[mime.strip().lower()] = Codec(decode, encode)
        self.version += 1

    def __contains__(self, mime: object) -> bool:
        return isinstance(mime, str) and mime.lower() in self._codecs

    @property
    def decodable(self) -> list[str]:
        return [m for m, c in self._codecs.items() if c.decode is not None]

    @property
    def encodable(self) -> list[str]:
        return [m for m, c in self._codecs.items() if c.encode is not None]

    def decode(self, body: bytes, content_type: MediaType) -> Any:
        """Decode a request body: 415 for an unknown type, 400 (FormatError) for bad data."""
        codec = self._codecs.get(content_type.mime)
        if codec is None or codec.decode is None:
            raise UnsupportedMediaType(
                f"Content-Type {content_type.mime!r} is not supported; "
                f"supported: {', '.join(self.decodable)}")
        return codec.decode(body, content_type.params)

    def encode(self, prediction: Any, mime: str) -> bytes:
        """Encode a prediction as ``mime``; 406 when no encoder exists for it."""
        codec = self._codecs.get(mime.lower())
        if codec is None or codec.encode is None:
            raise NotAcceptable(f"cannot produce {mime!r}; supported: "
                                f"{', '.join(self.encodable)}")
        return codec.encode(prediction)


# -- JSON (ours) -------------------------------------------------------------------------------

def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "toarray"):  # scipy.sparse
        return obj.toarray().tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def decode_json(body: bytes, params: Mapping[str, str]) -> Any:
    """JSON body -> a numeric ``numpy`` array when it is a rectangular list of numbers (what
    models take), else the parsed value (dicts, strings, ragged lists) unchanged."""
    import numpy as np

    try:
        value = json.loads(body)
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text: {exc.reason}", source=SOURCE,
                          offset=exc.start) from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"invalid JSON: {exc.msg}", source=SOURCE, offset=exc.pos,
                          line=exc.lineno) from None
    except RecursionError:
        raise FormatError("JSON nested too deeply", source=SOURCE) from None
    if isinstance(value, list) and value:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError, OverflowError, RecursionError):
            return value
        if array.dtype.kind in "biuf":
            return array
    return value


def encode_json(prediction: Any) -> bytes:
    return json.dumps(prediction, default=_json_default, separators=(",", ":")).encode()


# -- formats from toolkit.formats --------------------------------------------------------------

def _label_size(params: Mapping[str, str]) -> int:
    raw = params.get("label_size", "0")
    if not raw.strip().isdigit():
        raise BadRequest(f"Content-Type parameter label_size must be a non-negative integer, "
                         f"got {raw!r}")
    return int(raw)


def decode_csv(body: bytes, params: Mapping[str, str]) -> Any:
    """CSV rows -> float32 matrix; ``label_size=N`` in the Content-Type drops N label columns."""
    from toolkit.formats.csv import read_csv

    features, _labels = read_csv(body, label_size=_label_size(params), source=SOURCE)
    return features


def encode_csv(prediction: Any) -> bytes:
    import numpy as np

    from toolkit.formats.csv import encode_csv as _encode

    return _encode(np.asarray(prediction))


def _jsonable(value: Any) -> Any:
    return json.loads(encode_json(value))


def decode_jsonlines(body: bytes, params: Mapping[str, str]) -> Any:
    from toolkit.formats.jsonlines import read_jsonlines

    return read_jsonlines(body, source=SOURCE)


def encode_jsonlines(prediction: Any) -> bytes:
    from toolkit.formats.jsonlines import encode_jsonlines as _encode

    items = _jsonable(prediction)
    return _encode(items if isinstance(items, list) else [items])


def decode_npy(body: bytes, params: Mapping[str, str]) -> Any:
    from toolkit.formats.npy import decode_npy as _decode

    return _decode(body, source=SOURCE)


def encode_npy(prediction: Any) -> bytes:
    import numpy as np

    from toolkit.formats.npy import encode_npy as _encode

    return _encode(np.asarray(prediction))


def decode_npz(body: bytes, params: Mapping[str, str]) -> Any:
    from toolkit.formats.npy import decode_npz as _decode

    return _decode(body, source=SOURCE)


def encode_npz(prediction: Any) -> bytes:
    """A mapping is written as named arrays; anything else as the single array ``arr_0``."""
    import numpy as np

    from toolkit.formats.npy import encode_npz as _encode

    if isinstance(prediction, Mapping):
        return _encode({str(k): np.asarray(v) for k, v in prediction.items()})
    return _encode({"arr_0": np.asarray(prediction)})


def decode_recordio_protobuf(body: bytes, params: Mapping[str, str]) -> Any:
    from toolkit.formats.recordio_protobuf import decode

    return decode(body, source=SOURCE).features


def _is_sparse(value: Any) -> bool:
    return hasattr(value, "tocsr") and hasattr(value, "nnz")


def _as_2d(prediction: Any) -> Any:
    import numpy as np

    array = np.asarray(prediction)
    return array.reshape(-1, 1) if array.ndim <= 1 else array


def encode_recordio_protobuf(prediction: Any) -> bytes:
    from toolkit.formats.recordio_protobuf import encode_dense, encode_sparse

    if _is_sparse(prediction):
        return encode_sparse(prediction.tocsr())
    return encode_dense(_as_2d(prediction))


def decode_libsvm(body: bytes, params: Mapping[str, str]) -> Any:
    from toolkit.formats.libsvm import read_libsvm

    return read_libsvm(body, source=SOURCE).features


def encode_libsvm(prediction: Any) -> bytes:
    """A 1-D prediction becomes the labels of feature-less rows; a matrix becomes the rows."""
    import numpy as np

    from toolkit.formats.libsvm import encode_libsvm as _encode

    if _is_sparse(prediction):
        return _encode(prediction.tocsr())
    array = np.asarray(prediction)
    if array.ndim <= 1:
        from scipy.sparse import csr_matrix

        labels = array.reshape(-1)
        return _encode(csr_matrix((labels.shape[0], 0)), labels)
    return _encode(array)


def decode_parquet(body: bytes, params: Mapping[str, str]) -> Any:
    from toolkit.formats.parquet import read_parquet_array

    return read_parquet_array(body, source=SOURCE)


def encode_parquet(prediction: Any) -> bytes:
    from toolkit.formats.parquet import encode_parquet as _encode

    return _encode(_as_2d(prediction))


def _aliases(registry: CodecRegistry, names: Iterable[str], decode: Decoder,
             encode: Encoder) -> None:
    for name in names:
        registry.register(name, decode=decode, encode=encode)


def default_registry() -> CodecRegistry:
    """The toolkit's codecs; JSON first, so it wins ties among equally acceptable types."""
    registry = CodecRegistry()
    _aliases(registry, ["application/json"], decode_json, encode_json)
    _aliases(registry, ["text/csv"], decode_csv, encode_csv)
    _aliases(registry, ["application/jsonlines", "application/jsonl", "application/x-jsonlines"],
             decode_jsonlines, encode_jsonlines)
    _aliases(registry, ["application/x-npy"], decode_npy, encode_npy)
    _aliases(registry, ["application/x-npz"], decode_npz, encode_npz)
    _aliases(registry, ["application/x-recordio-protobuf"], decode_recordio_protobuf,
             encode_recordio_protobuf)
    _aliases(registry, ["text/libsvm", "text/x-libsvm"], decode_libsvm, encode_libsvm)
    if importlib.util.find_spec("pyarrow") is not None:
        _aliases(registry, ["application/x-parquet"], decode_parquet, encode_parquet)
    return registry

