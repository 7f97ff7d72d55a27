"""Pack what the hosts left in /opt/ml/model and /opt/ml/output/data, and sync checkpoints.

Several hosts: every host's model directory goes into the one ``model.tar.gz`` (the service
uploads each host's files to the same place); when two hosts wrote the same path, the first host
in sorted order (the master) wins and the clash is logged, so the result is deterministic.
"""

from __future__ import annotations

import logging
import os
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from local_mode.cluster.tree import WRITABLE_DIR_MODE, WRITABLE_FILE_MODE, place
from local_mode.storage import Location, open_prefix

log = logging.getLogger(__name__)


def pack_directories(directories: Sequence[Path], target: Path) -> int:
    """Tar+gzip the union of ``directories`` into ``target``; returns the number of files."""
    seen: dict[str, Path] = {}
    count = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as archive:
        for directory in directories:
            if not directory.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(directory):
                dirnames.sort()
                for name in sorted(filenames):
                    path = Path(dirpath) / name
                    arcname = str(path.relative_to(directory))
                    if arcname in seen:
                        log.warning("%s exists on several hosts; keeping the one from %s",
                                    arcname, seen[arcname])
                        continue
                    if path.is_symlink() or not path.is_file():
                        continue
                    seen[arcname] = directory
                    archive.add(path, arcname=arcname, recursive=False)
                    count += 1
    return count


def restore_checkpoints(uri: str, targets: Sequence[Path], environ: Mapping[str, str]) -> int:
    """Copy every object under ``uri`` into each host's checkpoint directory."""
    if not _exists(uri):
        return 0
    scheme = Location.parse(uri).scheme
    source = open_prefix(uri.rstrip("/") + "/" if scheme == "s3" else uri, environ)
    objects = source.list_objects()
    prefix = Location.parse(uri).key.rstrip("/") + "/"
    for target in targets:
        target.mkdir(parents=True, exist_ok=True)
        for info in objects:
            key = info.key[len(prefix):] if info.key.startswith(prefix) else info.key
            path = place(target, key, WRITABLE_DIR_MODE)  # refuses a key that escapes it
            with source.open_object(info.key) as reader, path.open("wb") as writer:
                while chunk := reader.read(1 << 20):
                    writer.write(chunk)
            # the program resumes from these and then overwrites them, as whatever USER its
            # image runs as
            path.chmod(WRITABLE_FILE_MODE)
    return len(objects)


def _exists(uri: str) -> bool:
    location = Location.parse(uri)
    return location.scheme == "s3" or Path(location.key).exists()
