"""local_mode.processing.outputs: which files are uploaded, when, and where."""

from __future__ import annotations

import os
from pathlib import Path

from local_mode.cluster import Host
from local_mode.processing.outputs import OutputUploader
from local_mode.processing.spec import ProcessingOutputSpec
from toolkit.layout import Layout


def _hosts(tmp_path: Path, count: int = 2) -> list[Host]:
    return [Host(f"algo-{i + 1}", i, count, Layout(tmp_path / f"algo-{i + 1}"))
            for i in range(count)]


def _write(host: Host, relative: str, text: str) -> Path:
    path = host.layout.root / "processing" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_continuous_sync_uploads_new_and_changed_files_only(tmp_path: Path) -> None:
    hosts = _hosts(tmp_path)
    target = tmp_path / "s3"
    outputs = [ProcessingOutputSpec("live", target.as_uri() + "/live",
                                    "/opt/ml/processing/live", "Continuous"),
               ProcessingOutputSpec("end", target.as_uri() + "/end", "/opt/ml/processing/end")]
    uploader = OutputUploader(outputs, hosts, {})
    _write(hosts[0], "live/a/one.txt", "1")
    _write(hosts[1], "live/two.txt", "2")
    _write(hosts[0], "end/final.txt", "f")
    uploader.sync_continuous()
    assert (target / "live" / "a" / "one.txt").read_text() == "1"
    assert (target / "live" / "two.txt").read_text() == "2"
    assert not (target / "end").exists()  # EndOfJob waits for the end
    assert uploader.uploaded == 2
    uploader.sync_continuous()
    assert uploader.uploaded == 2  # nothing changed: nothing sent again
    path = _write(hosts[0], "live/a/one.txt", "1 changed")
    os.utime(path, ns=(1, 10**18))
    uploader.sync_all()
    assert (target / "live" / "a" / "one.txt").read_text() == "1 changed"
    assert (target / "end" / "final.txt").read_text() == "f"
    assert uploader.uploaded == 4


def test_symbolic_links_are_not_uploaded(tmp_path: Path) -> None:
    (host,) = _hosts(tmp_path, 1)
    target = tmp_path / "s3"
    real = _write(host, "out/real.txt", "r")
    (real.parent / "link.txt").symlink_to(real)
    (real.parent / "dirlink").symlink_to(tmp_path)
    OutputUploader([ProcessingOutputSpec("o", target.as_uri(), "/opt/ml/processing/out")],
                   [host], {}).sync_all()
    assert sorted(p.name for p in target.rglob("*")) == ["real.txt"]


def test_a_missing_output_directory_uploads_nothing(tmp_path: Path) -> None:
    target = tmp_path / "s3"
    uploader = OutputUploader([ProcessingOutputSpec("o", target.as_uri(),
                                                    "/opt/ml/processing/none")],
                              _hosts(tmp_path), {})
    uploader.sync_all()
    assert uploader.uploaded == 0 and not target.exists()
