"""Packing host outputs and syncing checkpoints."""

from __future__ import annotations

import stat
import tarfile
from pathlib import Path

from local_mode.cluster.sync import DirectorySync
from local_mode.training.artifacts import pack_directories, restore_checkpoints


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()  # type: ignore[union-attr]
                if m.isfile()}


def test_hosts_are_merged_and_the_first_host_wins_a_clash(tmp_path: Path) -> None:
    first, second = tmp_path / "h1", tmp_path / "h2"
    (first / "sub").mkdir(parents=True)
    second.mkdir()
    (first / "sub" / "a.txt").write_text("1a")
    (first / "same.txt").write_text("from 1")
    (second / "same.txt").write_text("from 2")
    (second / "b.txt").write_text("2b")
    (second / "link").symlink_to(second / "b.txt")
    target = tmp_path / "out" / "model.tar.gz"
    count = pack_directories([first, second, tmp_path / "missing"], target)
    assert count == 3
    assert _members(target) == {"sub/a.txt": b"1a", "same.txt": b"from 1", "b.txt": b"2b"}


def test_an_empty_model_dir_gives_an_empty_valid_tarball(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    assert pack_directories([tmp_path / "m"], tmp_path / "model.tar.gz") == 0
    assert _members(tmp_path / "model.tar.gz") == {}


def test_restore_and_incremental_sync(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    (remote / "deep").mkdir(parents=True)
    (remote / "deep" / "c0").write_text("zero")
    hosts = [tmp_path / "h1" / "ckpt", tmp_path / "h2" / "ckpt"]
    assert restore_checkpoints(f"file://{remote}", hosts, {}) == 1
    assert all((h / "deep" / "c0").read_text() == "zero" for h in hosts)
    for host in hosts:  # the program, whatever its USER, resumes from them and overwrites them
        assert stat.S_IMODE((host / "deep" / "c0").stat().st_mode) == 0o666
        assert stat.S_IMODE((host / "deep").stat().st_mode) == 0o777
    assert restore_checkpoints(f"file://{tmp_path}/nothing-yet", hosts, {}) == 0

    sync = DirectorySync(f"file://{remote}/", hosts[:1], {})
    (hosts[0] / "c1").write_text("one")
    assert sync.sync() == 2  # the restored file is new to this syncer, and c1
    assert sync.sync() == 0  # nothing changed
    (hosts[0] / "c1").write_text("one, longer")
    assert sync.sync() == 1
    assert (remote / "c1").read_text() == "one, longer"
