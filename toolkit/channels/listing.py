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
    try:
        root_stat = os.stat(root)
    except FileNotFoundError:
        raise ChannelError("channel directory does not exist", path=root) from None
    if not stat.S_ISDIR(root_stat.st_mode):
        raise ChannelError("not a directory", path=root)
    found: list[ListedFile] = []
    seen_dirs: set[tuple[int, int]] = set()

    def walk(directory: Path, prefix: str) -> None:
        st = os.stat(directory)
        ident = (st.st_dev, st.st_ino)
        if ident in seen_dirs:
            return
        seen_dirs.add(ident)
        with os.scandir(directory) as entries:
            for entry in entries:
                if not include_hidden and entry.name.startswith("."):
                    continue
                key = prefix + entry.name
                try:
                    entry_stat = entry.stat(follow_symlinks=True)
                except FileNotFoundError:  # a dangling symlink or a file removed meanwhile
                    continue
                if stat.S_ISDIR(entry_stat.st_mode):
                    walk(Path(entry.path), key + "/")
                elif stat.S_ISREG(entry_stat.st_mode):
                    found.append(ListedFile(key, Path(entry.path), entry_stat.st_size))

    walk(Path(root), "")
    found.sort(key=lambda f: f.key)
    return found
