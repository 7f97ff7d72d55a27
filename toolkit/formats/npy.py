"""NPY / NPZ (``application/x-npy``) without pickle and without trusting the header's size claims.

Why not just ``np.load``: a request body is untrusted. We parse the header ourselves (with
numpy's literal-only header reader), refuse any dtype that holds Python objects -- loading those
would mean unpickling, i.e. running code chosen by the sender -- and compare the size the header
claims with the bytes actually present *before* allocating anything. So a 100-byte body that
claims a 10^12-element array fails at once with :class:`FormatError`.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Literal, NamedTuple

import numpy as np
from numpy.lib import format as npformat

from toolkit.formats.errors import FormatError

__all__ = ["decode_npy", "decode_npz", "encode_npy", "encode_npz", "read_npy"]

#: Largest header accepted (numpy's own default for untrusted input).
MAX_HEADER_BYTES = 10000
#: Default bound on the total decompressed size of an NPZ body's members.
DEFAULT_MAX_NPZ_BYTES = 4 * 1024**3
_READ_CHUNK = 1024 * 1024


class _Header(NamedTuple):
    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype
    data_offset: int
    nbytes: int


def _read_header(stream: BinaryIO, source: str) -> _Header:
    """Parse and validate the magic and header dict; the stream is left at the first data byte."""
    try:
        major, minor = npformat.read_magic(stream)
        if (major, minor) == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(
                stream, max_header_size=MAX_HEADER_BYTES)
        elif (major, minor) in ((2, 0), (3, 0)):
            shape, fortran, dtype = npformat.read_array_header_2_0(
                stream, max_header_size=MAX_HEADER_BYTES)
        else:
            raise ValueError(f"unsupported NPY format version {major}.{minor}")
    except Exception as exc:  # noqa: BLE001 - numpy's header parser tokenizes untrusted text and
        # lets ValueError, SyntaxError, tokenize.TokenError, EOFError... escape: all mean "bad"
        raise FormatError(f"not a valid NPY header: {exc}", source=source, offset=0) from None
    if any(dim < 0 for dim in shape):
        raise FormatError(f"not a valid NPY header: negative dimension in shape {shape}",
                          source=source, offset=0)
    if dtype.hasobject:
        raise FormatError("NPY holds Python objects; pickled objects are refused "
                          "(allow_pickle=False)", source=source, offset=0)
    count = math.prod(shape)
    return _Header(shape, fortran, dtype, stream.tell(), count * dtype.itemsize)


def _build(header: _Header, buffer: Any, source: str) -> np.ndarray:
    """Array over ``buffer`` (exactly ``header.nbytes`` long), in the header's memory order."""
    try:
        if header.dtype.itemsize == 0:
            return np.empty(header.shape, dtype=header.dtype)
        flat = np.frombuffer(buffer, dtype=header.dtype, count=math.prod(header.shape))
        if header.fortran_order:
            return flat.reshape(header.shape[::-1]).transpose()
        return flat.reshape(header.shape)
    except (ValueError, MemoryError) as exc:
        raise FormatError(f"cannot build the array: {exc}", source=source,
                          offset=header.data_offset) from None


def _size_mismatch(header: _Header, actual: int, source: str) -> FormatError:
    return FormatError(
        f"header declares {header.dtype} {header.shape} = {header.nbytes} data bytes, "
        f"but {actual} are present", source=source, offset=header.data_offset)


def decode_npy(data: bytes | bytearray | memoryview, *, source: str = "<stream>") -> np.ndarray:
    """Decode one NPY body into a new writable array. Trailing bytes are an error."""
    view = memoryview(data).cast("B")
    header = _read_header(io.BytesIO(view), source)
    actual = len(view) - header.data_offset
    if actual != header.nbytes:
        raise _size_mismatch(header, actual, source)
    body = view[header.data_offset:]
    return _build(header, body, source).copy(order="K")


