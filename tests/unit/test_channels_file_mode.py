"""File and FastFile mode: which files an epoch yields, in which order, and framing on them."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from toolkit.channels import ChannelError, InputMode, LocalFileSource, open_channel
from toolkit.errors import ConfigError
from toolkit.layout import Layout


def make_layout(tmp_path: Path, channels: dict[str, dict[str, str]]) -> Layout:
    layout = Layout(tmp_path / "opt_ml")
    layout.input_config_dir.mkdir(parents=True)
    layout.input_data_config_file.write_text(json.dumps(channels))
    return layout


def put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture()
def train_dir(tmp_path: Path) -> tuple[Layout, Path]:
    layout = make_layout(tmp_path, {"train": {"TrainingInputMode": "File"}})
    root = layout.channel_dir("train")
    for rel in ["b.csv", "a/z.csv", "a/b/c.csv", "a-b.csv", "A.csv", ".hidden", ".git/x",
                "c/.DS_Store"]:
        put(root / rel, rel.encode())
    return layout, root


def test_epoch_iterates_files_recursively_in_key_order(train_dir: tuple[Layout, Path]) -> None:
    layout, root = train_dir
    channel = open_channel("train", layout=layout)
    assert channel.mode is InputMode.FILE
    with channel.open_epoch() as epoch:
        assert epoch.number is None
        sources = [Path(source).relative_to(root).as_posix() for source, _ in epoch.streams()]
    # Code-point order of the relative path, as an S3 listing sorts keys (so '-' < '/');
    # dotfiles skipped.
    assert sources == ["A.csv", "a-b.csv", "a/b/c.csv", "a/z.csv", "b.csv"]


def test_records_concatenate_files_and_every_epoch_rereads(
        train_dir: tuple[Layout, Path]) -> None:
    layout, _ = train_dir
    channel = open_channel("train", layout=layout)
    expected = b"A.csva-b.csva/b/c.csva/z.csvb.csv"
    assert b"".join(channel.records()) == expected
    assert b"".join(channel.records()) == expected


def test_hidden_files_can_be_included(train_dir: tuple[Layout, Path]) -> None:
    layout, root = train_dir
    channel = open_channel("train", layout=layout, include_hidden=True)
    with channel.open_epoch() as epoch:
        keys = [Path(s).relative_to(root).as_posix() for s, _ in epoch.streams()]
    assert keys == [".git/x", ".hidden", "A.csv", "a-b.csv", "a/b/c.csv", "a/z.csv", "b.csv",
                    "c/.DS_Store"]


def test_local_source_lists_the_same_objects_in_the_same_order(
        train_dir: tuple[Layout, Path]) -> None:
    _, root = train_dir
    assert [o.key for o in LocalFileSource(root).list_objects()] == [
        "A.csv", "a-b.csv", "a/b/c.csv", "a/z.csv", "b.csv"]


def test_symlink_cycles_and_fifos_are_not_followed(tmp_path: Path) -> None:
    layout = make_layout(tmp_path, {"train": {}})
    root = layout.channel_dir("train")
    put(root / "d" / "f", b"x")
    os.symlink(root, root / "d" / "loop")
    os.mkfifo(root / "pipe")
    with open_channel("train", layout=layout).open_epoch() as epoch:
        assert [Path(s).name for s, _ in epoch.streams()] == ["f"]


def test_fastfile_reads_like_file_and_lines_framing(tmp_path: Path) -> None:
    layout = make_layout(tmp_path, {"train": {"TrainingInputMode": "FastFile"}})
    put(layout.channel_dir("train") / "part-0", b"a,1\r\nb,2\nc,3")
    channel = open_channel("train", layout=layout)
    assert channel.mode is InputMode.FASTFILE
    assert list(channel.records("lines")) == [b"a,1", b"b,2", b"c,3"]


def test_gzip_files_are_decompressed_per_config(tmp_path: Path) -> None:
    layout = make_layout(tmp_path, {"train": {"CompressionType": "Gzip"}})
    put(layout.channel_dir("train") / "0.gz", gzip.compress(b"line1\nline2\n"))
    put(layout.channel_dir("train") / "1.gz", gzip.compress(b"line3\n"))
    assert list(open_channel("train", layout=layout).records("lines")) == [
        b"line1", b"line2", b"line3"]
    # an explicit compression wins over the config
    raw = b"".join(open_channel("train", layout=layout).records(compression="None"))
    assert raw.startswith(b"\x1f\x8b")


def test_missing_channel_directory_is_a_channel_error(tmp_path: Path) -> None:
    layout = make_layout(tmp_path, {"train": {}})
    with pytest.raises(ChannelError, match="does not exist") as info:
        open_channel("train", layout=layout).open_epoch()
    assert info.value.path == str(layout.channel_dir("train"))


def test_config_errors_surface_from_open_channel(tmp_path: Path) -> None:
    layout = make_layout(tmp_path, {"train": {"TrainingInputMode": "Pipes"}})
    with pytest.raises(ConfigError) as info:
        open_channel("train", layout=layout)
    assert info.value.field == "train.TrainingInputMode"
    with pytest.raises(ConfigError, match="file is missing"):
        open_channel("train", layout=Layout(tmp_path / "elsewhere"))


def test_mode_override_works_without_a_config_file(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "opt_ml")
    put(layout.channel_dir("train") / "x", b"data")
    assert b"".join(open_channel("train", layout=layout, mode="file").records()) == b"data"


def test_default_layout_comes_from_the_environment_when_called(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = make_layout(tmp_path, {"train": {}})
    put(layout.channel_dir("train") / "x", b"env")
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(layout.root))
    assert b"".join(open_channel("train").records()) == b"env"
