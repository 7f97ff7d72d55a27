"""Uploading what a processing job's hosts write into their output LocalPaths.

``EndOfJob`` outputs are uploaded once, when the job has completed; ``Continuous`` outputs while
the job runs (every ``OPTML_LOCAL_CONTINUOUS_UPLOAD_SECONDS``) and once more at its end, each file
again only when it changed. Every host uploads into the same S3 prefix, keeping the file's path
below the LocalPath, so files of the same name from two hosts overwrite each other, as they do on
the service. Symbolic links are not followed (the service does not upload them either).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from local_mode.cluster import Host, host_path
from local_mode.processing.spec import ProcessingOutputSpec
from local_mode.storage import Location, upload_file


@dataclass
class OutputUploader:
    outputs: Sequence[ProcessingOutputSpec]
    hosts: Sequence[Host]
    environ: Mapping[str, str]
    _sent: dict[tuple[str, Path], tuple[int, int]] = field(default_factory=dict)
    """(output name, file) -> (size, mtime_ns) of what was last uploaded."""
    uploaded: int = 0
    """Files uploaded so far (each upload of a changed file counts)."""

    def sync_continuous(self) -> None:
        """Upload what changed in the Continuous outputs."""
        for output in self.outputs:
            if output.continuous:
                self._sync(output)

    def sync_all(self) -> None:
        """Upload what changed in every output (the end of a completed job)."""
        for output in self.outputs:
            self._sync(output)

    def _sync(self, output: ProcessingOutputSpec) -> None:
        target = Location.parse(output.uri, "S3Output.S3Uri")
        for host in self.hosts:
            root = host_path(host, output.local_path)
            for path in _files(root):
                try:
                    stat = path.stat()
                except FileNotFoundError:  # the program removed it meanwhile
                    continue
                signature = (stat.st_size, stat.st_mtime_ns)
                key = (output.name, path)
                if self._sent.get(key) == signature:
                    continue
                upload_file(path, target.join(*path.relative_to(root).parts).uri, self.environ)
                self._sent[key] = signature
                self.uploaded += 1


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