def encode_npy(array: Any) -> bytes:
    """Encode an array as NPY (format 1.0 when possible). Object arrays are refused."""
    values = np.asanyarray(array)
    if values.dtype.hasobject:
        raise TypeError("object arrays would need pickle; NPY encoding refuses them")
    out = io.BytesIO()
    npformat.write_array(out, values, allow_pickle=False)
    return out.getvalue()


def read_npy(path_or_stream: str | os.PathLike[str] | BinaryIO, *, source: str | None = None,
             mmap: bool = True) -> np.ndarray:
    """Read an NPY file or stream, checking the header like :func:`decode_npy`.

    A path is memory-mapped read-only by default (``mmap=False`` loads a writable copy), which
    lets training code open arrays larger than memory. A stream is read in chunks up to the
    declared size only, so a lying header cannot make us allocate more than the stream delivers.
    """
    if isinstance(path_or_stream, (str, os.PathLike)):
        path = Path(path_or_stream)
        name = source or str(path)
        with path.open("rb") as handle:
            header = _read_header(handle, name)
            actual = path.stat().st_size - header.data_offset
            if actual != header.nbytes:
                raise _size_mismatch(header, actual, name)
            if not mmap or header.nbytes == 0 or not header.shape:
                handle.seek(header.data_offset)
                return _build(header, handle.read(), name).copy(order="K")
        order: Literal["F", "C"] = "F" if header.fortran_order else "C"
        return np.memmap(path, dtype=header.dtype, mode="r", offset=header.data_offset,
                         shape=header.shape, order=order)
    name = source or "<stream>"
    header = _read_header(path_or_stream, name)
    chunks: list[bytes] = []
    received = 0
    while received < header.nbytes:
        chunk = path_or_stream.read(min(_READ_CHUNK, header.nbytes - received))
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    if received < header.nbytes or path_or_stream.read(1):
        raise _size_mismatch(header, received if received < header.nbytes else received + 1,
                             name)
    return _build(header, b"".join(chunks), name).copy(order="K")


def decode_npz(data: bytes | bytearray | memoryview, *, source: str = "<stream>",
               max_bytes: int = DEFAULT_MAX_NPZ_BYTES) -> dict[str, np.ndarray]:
    """Decode an NPZ body (zip of ``name.npy`` members) into ``{name: array}``.

    Each member is checked like :func:`decode_npy`; ``max_bytes`` bounds the total *declared*
    uncompressed size before anything is inflated, so a zip bomb fails fast. Members not named
    ``*.npy`` or duplicated names are errors.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    except Exception as exc:  # noqa: BLE001 - zipfile raises many types on garbage; all mean "bad"
        raise FormatError(f"not a valid NPZ (zip) archive: {exc}", source=source) from None
    with archive:
        members = archive.infolist()
        total = sum(member.file_size for member in members)
        if total > max_bytes:
            raise FormatError(f"NPZ members declare {total} bytes, more than the limit of "
                              f"{max_bytes}", source=source)
        arrays: dict[str, np.ndarray] = {}
        for member in members:
            where = f"{source}[{member.filename}]"
            if not member.filename.endswith(".npy"):
                raise FormatError("NPZ member is not a .npy file", source=where)
            key = member.filename[:-4]
            if key in arrays:
                raise FormatError("duplicate NPZ member", source=where)
            try:
                payload = archive.read(member)
            except Exception as exc:  # noqa: BLE001 - bad CRC, zlib/lzma error, encrypted, ...
                raise FormatError(f"cannot extract NPZ member: {exc}", source=where) from None
            arrays[key] = decode_npy(payload, source=where)
    return arrays


def encode_npz(arrays: Mapping[str, Any], *, compress: bool = False) -> bytes:
    """Encode ``{name: array}`` as NPZ (readable by ``np.load``); object arrays are refused."""
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, mode="w", compression=method, allowZip64=True) as archive:
        for name, array in arrays.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"NPZ member names must be non-empty strings, got {name!r}")
            archive.writestr(f"{name}.npy", encode_npy(array))
    return out.getvalue()
