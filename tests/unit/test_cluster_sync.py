"""local_mode.cluster.sync: what a pass uploads, and what a running program may do to its files
without ever failing the job (remove them, keep them unreadable for a while)."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_mode.cluster.sync import DirectorySync


def test_each_host_uploads_into_the_same_prefix_once_per_change(tmp_path: Path) -> None:
    hosts = [tmp_path / "h1", tmp_path / "h2"]
    for host in hosts:
        host.mkdir()
    (hosts[0] / "a.txt").write_text("a")
    (hosts[1] / "deep").mkdir()
    (hosts[1] / "deep" / "b.txt").write_text("b")
    remote = tmp_path / "remote"
    sync = DirectorySync(remote.as_uri(), hosts, {})
    assert sync.sync() == 2
    assert (remote / "a.txt").read_text() == "a" and (remote / "deep" / "b.txt").read_text() == "b"
    assert sync.sync() == 0
    (hosts[0] / "a.txt").write_text("a, longer")
    assert sync.sync() == 1 and sync.uploaded == 3


def test_two_hosts_writing_the_same_name_do_not_upload_it_on_every_pass(tmp_path: Path) -> None:
    hosts = [tmp_path / "h1", tmp_path / "h2"]
    for index, host in enumerate(hosts):
        host.mkdir()
        (host / "same.txt").write_text(f"host {index}")
    sync = DirectorySync((tmp_path / "remote").as_uri(), hosts, {})
    assert sync.sync() == 2
    assert sync.sync() == 0


def test_symbolic_links_are_neither_uploaded_nor_followed(tmp_path: Path) -> None:
    """A link made by the program (inside a container: pointing anywhere on this machine) is
    not uploaded; the file it points at is, when it lies in the directory itself."""
    host = tmp_path / "h"
    host.mkdir()
    (host / "ckpt-100.pt").write_text("weights")
    (host / "latest").symlink_to(host / "ckpt-100.pt")
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "key").write_text("do not upload")
    (host / "escape").symlink_to(outside)
    remote = tmp_path / "remote"
    assert DirectorySync(remote.as_uri(), [host], {}).sync(strict=True) == 1
    assert sorted(p.name for p in remote.rglob("*")) == ["ckpt-100.pt"]


def test_a_file_removed_before_its_upload_is_skipped(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    host = tmp_path / "h"
    host.mkdir()
    (host / "gone.tmp").write_text("x")
    (host / "kept.txt").write_text("k")
    import local_mode.cluster.sync as sync_module

    real = sync_module.upload_file

    def vanishing(path: Path, uri: str, environ: object) -> None:
        if path.name == "gone.tmp":
            path.unlink()  # what a program does between the listing and the upload
        real(path, uri, environ)  # type: ignore[arg-type]  # the environ passed through

    monkeypatch.setattr(sync_module, "upload_file", vanishing)
    sync = DirectorySync((tmp_path / "remote").as_uri(), [host], {})
    assert sync.sync() == 1
    assert sync.sync(strict=True) == 0


def test_a_permission_error_waits_for_the_next_pass(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A file a container keeps unreadable to the runner for a while (written as another
    user): skipped while the job runs, an error only on the last pass."""
    host = tmp_path / "h"
    host.mkdir()
    (host / "private.bin").write_text("p")
    import local_mode.cluster.sync as sync_module

    real = sync_module.upload_file
    denied = {"on": True}

    def upload(path: Path, uri: str, environ: object) -> None:
        if denied["on"]:
            raise PermissionError(13, "Permission denied", str(path))
        real(path, uri, environ)  # type: ignore[arg-type]  # the environ passed through

    monkeypatch.setattr(sync_module, "upload_file", upload)
    sync = DirectorySync((tmp_path / "remote").as_uri(), [host], {})
    assert sync.sync() == 0
    with pytest.raises(PermissionError):
        sync.sync(strict=True)
    denied["on"] = False
    assert sync.sync() == 1
