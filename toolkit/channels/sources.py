"""Where the feeder gets a channel's objects from.

:class:`ObjectSource` is shaped like an S3 prefix: objects have string keys (``/``-separated) and
sizes, are listed in key order and are opened as read-only binary streams. Local mode feeds from a
directory today (:class:`LocalFileSource`); an S3-backed source only has to implement the same
three methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from toolkit.channels.errors import ChannelError
from toolkit.channels.listing import iter_files


@dataclass(frozen=True)
class ObjectInfo:
    """One object of a source: its key and its size in bytes (as stored, before decompression)."""

    key: str
    size: int


@runtime_checkable
class ObjectSource(Protocol):
    """A listable, readable collection of objects (an S3 prefix, a local directory)."""

    def list_objects(self) -> Sequence[ObjectInfo]:
        """Every object, sorted by key."""

    def open_object(self, key: str) -> BinaryIO:
        """Open one listed object for reading."""

    def open_reference(self, ref: str) -> BinaryIO:
        """Open an object an augmented manifest refers to (``s3://...`` for S3; for local
        sources a ``file://`` URI, an absolute path or a key relative to the source)."""


def iter_objects(source: ObjectSource) -> Iterable[ObjectInfo]:
    """The source's objects in key order, listed as they are consumed when the source can (an
    ``iter_objects()`` method, optional to implement), else its :meth:`ObjectSource.list_objects`.

    One pass over millions of small objects (File-mode staging) then holds a directory's or an
    S3 page's worth of listing, not a record per object.
    """
    lazy = getattr(source, "iter_objects", None)
    return lazy() if callable(lazy) else source.list_objects()


class LocalFileSource:
    """A local directory (every regular file, recursively) or a single file, as objects.

    Listing follows :func:`toolkit.channels.listing.list_files`, so File mode and Pipe mode see
    the same objects in the same order.
    """

    def __init__(self, path: str | Path, *, include_hidden: bool = False) -> None:
        self.path = Path(path).absolute()
        self.include_hidden = include_hidden
        if not self.path.exists():
            raise ChannelError("source does not exist", path=self.path)
        self._root = self.path if self.path.is_dir() else self.path.parent
        self._resolved_root = self._root.resolve()  # once: resolve() is costly per object

    def list_objects(self) -> list[ObjectInfo]:
        return list(self.iter_objects())

    def iter_objects(self) -> Iterator[ObjectInfo]:
        """:meth:`list_objects` found as it is consumed (see :func:`iter_objects`)."""
        if self.path.is_dir():
            for f in iter_files(self.path, include_hidden=self.include_hidden):
                yield ObjectInfo(f.key, f.size)
        else:
            yield ObjectInfo(self.path.name, self.path.stat().st_size)

    def _resolve(self, key: str) -> Path:
        candidate = (self._root / key).resolve()
        root = self._resolved_root
        if candidate != root and root not in candidate.parents:
            raise ChannelError(f"key {key!r} escapes the source directory", path=self._root)
        return candidate

    def open_object(self, key: str) -> BinaryIO:
        path = self._resolve(key)
        try:
            return open(path, "rb")
        except OSError as exc:
            raise ChannelError(f"cannot open object: {exc.strerror}", path=path) from None

    def open_reference(self, ref: str) -> BinaryIO:
        if ref.startswith("file://"):
            path = Path(unquote(urlsplit(ref).path))
        elif ref.startswith("/"):
            path = Path(ref)
        elif "://" in ref:
            raise ChannelError(f"a local source cannot open {ref!r}", path=self._root)
        else:
            path = self._resolve(ref)
        try:
            return open(path, "rb")
        except OSError as exc:
            raise ChannelError(f"cannot open referenced object: {exc.strerror}",
                               path=path) from None
