"""local_mode.cluster.tree: where an object lands below a directory, and with which modes."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_mode.cluster.tree import WRITABLE_DIR_MODE, make_dir, place


def test_place_makes_the_directories_between_with_the_mode_whatever_the_umask(
        tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        make_dir(tmp_path / "top", WRITABLE_DIR_MODE)
        target = place(tmp_path / "top", "a/b/c.bin", WRITABLE_DIR_MODE)
    finally:
        os.umask(old)
    assert target == (tmp_path / "top" / "a" / "b" / "c.bin").resolve()
    for directory in (tmp_path / "top", tmp_path / "top" / "a", tmp_path / "top" / "a" / "b"):
        assert stat.S_IMODE(directory.stat().st_mode) == WRITABLE_DIR_MODE
    assert not target.exists()  # the caller writes the file


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "a/../.."])
def test_a_key_that_escapes_is_refused(tmp_path: Path, key: str) -> None:
    (tmp_path / "top").mkdir()
    with pytest.raises(ValueError, match="escapes"):
        place(tmp_path / "top", key, WRITABLE_DIR_MODE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["top"]


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "c.d"]), min_size=1, max_size=6))
def test_whatever_the_key_nothing_is_made_outside(parts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        top = Path(scratch) / "top"
        top.mkdir()
        try:
            target = place(top, "/".join(parts), WRITABLE_DIR_MODE)
        except ValueError:
            target = None
        assert sorted(p.name for p in Path(scratch).iterdir()) == ["top"]
        if target is not None:
            assert top.resolve() in target.parents
