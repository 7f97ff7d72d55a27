"""Uploading what hosts write into a directory, again and again while they run: training
checkpoints (to ``CheckpointConfig.S3Uri``) and a processing job's Continuous outputs.

Each pass uploads the files that are new or changed since the last pass (by size and mtime),
keeping each file's path below its host's directory; every host uploads into the same prefix.
Symbolic links are neither uploaded nor followed. While the program runs it may remove a file
between the listing and the upload, or keep one unreadable for a moment (a container writing as
another user): such a file is skipped and tried again on the next pass, except on the last pass
(``strict``), which lets those errors through too. Any other error (the store unreachable)
propagates; while the hosts run, :class:`~local_mode.cluster.supervisor.Periodic` logs it and
tries again, so it never stops the job either.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from local_mode.storage import Location, upload_file

log = logging.getLogger("optml.local")


class DirectorySync:
    def __init__(self, uri: str, directories: Sequence[Path], environ: Mapping[str, str],
                 field: str = "S3Uri") -> None:
        self.target = Location.parse(uri, field)
        self.directories = list(directories)
        self.environ = environ
        self._sent: dict[Path, tuple[int, int]] = {}
        self.uploaded = 0
        """Uploads so far (a file that changed counts again)."""

    def sync(self, strict: bool = False) -> int:
        """One pass; the number of files uploaded by it."""
        before = self.uploaded
        for directory in self.directories:
            for path in _files(directory):
                try:
                    stat = path.stat()
                    signature = (stat.st_size, stat.st_mtime_ns)
                    if self._sent.get(path) == signature:
                        continue
                    key = path.relative_to(directory).parts
                    upload_file(path, self.target.join(*key).uri, self.environ)
                except FileNotFoundError:
                    continue  # removed by the program meanwhile: nothing to upload
                except PermissionError:
                    if strict:
                        raise
                    log.info("%s: not readable yet; trying again on the next pass", path)
                    continue
                self._sent[path] = signature
                self.uploaded += 1
        return self.uploaded - before


def _files(root: Path) -> list[Path]:
    """Regular files below ``root``, symbolic links neither listed nor followed."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            if not path.is_symlink() and path.is_file():
                found.append(path)
    return sorted(found)
