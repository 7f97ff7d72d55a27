"""List a directory's regular files in the order File mode and the feeder both use.

Order: the relative POSIX path, compared by code point — the same order as an S3 listing (UTF-8
binary order), so a channel read in File mode and the same objects fed through a Pipe arrive in the
same sequence. Hidden entries (a name starting with ``.``, file or directory) are skipped by
default: in practice they are ``.DS_Store``, ``._*`` AppleDouble files, ``.ipynb_checkpoints`` or
half-written ``.part`` downloads, and handing them to a record parser fails obscurely. Pass
``include_hidden=True`` for byte-for-byte fidelity with what the service would download.
Symlinked directories are followed once (a link cycle is not walked twice); non-regular files
(FIFOs, sockets) are never listed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from toolkit.channels.errors import ChannelError


@dataclass(frozen=True)
class ListedFile:
    """One regular file: its key (relative POSIX path), absolute path and size in bytes."""

    key: str
    path: Path
    size: int


def list_files(root: Path, *, include_hidden: bool = False) -> list[ListedFile]:
    """Every regular file under ``root``, recursively, sorted by key."""
    return list(iter_files(root, include_hidden=include_hidden))


def iter_files(root: Path, *, include_hidden: bool = False) -> Iterator[ListedFile]:
    """Every regular file under ``root``, recursively, in key order, found as it is consumed.

    Why lazily: a channel of millions of small objects would otherwise hold a record per object
    (with its path) before the first byte is copied; this holds only the entries of the
    directories on the current path. Sorting each directory's entries by name, with ``/``
    appended to directory names, yields exactly the order of sorting all keys: every key below
    directory ``d`` starts with ``d/``, and no name contains ``/``.
    """
    try:
        root_stat = os.stat(root)
    except FileNotFoundError:
        raise ChannelError("channel directory does not exist", path=root) from None
    if not stat.S_ISDIR(root_stat.st_mode):
        raise ChannelError("not a directory", path=root)
    seen_dirs: set[tuple[int, int]] = set()

    def walk(directory: str, prefix: str) -> Iterator[ListedFile]:
        st = os.stat(directory)
        ident = (st.st_dev, st.st_ino)
        if ident in seen_dirs:
            return
        seen_dirs.add(ident)
        entries: list[tuple[str, str, int]] = []  # (sort name, name, size or -1 for a directory)
        with os.scandir(directory) as scan:
            for entry in scan:
                if not include_hidden and entry.name.startswith("."):
                    continue
                try:
                    entry_stat = entry.stat(follow_symlinks=True)
                except FileNotFoundError:  # a dangling symlink or a file removed meanwhile
                    continue
                if stat.S_ISDIR(entry_stat.st_mode):
                    entries.append((entry.name + "/", entry.name, -1))
                elif stat.S_ISREG(entry_stat.st_mode):
                    entries.append((entry.name, entry.name, entry_stat.st_size))
        entries.sort()
        for _, name, size in entries:
            path = os.path.join(directory, name)
            if size < 0:
                yield from walk(path, prefix + name + "/")
            else:
                yield ListedFile(prefix + name, Path(path), size)

    yield from walk(os.fspath(root), "")
