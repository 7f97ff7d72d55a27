"""RecordIO-protobuf (``application/x-recordio-protobuf``): numpy/scipy matrices <-> records.

Each RecordIO record holds one ``aialgs.data.Record`` (see ``record.proto``) for one
matrix row: ``features["values"]`` is the row (dense: values; sparse CSR row: values, keys =
column indices, shape = [n_columns]) and ``label["values"]`` the row's label.

Why hand-rolled wire code: the obvious implementation parses one protobuf message per row and
converts its repeated field to numpy - tens of microseconds per row, minutes per large channel.
Here the common shapes are parsed *in lockstep across all records of a chunk* with numpy: every
step (read a tag, a length varint, compare the "values" key) is one vectorised operation over all
records, and the tensors' packed payloads are gathered and reinterpreted with ``frombuffer``.
Anything unusual (extra feature keys, Bytes values, uid/metadata, unpacked or reordered fields,
odd varints) is handed, record by record, to the protobuf runtime, and both paths feed the same
validation and assembly code, so they cannot disagree (the tests check this with hypothesis).
Encoding builds the wire bytes with numpy likewise; the dmlc RecordIO splitting rule is honoured.

scipy is optional (``optml[sparse]``) and only imported by the sparse paths.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from toolkit.formats import recordio
from toolkit.formats.errors import FormatError

__all__ = [
    "CONTENT_TYPE",
    "DecodedRecords",
    "decode",
    "encode_dense",
    "encode_sparse",
    "iter_decoded",
    "write_dense",
    "write_sparse",
]

CONTENT_TYPE = "application/x-recordio-protobuf"
DEFAULT_BATCH_SIZE = 8192

# Tensor kinds, indexed consistently everywhere: Value field tag byte, numpy dtype, oneof name.
_F32, _F64, _I32 = 0, 1, 2
_KIND_TAG = (0x12, 0x1A, 0x3A)          # Value.float32_tensor = 2, float64_tensor = 3, int32 = 7
_KIND_DTYPE = (np.dtype("<f4"), np.dtype("<f8"), np.dtype("<i4"))
_KIND_NAME = ("float32_tensor", "float64_tensor", "int32_tensor")
_TAG_KIND = np.full(256, -1, dtype=np.int8)
for _kind, _tag in enumerate(_KIND_TAG):
    _TAG_KIND[_tag] = _kind
_NO_LABEL = -1
_VALUES_KEY = b"\x0a\x06values"           # map entry field 1 (key), length 6, "values"
_MAX_WIDTH = 1 << 62


@dataclass(frozen=True)
class DecodedRecords:
    """Decoded rows: dense 2-D ndarray or CSR matrix, and labels (1-D, or 2-D if several per row)."""

    features: Any  # np.ndarray | scipy.sparse.csr_matrix (scipy is optional)
    labels: np.ndarray | None

    def __len__(self) -> int:
        return int(self.features.shape[0])


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode_varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised base-128 varints of uint64 ``values``: (concatenated bytes, bytes per value)."""
    v = values.astype(np.uint64, copy=False)
    sizes = np.ones(v.shape[0], dtype=np.int64)
    for k in range(1, 10):
        sizes += v >= np.uint64(1 << (7 * k))
    shifts = (7 * np.arange(10, dtype=np.uint64))[None, :]
    digits = ((v[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    position = np.arange(10)[None, :]
    digits |= np.where(position < sizes[:, None] - 1, 0x80, 0).astype(np.uint8)
    return digits[position < sizes[:, None]], sizes


def _resolve(array: np.ndarray, what: str) -> tuple[int, np.ndarray]:
    """Pick the tensor kind for ``array`` and convert it losslessly (or refuse)."""
    dtype = array.dtype
    if dtype == np.float32:
        return _F32, array.astype("<f4", copy=False)
    if dtype == np.float64:
        return _F64, array.astype("<f8", copy=False)
    if dtype == np.float16:
        return _F32, array.astype("<f4")
    if np.issubdtype(dtype, np.integer) and dtype != np.bool_:
        if array.size and (array.min() < -(1 << 31) or array.max() >= (1 << 31)):
            raise ValueError(f"{what} has integers outside the int32 range; RecordIO-protobuf "
                             "only has an Int32Tensor")
        return _I32, array.astype("<i4", copy=False)
    raise TypeError(f"{what} has dtype {dtype}; RecordIO-protobuf stores float32, float64 "
                    "and int32 tensors")


def _tensor_bytes(kind: int, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Packed wire bytes of each value of ``flat``: (bytes, byte size per value)."""
    if kind == _I32:  # int32 is a sign-extended 64-bit varint on the wire
        return _encode_varints(flat.astype(np.int64).view(np.uint64))
    raw = np.ascontiguousarray(flat).view(np.uint8)
    return raw, np.full(flat.shape[0], flat.dtype.itemsize, dtype=np.int64)


def _field(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(body)) + body


def _entry(record_field: int, kind: int, tensor: bytes) -> bytes:
    value = _field(_KIND_TAG[kind], tensor)
    return _field(record_field, _VALUES_KEY + _field(0x12, value))


def _record(kind: int, values: bytes, keys: bytes, shape: bytes, label_kind: int,
            label: bytes) -> bytes:
    tensor = b"".join((_field(0x0A, values) if values else b"",
                       _field(0x12, keys) if keys else b"",
                       _field(0x1A, shape) if shape else b""))
    out = _entry(0x0A, kind, tensor)
    if label_kind != _NO_LABEL:
        out += _entry(0x12, label_kind, _field(0x0A, label) if label else b"")
    return out


def _row_bounds(sizes: np.ndarray, counts: np.ndarray) -> list[int]:
    """Byte offsets delimiting each row's slice of a concatenated packed buffer."""
    ends = np.concatenate([[0], np.cumsum(sizes)])
    return ends[np.concatenate([[0], np.cumsum(counts)])].tolist()


def _prepare_labels(labels: np.ndarray | None, rows: int) -> tuple[int, np.ndarray | None, int]:
    if labels is None:
        return _NO_LABEL, None, 0
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels.reshape(-1, 1)
    if labels.ndim != 2 or labels.shape[0] != rows:
        raise ValueError(f"labels must be a vector (or rows x k matrix) with {rows} rows, got "
                         f"shape {labels.shape}")
    kind, labels = _resolve(labels, "labels")
    return kind, labels, labels.shape[1]


def _encode_rows(kind: int, vbytes: np.ndarray, vbounds: list[int], kbytes: np.ndarray | None,
                 kbounds: list[int] | None, shape: bytes, label_kind: int,
                 lbytes: np.ndarray | None, lbounds: list[int] | None, rows: int) -> bytes:
    """General path: one payload per row from precomputed packed bytes (any sizes)."""
    vb = vbytes.tobytes()
    kb = kbytes.tobytes() if kbytes is not None else b""
    lb = lbytes.tobytes() if lbytes is not None else b""
    out = []
    for i in range(rows):
        payload = _record(kind, vb[vbounds[i]:vbounds[i + 1]],
                          kb[kbounds[i]:kbounds[i + 1]] if kbounds is not None else b"", shape,
                          label_kind, lb[lbounds[i]:lbounds[i + 1]] if lbounds is not None else b"")
        out.append(recordio.frame_record(payload))
    return b"".join(out)


def _encode_fixed(kind: int, features: np.ndarray, label_kind: int,
                  labels: np.ndarray | None) -> bytes:
    """Fast path: every record has the same layout, so build all of them as one 2-D array."""
    rows, width = features.shape
    vsize = width * features.dtype.itemsize
    lsize = 0 if labels is None else labels.shape[1] * labels.dtype.itemsize
    # Values end the features entry (no keys/shape) and label values end the payload.
    features_entry = _entry(0x0A, kind, _field(0x0A, b"\0" * vsize) if vsize else b"")
    payload = _record(kind, b"\0" * vsize, b"", b"", label_kind, b"\0" * lsize)
    framed = recordio.frame_record(payload)  # placeholder zeros never contain the magic
    stride = len(framed)
    value_at = 8 + len(features_entry) - vsize
    label_at = 8 + len(payload) - lsize
    out = np.empty((rows, stride), dtype=np.uint8)
    out[:] = np.frombuffer(framed, dtype=np.uint8)
    if vsize:
        out[:, value_at:value_at + vsize] = np.ascontiguousarray(features).view(np.uint8)
    if lsize:
        assert labels is not None
        out[:, label_at:label_at + lsize] = np.ascontiguousarray(labels).view(np.uint8)
    # dmlc splits a payload at every aligned magic word: re-frame the (rare) rows that have one.
    words = out.view("<u4")[:, 2:2 + len(payload) // 4]
    hits = np.flatnonzero((words == recordio.MAGIC).any(axis=1)).tolist()
    if not hits:
        return out.tobytes()
    pieces: list[bytes] = []
    done = 0
    for row in hits:
        pieces.append(out[done:row].tobytes())
        pieces.append(recordio.frame_record(out[row, 8:8 + len(payload)].tobytes()))
        done = row + 1
    pieces.append(out[done:].tobytes())
    return b"".join(pieces)


def encode_dense(features: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    """Encode a 2-D array as RecordIO-protobuf, one Record per row.

    float32 / float64 become Float32Tensor / Float64Tensor, integer arrays within the int32
    range Int32Tensor (float16 is widened to float32); labels likewise, one per row
    (a rows x k label matrix stores k values per record).
    """
    features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D array, got shape {features.shape}")
    rows, width = features.shape
    kind, features = _resolve(features, "features")
    label_kind, label_arr, label_width = _prepare_labels(labels, rows)
    if rows == 0:
        return b""
    if kind != _I32 and label_kind != _I32:
        return _encode_fixed(kind, features, label_kind, label_arr)
    vbytes, vsizes = _tensor_bytes(kind, features.reshape(-1))
    vbounds = _row_bounds(vsizes, np.full(rows, width))
    lbytes = lbounds = None
    if label_arr is not None:
        lbytes, lsizes = _tensor_bytes(label_kind, label_arr.reshape(-1))
        lbounds = _row_bounds(lsizes, np.full(rows, label_width))
    return _encode_rows(kind, vbytes, vbounds, None, None, b"", label_kind, lbytes, lbounds, rows)


def encode_sparse(matrix: Any, labels: np.ndarray | None = None) -> bytes:
    """Encode a scipy sparse matrix (any format) as one Record per CSR row.

    Each row stores its non-zero values, their column indices as keys, and shape [n_columns].
    """
    import scipy.sparse

    if not scipy.sparse.issparse(matrix):
        raise TypeError(f"encode_sparse needs a scipy sparse matrix, got {type(matrix).__name__}")
    if matrix.ndim != 2:
        raise ValueError(f"sparse input must be 2-D, got shape {matrix.shape}")
    csr = scipy.sparse.csr_matrix(matrix)
    rows, width = csr.shape
    kind, data = _resolve(csr.data, "sparse values")
    label_kind, label_arr, label_width = _prepare_labels(labels, rows)
    if rows == 0:
        return b""
    counts = np.diff(csr.indptr)
    vbytes, vsizes = _tensor_bytes(kind, data)
    kbytes, ksizes = _encode_varints(csr.indices.astype(np.uint64))
    lbytes = lbounds = None
    if label_arr is not None:
        lbytes, lsizes = _tensor_bytes(label_kind, label_arr.reshape(-1))
        lbounds = _row_bounds(lsizes, np.full(rows, label_width))
    return _encode_rows(kind, vbytes, _row_bounds(vsizes, counts), kbytes,
                        _row_bounds(ksizes, counts), _varint(width), label_kind, lbytes, lbounds,
                        rows)


def write_dense(stream: BinaryIO, features: np.ndarray, labels: np.ndarray | None = None) -> int:
    """Write :func:`encode_dense` output to ``stream``; return the bytes written."""
    data = encode_dense(features, labels)
    stream.write(data)
    return len(data)


def write_sparse(stream: BinaryIO, matrix: Any, labels: np.ndarray | None = None) -> int:
    """Write :func:`encode_sparse` output to ``stream``; return the bytes written."""
    data = encode_sparse(matrix, labels)
    stream.write(data)
    return len(data)


# --------------------------------------------------------------------------------------------
# Decoding: per-record components, produced by the fast path or the protobuf runtime
# --------------------------------------------------------------------------------------------

@dataclass
class _Components:
    """What every record contributes, concatenated over records, plus per-record counts."""

    kinds: np.ndarray          # int8 tensor kind per record
    values: np.ndarray         # concatenated feature values (dtype of the kind)
    vcount: np.ndarray         # int64 values per record
    keys: np.ndarray           # concatenated uint64 keys
    kcount: np.ndarray
    shapes: np.ndarray         # concatenated uint64 shape entries
    scount: np.ndarray
    lkinds: np.ndarray         # int8 label kind per record, _NO_LABEL if absent
    lvalues: np.ndarray
    lcount: np.ndarray


class _Irregular(Exception):
    """Internal: the fast path does not handle these records; use the protobuf runtime."""


def _varint_at(u8: np.ndarray, pos: np.ndarray, limit: np.ndarray,
               ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read one length varint (at most 5 bytes) at ``pos`` for every record, in lockstep."""
    last = u8.shape[0] - 1
    value = np.zeros(pos.shape[0], dtype=np.int64)
    end = pos.copy()
    pending = ok.copy()
    finished = np.zeros(pos.shape[0], dtype=bool)
    for k in range(5):
        if k and not pending.any():
            break
        at = pos + k
        take = pending & (at < limit)
        byte = u8[np.minimum(at, last)].astype(np.int64)
        value |= np.where(take, (byte & 0x7F) << (7 * k), 0)
        fin = take & (byte < 0x80)
        end = np.where(fin, at + 1, end)
        finished |= fin
        pending = take & ~fin
    return value, end, ok & finished


def _byte_is(u8: np.ndarray, pos: np.ndarray, limit: np.ndarray, byte: int,
             ok: np.ndarray) -> np.ndarray:
    return ok & (pos < limit) & (u8[np.minimum(pos, u8.shape[0] - 1)] == byte)


def _length_field(u8: np.ndarray, tag: int, pos: np.ndarray, limit: np.ndarray,
                  ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Optional length-delimited field: (present, body start, body length, new pos); ok updated."""
    present = _byte_is(u8, pos, limit, tag, ok)
    length, body, good = _varint_at(u8, pos + 1, limit, present)
    good &= body + length <= limit
    ok &= ~present | good
    present &= good
    start = np.where(present, body, pos)
    length = np.where(present, length, 0)
    return present, start, length, start + length


def _entry_at(u8: np.ndarray, field_tag: int, pos: np.ndarray, limit: np.ndarray,
              ok: np.ndarray, tensor_fields: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Parse ``field { key: "values" value { <kind>_tensor { fields } } }`` in lockstep."""
    present, body, length, _ = _length_field(u8, field_tag, pos, limit, ok)
    ok &= present
    entry_end = body + length
    key_at = np.minimum(body[:, None] + np.arange(8), u8.shape[0] - 1)
    ok &= (body + 8 <= entry_end) & (u8[key_at] == np.frombuffer(_VALUES_KEY, np.uint8)).all(1)
    present, vbody, vlength, _ = _length_field(u8, 0x12, body + 8, entry_end, ok)
    ok &= present & (vbody + vlength == entry_end)
    kinds = _TAG_KIND[u8[np.minimum(vbody, u8.shape[0] - 1)]]
    ok &= (vbody < entry_end) & (kinds >= 0)
    tlength, tbody, good = _varint_at(u8, vbody + 1, entry_end, ok)
    ok &= good & (tbody + tlength == entry_end)
    out = {"kinds": kinds, "end": entry_end}
    cursor = tbody
    for name, tag in zip(("values", "keys", "shape"), (0x0A, 0x12, 0x1A)):
        if tag in tensor_fields:
            _, start, flen, cursor = _length_field(u8, tag, cursor, entry_end, ok)
            out[name + "_start"], out[name + "_len"] = start, flen
    ok &= cursor == entry_end
    return out


def _gather(buffer: bytes | bytearray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenate byte ranges of ``buffer`` into one uint8 array."""
    u8 = np.frombuffer(buffer, dtype=np.uint8)
    rows = starts.shape[0]
    if rows and bool((lengths == lengths[0]).all()):
        width = int(lengths[0])
        if width == 0:
            return np.empty(0, np.uint8)
        steps = np.diff(starts)
        if rows == 1 or bool((steps == steps[0]).all()) and steps[0] >= width:
            stride = int(steps[0]) if rows > 1 else width
            block = np.lib.stride_tricks.as_strided(u8[int(starts[0]):], shape=(rows, width),
                                                    strides=(stride, 1), writeable=False)
            return np.ascontiguousarray(block).reshape(-1)
    view = memoryview(buffer)
    return np.frombuffer(b"".join([view[s:s + n] for s, n in
                                   zip(starts.tolist(), lengths.tolist())]), dtype=np.uint8)


def _decode_varints(data: np.ndarray, lengths: np.ndarray,
                    int32: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Packed varints of consecutive segments: (values, count per segment, bad segment mask).

    A segment is bad (left to the protobuf runtime) if a varint crosses its end, is longer than
    10 bytes, overflows 64 bits, or - for int32 - is not a sign-extended 32-bit value.
    """
    segments = lengths.shape[0]
    bad = np.zeros(segments, dtype=bool)
    if data.shape[0] == 0:
        return np.empty(0, np.uint64), np.zeros(segments, np.int64), bad
    seg_end = np.cumsum(lengths)
    seg_start = seg_end - lengths
    terminal = data < 0x80
    nonempty = lengths > 0
    bad |= nonempty & ~terminal[np.maximum(seg_end - 1, 0)]
    if bad.any():
        return np.empty(0, np.uint64), np.zeros(segments, np.int64), bad
    stops = np.flatnonzero(terminal)
    starts = np.concatenate([[0], stops[:-1] + 1])
    sizes = stops - starts + 1
    owner = np.searchsorted(seg_end, starts, side="right")
    shift = (np.arange(data.shape[0]) - np.repeat(starts, sizes)) * 7
    digits = (data & 0x7F).astype(np.uint64) << np.minimum(shift, 63).astype(np.uint64)
    values = np.bitwise_or.reduceat(digits, starts)
    wrong = (sizes > 10) | ((sizes == 10) & (data[stops] > 1))
    if int32:
        wrong |= (values >= np.uint64(1 << 31)) & (values < np.uint64((1 << 64) - (1 << 31)))
    if wrong.any():
        bad[owner[wrong]] = True
        return np.empty(0, np.uint64), np.zeros(segments, np.int64), bad
    cum = np.concatenate([[0], np.cumsum(terminal)])
    counts = cum[seg_end] - cum[seg_start]
    return values, counts, bad


def _unpack(kind: int, data: np.ndarray, lengths: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Packed values of one kind per segment: (values, counts, bad segment mask)."""
    if kind == _I32:
        values, counts, bad = _decode_varints(data, lengths, int32=True)
        return (values & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32), counts, bad
    size = _KIND_DTYPE[kind].itemsize
    bad = lengths % size != 0
    if bad.any():
        return np.empty(0, _KIND_DTYPE[kind]), np.zeros(lengths.shape[0], np.int64), bad
    return data.view(_KIND_DTYPE[kind]), lengths // size, bad


def _structure(u8: np.ndarray, starts: np.ndarray, lengths: np.ndarray
               ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Lockstep wire parse of canonical records: (ok, feature entry, label entry, has label)."""
    ok = np.ones(starts.shape[0], dtype=bool)
    ends = starts + lengths
    feat = _entry_at(u8, 0x0A, starts, ends, ok, (0x0A, 0x12, 0x1A))
    has_label = ok & (feat["end"] < ends)
    label_ok = has_label.copy()
    label = _entry_at(u8, 0x12, feat["end"], ends, label_ok, (0x0A,))
    label_ok &= label["end"] == ends
    ok &= np.where(has_label, label_ok, feat["end"] == ends)
    return ok, feat, label, has_label


def _fast_components(buffer: bytes | bytearray, starts: np.ndarray, lengths: np.ndarray
                     ) -> tuple[np.ndarray, _Components | None]:
    """Wire-parse canonical records without protobuf objects: (regular mask, their components).

    Records that share record 0's layout byte for byte (dense float rows: the usual case) are
    recognised by comparing their few structural bytes with record 0's; the rest go through the
    general lockstep parser.
    """
    u8 = np.frombuffer(buffer, dtype=np.uint8)
    rows = starts.shape[0]
    if u8.shape[0] == 0 or rows == 0:
        return np.zeros(rows, dtype=bool), None
    matched, template = _template_components(buffer, u8, starts, lengths)
    if template is not None and bool(matched.all()):
        return matched, template
    rest = np.flatnonzero(~matched)
    rest_ok, general = _lockstep_components(buffer, u8, starts[rest], lengths[rest])
    ok = matched.copy()
    ok[rest[rest_ok]] = True
    if template is None or general is None:
        return ok, template if general is None else general
    regular = np.flatnonzero(ok)
    return ok, _merge(regular.shape[0], np.searchsorted(regular, np.flatnonzero(matched)),
                      template, np.searchsorted(regular, rest[rest_ok]), general)


def _merge(rows: int, at_a: np.ndarray, a: _Components, at_b: np.ndarray,
           b: _Components) -> _Components:
    """Interleave two components sets (rows ``at_a`` and ``at_b`` of the result)."""
    if a.kinds[0] != b.kinds[0] or a.lkinds[0] != b.lkinds[0]:
        raise _Irregular  # mixed kinds: an error, reported with the runtime's view of records

    def seg(va: np.ndarray, ca: np.ndarray, vb: np.ndarray, cb: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
        counts = np.empty(rows, dtype=np.int64)
        counts[at_a], counts[at_b] = ca, cb
        offsets = np.cumsum(counts) - counts
        out = np.empty(va.shape[0] + vb.shape[0], dtype=va.dtype)
        for values, count, at in ((va, ca, at_a), (vb, cb, at_b)):
            if values.shape[0]:
                inner = np.arange(values.shape[0]) - np.repeat(np.cumsum(count) - count, count)
                out[np.repeat(offsets[at], count) + inner] = values
        return out, counts

    kinds = np.empty(rows, dtype=np.int8)
    kinds[:] = a.kinds[0]
    lkinds = np.empty(rows, dtype=np.int8)
    lkinds[:] = a.lkinds[0]
    values, vcount = seg(a.values, a.vcount, b.values, b.vcount)
    keys, kcount = seg(a.keys, a.kcount, b.keys, b.kcount)
    shapes, scount = seg(a.shapes, a.scount, b.shapes, b.scount)
    lvalues, lcount = seg(a.lvalues, a.lcount, b.lvalues.astype(a.lvalues.dtype, copy=False),
                          b.lcount)
    return _Components(kinds, values, vcount, keys, kcount, shapes, scount, lkinds, lvalues,
                       lcount)


def _template_components(buffer: bytes | bytearray, u8: np.ndarray, starts: np.ndarray,
                         lengths: np.ndarray) -> tuple[np.ndarray, _Components | None]:
    """Rows laid out exactly like record 0 (dense float features and labels), vectorised."""
    rows = starts.shape[0]
    none = np.zeros(rows, dtype=bool), None
    ok, feat, label, has_label = _structure(u8, starts[:1], lengths[:1])
    if not ok[0] or feat["keys_len"][0] or feat["shape_len"][0]:
        return none
    kind = int(feat["kinds"][0])
    lkind = int(label["kinds"][0]) if has_label[0] else _NO_LABEL
    if _I32 in (kind, lkind):
        return none  # varint payloads vary in size; the lockstep parser handles them
    first, size = int(starts[0]), int(lengths[0])
    value_at = int(feat["values_start"][0]) - first
    value_len = int(feat["values_len"][0])
    label_at, label_len = size, 0
    if lkind != _NO_LABEL:
        label_at, label_len = int(label["values_start"][0]) - first, int(label["values_len"][0])
    itemsize = _KIND_DTYPE[kind].itemsize
    litemsize = _KIND_DTYPE[lkind].itemsize if lkind != _NO_LABEL else 1
    if value_len % itemsize or label_len % litemsize or label_at + label_len != size:
        return none
    same_size = np.flatnonzero(lengths == size)
    template = u8[first:first + size]
    match = np.ones(same_size.shape[0], dtype=bool)
    for lo, hi in ((0, value_at), (value_at + value_len, label_at)):
        if hi > lo:
            block = _gather(buffer, starts[same_size] + lo,
                            np.full(same_size.shape[0], hi - lo)).reshape(-1, hi - lo)
            match &= (block == template[lo:hi]).all(axis=1)
    matched = np.zeros(rows, dtype=bool)
    matched[same_size[match]] = True
    chosen = starts[matched]
    count = chosen.shape[0]
    values = _gather(buffer, chosen + value_at, np.full(count, value_len)).view(_KIND_DTYPE[kind])
    if lkind != _NO_LABEL:
        lvalues = _gather(buffer, chosen + label_at,
                          np.full(count, label_len)).view(_KIND_DTYPE[lkind])
    else:
        lvalues = np.empty(0, np.float32)
    empty = np.empty(0, np.uint64)
    zeros = np.zeros(count, np.int64)
    return matched, _Components(np.full(count, kind, np.int8), values,
                                np.full(count, value_len // itemsize, np.int64), empty, zeros,
                                empty, zeros, np.full(count, lkind, np.int8), lvalues,
                                np.full(count, label_len // litemsize, np.int64))


def _lockstep_components(buffer: bytes | bytearray, u8: np.ndarray, starts: np.ndarray,
                         lengths: np.ndarray) -> tuple[np.ndarray, _Components | None]:
    """General fast path: any canonical record (sparse, int32, varying widths)."""
    if starts.shape[0] == 0:
        return np.zeros(0, dtype=bool), None
    ok, feat, label, has_label = _structure(u8, starts, lengths)
    for _ in range(2):  # a second pass only if some segment needed the runtime after all
        regular = np.flatnonzero(ok)
        if regular.shape[0] == 0:
            return ok, None
        kinds = feat["kinds"][regular]
        lkinds = np.where(has_label[regular], label["kinds"][regular], _NO_LABEL).astype(np.int8)
        if (kinds != kinds[0]).any() or (lkinds != lkinds[0]).any():
            raise _Irregular  # mixed kinds: an error, reported with the runtime's view of records
        vlen = feat["values_len"][regular]
        values, vcount, bad = _unpack(int(kinds[0]), _gather(buffer, feat["values_start"][regular],
                                                             vlen), vlen)
        klen = feat["keys_len"][regular]
        keys, kcount, kbad = _decode_varints(_gather(buffer, feat["keys_start"][regular], klen),
                                             klen, int32=False)
        slen = feat["shape_len"][regular]
        shapes, scount, sbad = _decode_varints(_gather(buffer, feat["shape_start"][regular], slen),
                                               slen, int32=False)
        bad |= kbad | sbad
        if lkinds[0] != _NO_LABEL:
            llen = label["values_len"][regular]
            lvalues, lcount, lbad = _unpack(int(lkinds[0]),
                                            _gather(buffer, label["values_start"][regular], llen),
                                            llen)
            bad |= lbad
        else:
            lvalues, lcount = np.empty(0, np.float32), np.zeros(regular.shape[0], np.int64)
        if bad.any():
            ok[regular[bad]] = False
            continue
        return ok, _Components(kinds.astype(np.int8), values, vcount, keys, kcount, shapes,
                               scount, lkinds, lvalues, lcount)
    raise AssertionError("unreachable: the second pass has no bad segments")


def _runtime_record(payload: bytes | bytearray, index: int, offset: int, source: str) -> tuple:
    """Slow path: parse one record with the protobuf runtime and extract its components."""
    from google.protobuf.message import DecodeError

    from toolkit.formats import _record_pb2

    try:
        record = _record_pb2.Record.FromString(payload)  # type: ignore[attr-defined]
    except (DecodeError, ValueError, RuntimeError, UnicodeError) as exc:
        raise FormatError(f"record {index} is not a valid protobuf Record ({exc})",
                          source=source, offset=offset) from None

    def tensor_of(mapping: Any, what: str, dense_only: bool) -> tuple[int, Any]:
        # a corrupted key may come back as bytes (invalid UTF-8): name it, never compare it
        names = sorted(k if isinstance(k, str) else repr(k) for k in mapping)
        if names != ["values"]:
            raise FormatError(f"record {index} has {what} keys {names}; only a single "
                              "'values' tensor is supported", source=source, offset=offset)
        holder = mapping["values"]
        which = holder.WhichOneof("value")
        if which not in _KIND_NAME:
            raise FormatError(f"record {index} {what} 'values' holds "
                              f"{which or 'no tensor'}; a numeric tensor is required",
                              source=source, offset=offset)
        tensor = getattr(holder, which)
        if dense_only and (len(tensor.keys) or len(tensor.shape)):
            raise FormatError(f"record {index} has a sparse or shaped label; labels must be "
                              "plain value lists", source=source, offset=offset)
        return _KIND_NAME.index(which), tensor

    kind, tensor = tensor_of(record.features, "feature", False)
    values = np.array(tensor.values, dtype=_KIND_DTYPE[kind])
    keys = np.array(tensor.keys, dtype=np.uint64)
    shape = np.array(tensor.shape, dtype=np.uint64)
    if len(record.label):
        lkind, ltensor = tensor_of(record.label, "label", True)
        lvalues = np.array(ltensor.values, dtype=_KIND_DTYPE[lkind])
    else:
        lkind, lvalues = _NO_LABEL, np.empty(0, np.float32)
    return kind, values, keys, shape, lkind, lvalues


def _components(batch: recordio.RecordBatch, first_index: int, source: str,
                fast_path: bool) -> _Components:
    """Components of every record of ``batch``: fast path where possible, runtime elsewhere."""
    rows = len(batch)
    ok, fast = np.zeros(rows, dtype=bool), None
    if fast_path:
        try:
            ok, fast = _fast_components(batch.buffer, batch.starts, batch.lengths)
        except _Irregular:
            ok, fast = np.zeros(rows, dtype=bool), None
    if fast is not None and bool(ok.all()):
        return fast
    slow: dict[int, tuple] = {}
    for i in np.flatnonzero(~ok).tolist():
        start = int(batch.starts[i])
        slow[i] = _runtime_record(batch.buffer[start:start + int(batch.lengths[i])],
                                  first_index + i, int(batch.offsets[i]), source)
    regular = np.flatnonzero(ok).tolist()
    if fast is not None:
        split = [np.split(arr, np.cumsum(count)[:-1]) for arr, count in
                 ((fast.values, fast.vcount), (fast.keys, fast.kcount),
                  (fast.shapes, fast.scount), (fast.lvalues, fast.lcount))]
        for j, i in enumerate(regular):
            slow[i] = (int(fast.kinds[j]), split[0][j], split[1][j], split[2][j],
                       int(fast.lkinds[j]), split[3][j])
    per_record = [slow[i] for i in range(rows)]
    kinds = np.array([r[0] for r in per_record], dtype=np.int8)
    lkinds = np.array([r[4] for r in per_record], dtype=np.int8)
    _require_same(kinds, "feature tensor type", first_index, batch, source,
                  lambda k: _KIND_NAME[k])
    _require_same(lkinds, "label tensor type", first_index, batch, source,
                  lambda k: "no label" if k == _NO_LABEL else _KIND_NAME[k])

    def cat(col: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        parts = [r[col] for r in per_record]
        counts = np.array([p.shape[0] for p in parts], dtype=np.int64)
        return (np.concatenate(parts).astype(dtype, copy=False) if parts
                else np.empty(0, dtype)), counts

    values, vcount = cat(1, _KIND_DTYPE[int(kinds[0])])
    keys, kcount = cat(2, np.dtype(np.uint64))
    shapes, scount = cat(3, np.dtype(np.uint64))
    ldtype = _KIND_DTYPE[int(lkinds[0])] if lkinds[0] != _NO_LABEL else np.dtype(np.float32)
    lvalues, lcount = cat(5, ldtype)
    return _Components(kinds, values, vcount, keys, kcount, shapes, scount, lkinds, lvalues,
                       lcount)


def _require_same(per_record: np.ndarray, what: str, first_index: int,
                  batch: recordio.RecordBatch, source: str, show: Any) -> None:
    differs = np.flatnonzero(per_record != per_record[0])
    if differs.shape[0]:
        i = int(differs[0])
        raise FormatError(f"record {first_index + i} has {what} {show(int(per_record[i]))} but "
                          f"record {first_index} has {show(int(per_record[0]))}",
                          source=source, offset=int(batch.offsets[i]))


# --------------------------------------------------------------------------------------------
# Decoding: validation and assembly (shared by both paths)
# --------------------------------------------------------------------------------------------

def _shape_products(comp: _Components) -> np.ndarray:
    """Product of each record's shape entries (0 where there is no shape), overflow-checked."""
    rows = comp.scount.shape[0]
    products = np.zeros(rows, dtype=np.int64)
    ends = np.cumsum(comp.scount)
    if bool((comp.scount <= 1).all()):
        single = comp.scount == 1
        dims = comp.shapes[ends[single] - 1]
        if (dims > np.uint64(_MAX_WIDTH)).any():
            return np.full(rows, -1, dtype=np.int64)
        products[single] = dims.astype(np.int64)
        return products
    for i in np.flatnonzero(comp.scount).tolist():
        prod = math.prod(int(d) for d in comp.shapes[ends[i] - comp.scount[i]:ends[i]])
        products[i] = prod if prod <= _MAX_WIDTH else -1
    return products


def _assemble(comp: _Components, first_index: int, batch: recordio.RecordBatch,
              source: str) -> DecodedRecords:
    rows = comp.kinds.shape[0]

    def fail(i: int, message: str) -> FormatError:
        return FormatError(f"record {first_index + i} {message}", source=source,
                           offset=int(batch.offsets[i]))

    products = _shape_products(comp)
    if (products < 0).any():
        raise fail(int(np.argmin(products)), f"has an implausible shape (above {_MAX_WIDTH})")
    sparse = (comp.kcount > 0) | ((comp.scount > 0) & (comp.vcount == 0) & (products > 0))
    mixed = np.flatnonzero(sparse != sparse[0])
    if mixed.shape[0]:
        i = int(mixed[0])
        raise fail(i, f"is {'sparse' if sparse[i] else 'dense'} but record {first_index} is "
                      f"{'sparse' if sparse[0] else 'dense'}")
    labels = None
    if comp.lkinds[0] != _NO_LABEL:
        wrong = np.flatnonzero(comp.lcount != comp.lcount[0])
        if wrong.shape[0]:
            i = int(wrong[0])
            raise fail(i, f"has {comp.lcount[i]} label values but record {first_index} has "
                          f"{comp.lcount[0]}")
        per_row = int(comp.lcount[0])
        labels = comp.lvalues if per_row == 1 else comp.lvalues.reshape(rows, per_row)
    if not sparse[0]:
        wrong = np.flatnonzero(comp.vcount != comp.vcount[0])
        if wrong.shape[0]:
            i = int(wrong[0])
            raise fail(i, f"has {comp.vcount[i]} values but record {first_index} has "
                          f"{comp.vcount[0]}")
        shaped = np.flatnonzero((comp.scount > 0) & (products != comp.vcount))
        if shaped.shape[0]:
            i = int(shaped[0])
            raise fail(i, f"has {comp.vcount[i]} values but its shape holds {products[i]}")
        return DecodedRecords(comp.values.reshape(rows, int(comp.vcount[0])), labels)
    wrong = np.flatnonzero(comp.kcount != comp.vcount)
    if wrong.shape[0]:
        i = int(wrong[0])
        raise fail(i, f"is sparse with {comp.kcount[i]} keys but {comp.vcount[i]} values")
    wrong = np.flatnonzero(comp.scount == 0)
    if wrong.shape[0]:
        raise fail(int(wrong[0]), "is sparse but has no shape")
    wrong = np.flatnonzero(products != products[0])
    if wrong.shape[0]:
        i = int(wrong[0])
        raise fail(i, f"has width {products[i]} but record {first_index} has width {products[0]}")
    width = int(products[0])
    indptr = np.concatenate([[0], np.cumsum(comp.kcount)])
    outside = np.flatnonzero(comp.keys >= np.uint64(width))
    if outside.shape[0]:
        i = int(np.searchsorted(indptr, outside[0], side="right") - 1)
        raise fail(i, f"has key {comp.keys[outside[0]]} outside its width {width}")
    import scipy.sparse

    index_type = np.int32 if width < (1 << 31) and indptr[-1] < (1 << 31) else np.int64
    matrix = scipy.sparse.csr_matrix(
        (comp.values, comp.keys.astype(index_type), indptr.astype(index_type)),
        shape=(rows, width))
    return DecodedRecords(matrix, labels)


def _slice(batch: recordio.RecordBatch, start: int, stop: int) -> recordio.RecordBatch:
    return recordio.RecordBatch(batch.buffer, batch.starts[start:stop],
                                batch.lengths[start:stop], batch.offsets[start:stop])


def iter_decoded(stream: BinaryIO, *, source: str = "<stream>",
                 batch_size: int = DEFAULT_BATCH_SIZE, fast_path: bool = True,
                 max_record_size: int = recordio.LENGTH_LIMIT) -> Iterator[DecodedRecords]:
    """Stream RecordIO-protobuf as :class:`DecodedRecords` of at most ``batch_size`` rows.

    For Pipe-mode training: memory is bounded by one read chunk plus one batch. Every batch must
    agree with the first one (dense/sparse, dtype, width, labels); a record that does not is
    reported by its index in the stream. ``fast_path=False`` parses every record with the
    protobuf runtime (slow; for verification).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batches = recordio.scan_batches(stream, source=source, max_record_size=max_record_size)
    return _decode_batches(batches, source, batch_size, fast_path)


def _decode_batches(batches: Iterator[recordio.RecordBatch], source: str, batch_size: int,
                    fast_path: bool) -> Iterator[DecodedRecords]:
    index = 0
    reference: tuple | None = None
    for batch in batches:
        for start in range(0, len(batch), batch_size):
            part = _slice(batch, start, start + batch_size)
            decoded = _assemble(_components(part, index, source, fast_path), index, part, source)
            signature = _describe(decoded)
            if reference is None:
                reference = signature
            elif signature != reference:
                raise FormatError(f"record {index} starts a run of {signature[0]} but earlier "
                                  f"records are {reference[0]}", source=source,
                                  offset=int(part.offsets[0]))
            index += len(part)
            yield decoded


def _describe(decoded: DecodedRecords) -> tuple[str, ...]:
    """Human-readable layout of a batch; consecutive batches must have equal descriptions."""
    features, labels = decoded.features, decoded.labels
    kind = "sparse" if not isinstance(features, np.ndarray) else "dense"
    text = f"{kind} {features.dtype} rows of width {features.shape[1]}"
    if labels is None:
        text += " without labels"
    else:
        text += f" with {labels.dtype} labels of shape {labels.shape[1:] or '(1,)'}"
    return (text,)


def decode(data: bytes | bytearray | memoryview | BinaryIO, *, source: str = "<stream>",
           fast_path: bool = True) -> DecodedRecords:
    """Decode a whole RecordIO-protobuf stream or buffer into one matrix (and labels).

    Dense records give a 2-D ndarray of the tensors' dtype, sparse records a CSR matrix whose
    width comes from the records' shape. Mixed dense/sparse, dtype or width changes, or
    inconsistent labels raise :class:`FormatError` naming the record index.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        batches = recordio.scan_buffer(data, source=source)
    else:
        batches = recordio.scan_batches(data, source=source)
    parts = list(_decode_batches(batches, source, 1 << 20, fast_path))
    if not parts:
        return DecodedRecords(np.empty((0, 0), dtype=np.float32), None)
    labels = None
    if parts[0].labels is not None:
        labels = np.concatenate([p.labels for p in parts])
    if isinstance(parts[0].features, np.ndarray):
        features = parts[0].features if len(parts) == 1 else np.concatenate(
            [p.features for p in parts])
        return DecodedRecords(features, labels)
    import scipy.sparse

    matrix = parts[0].features if len(parts) == 1 else scipy.sparse.vstack(
        [p.features for p in parts], format="csr")
    return DecodedRecords(matrix, labels)
