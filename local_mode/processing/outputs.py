"""Uploading what a processing job's hosts write into their output LocalPaths.

``EndOfJob`` outputs are uploaded once, when the job has completed; ``Continuous`` outputs while
the job runs (every ``OPTML_LOCAL_CONTINUOUS_UPLOAD_SECONDS``) and once more at its end, each file
again only when it changed (:class:`local_mode.cluster.sync.DirectorySync`, which training's
checkpoints use too). Every host uploads into the same S3 prefix, keeping the file's path below
the LocalPath, so files of the same name from two hosts overwrite each other, as they do on the
service. Symbolic links are not uploaded (the service does not follow them either).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from local_mode.cluster import Host, host_path
from local_mode.cluster.sync import DirectorySync
from local_mode.errors import LocalModeError
from local_mode.processing.spec import ProcessingOutputSpec


class OutputUploadFailed(LocalModeError):
    """An output could not be uploaded at the end of the job (the job fails with it)."""

    code = "ClientError"
    http_status = 400


class OutputUploader:
    def __init__(self, outputs: Sequence[ProcessingOutputSpec], hosts: Sequence[Host],
                 environ: Mapping[str, str]) -> None:
        self._syncs = [(output, DirectorySync(
            output.uri, [host_path(h, output.local_path) for h in hosts], environ,
            "S3Output.S3Uri")) for output in outputs]

    @property
    def uploaded(self) -> int:
        """Files uploaded so far (each upload of a changed file counts)."""
        return sum(sync.uploaded for _, sync in self._syncs)

    def sync_continuous(self, strict: bool = False) -> None:
        """Upload what changed in the Continuous outputs (``strict``: at the end of the job,
        when an upload error is the job's failure)."""
        self._sync(lambda output: output.continuous, strict)

    def sync_all(self) -> None:
        """Upload what changed in every output (the end of a completed job)."""
        self._sync(lambda output: True, strict=True)

    def _sync(self, which: Callable[[ProcessingOutputSpec], bool], strict: bool) -> None:
        for output, sync in self._syncs:
            if not which(output):
                continue
            try:
                sync.sync(strict=strict)
            except Exception as exc:
                if not strict:
                    raise
                raise OutputUploadFailed(f"uploading output {output.name} to {output.uri} "
                                         f"failed: {type(exc).__name__}") from exc
