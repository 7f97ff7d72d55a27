"""Fetch a model artifact (``model.tar.gz`` on file:// or s3://) and extract it safely.

The service downloads ``ModelDataUrl`` and extracts it into ``/opt/ml/model`` before ``serve``;
here it is extracted once per endpoint (or transform job) and every instance reads the same
directory. A ``file://`` directory is used as it is (a local convenience: no tarball needed).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from local_mode.storage import Location, read_bytes
from toolkit.errors import OptmlError
from toolkit.training.code_source import safe_extract


class StagingError(Exception):
    """The model artifact could not be fetched or extracted; the message names the URL."""


def stage_model_data(url: str | None, dest: Path, environ: Mapping[str, str]) -> Path:
    """``url``'s content as a directory (``dest``, created; empty when ``url`` is None)."""
    if not url:
        dest.mkdir(parents=True, exist_ok=True)
        return dest
    location = Location.parse(url, "ModelDataUrl")
    if location.scheme == "file" and Path(location.key).is_dir():
        return Path(location.key)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as scratch:
        archive = Path(scratch) / "model.tar.gz"
        try:
            if location.scheme == "file":
                shutil.copyfile(location.key, archive)
            else:
                archive.write_bytes(read_bytes(url, environ))
        except FileNotFoundError:
            raise StagingError(f"ModelDataUrl {url!r}: no such object") from None
        except Exception as exc:  # noqa: BLE001 - boto errors have many types
            raise StagingError(f"ModelDataUrl {url!r}: cannot download ({exc})") from None
        try:
            safe_extract(archive, dest)
        except OptmlError as exc:
            raise StagingError(f"ModelDataUrl {url!r}: {exc}") from None
    return dest
