"""file:// and s3:// locations and the object sources local mode stages and feeds from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_mode.errors import ValidationException
from local_mode.storage import (
    FilteredSource,
    Location,
    ManifestSource,
    manifest_entries,
    open_prefix,
    read_bytes,
    relative_key,
    upload_file,
)
from toolkit.channels.sources import LocalFileSource


def test_parse_and_join() -> None:
    assert Location.parse("file:///a/b") == Location("file", "", "/a/b")
    assert Location.parse("file://localhost/a%20b").key == "/a b"
    assert Location.parse("s3://bucket/some/key") == Location("s3", "bucket", "some/key")
    assert Location.parse("s3://bucket").join("p", "q").uri == "s3://bucket/p/q"
    assert Location.parse("file:///out").join("job", "output").uri == "file:///out/job/output"


@pytest.mark.parametrize("uri", ["file://host/x", "file://relative", "s3:///key",
                                 "https://bucket/x", "/plain/path"])
def test_bad_uris_name_the_field(uri: str) -> None:
    with pytest.raises(ValidationException, match="MyField"):
        Location.parse(uri, "MyField")


@given(st.sampled_from(["s3", "file"]),
       st.lists(st.text("abcxyz0123-_.", min_size=1, max_size=8), min_size=1, max_size=4))
def test_parse_round_trips_uri(scheme: str, parts: list[str]) -> None:
    uri = f"s3://bucket/{'/'.join(parts)}" if scheme == "s3" else f"file:///{'/'.join(parts)}"
    assert Location.parse(uri).uri == uri


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name, text in {"part-0": "a", "part-1": "b", "other": "c", "sub/x": "d"}.items():
        (tmp_path / "d" / name).write_text(text)
    return tmp_path / "d"


def test_open_prefix_directory_file_and_key_prefix(tree: Path) -> None:
    keys = [o.key for o in open_prefix(f"file://{tree}", {}).list_objects()]
    assert keys == ["other", "part-0", "part-1", "sub/x"]
    single = open_prefix(f"file://{tree}/other", {})
    assert [relative_key(o.key, f"file://{tree}/other") for o in single.list_objects()] == \
        ["other"]
    prefixed = open_prefix(f"file://{tree}/part-", {})
    assert isinstance(prefixed, FilteredSource)
    assert [o.key for o in prefixed.list_objects()] == ["part-0", "part-1"]
    with prefixed.open_object("part-1") as handle:
        assert handle.read() == b"b"
    with pytest.raises(ValidationException, match="no such file"):
        open_prefix(f"file://{tree}/missing/dir/x", {})


def test_relative_key_for_s3_prefixes() -> None:
    assert relative_key("data/train/a.csv", "s3://b/data/train/") == "a.csv"
    assert relative_key("data/train-1.csv", "s3://b/data/train") == "train-1.csv"
    assert relative_key("x/y.csv", "s3://b") == "x/y.csv"
    # a folder named without its trailing slash (what the SDK's upload_data returns)
    assert relative_key("data/train/a.csv", "s3://b/data/train") == "a.csv"
    assert relative_key("data/train/sub/a.csv", "s3://b/data/train") == "sub/a.csv"
    assert relative_key("data/train", "s3://b/data/train") == "train"  # the prefix is an object


def test_manifest_file(tree: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"prefix": f"file://{tree}"}, "part-1", "sub/x"]))
    source = ManifestSource(f"file://{manifest}", {})
    assert [o.key for o in source.list_objects()] == ["part-1", "sub/x"]
    with source.open_object("sub/x") as handle:
        assert handle.read() == b"d"


@pytest.mark.parametrize("document", ["{not json", "[]", '["no prefix"]', '[{"prefix": 1}]',
                                      '[{"prefix": "file:///x"}, 3]'])
def test_bad_manifests_are_named(tmp_path: Path, document: str) -> None:
    manifest = tmp_path / "bad.manifest"
    manifest.write_text(document)
    with pytest.raises(ValidationException, match="bad.manifest"):
        manifest_entries(f"file://{manifest}", {})


def test_upload_file_is_atomic_and_creates_folders(tmp_path: Path) -> None:
    source = tmp_path / "model.tar.gz"
    source.write_bytes(b"tar")
    target = tmp_path / "out" / "job" / "output" / "model.tar.gz"
    upload_file(source, f"file://{target}", {})
    assert target.read_bytes() == b"tar"
    assert read_bytes(f"file://{target}", {}) == b"tar"
    assert [p.name for p in target.parent.iterdir()] == ["model.tar.gz"]


def test_local_file_source_is_the_listing_for_directories(tree: Path) -> None:
    assert isinstance(open_prefix(f"file://{tree}", {}), LocalFileSource)
