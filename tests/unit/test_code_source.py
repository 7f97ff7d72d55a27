"""Unit tests for toolkit.training.code_source: local sources and safe tar extraction."""

from __future__ import annotations

import gzip
import os
import stat
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.tarballs import (
    Member,
    directory,
    file,
    hardlink,
    special,
    symlink,
    write_tar,
)
from toolkit.errors import UserCodeError
from toolkit.training.code_source import (
    CodeDirNotEmptyError,
    CodeSourceError,
    InvalidArchiveError,
    UnsafeArchiveError,
    fetch_code,
    safe_extract,
)

NO_ENV: dict[str, str] = {}


def tree(root: Path) -> dict[str, str]:
    """Everything under ``root`` as relative path -> kind/content, symlinks not followed."""
    result: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                result[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                result[rel] = "dir"
            else:
                result[rel] = path.read_text()
    return result


# -- fetch_code: local sources -------------------------------------------------------------------

def test_local_directory_is_used_in_place(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("print('hi')\n")
    code_dir = tmp_path / "code"
    assert fetch_code(str(src), code_dir, environ=NO_ENV) == src
    assert not code_dir.exists()


def test_local_tarball_is_extracted_into_missing_code_dir(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "sourcedir.tar.gz",
                        [directory("./"), file("./train.py", "print(1)\n"),
                         file("./lib/util.py", "X = 1\n")])
    code_dir = tmp_path / "opt" / "ml" / "code"
    assert fetch_code(str(archive), code_dir, environ=NO_ENV) == code_dir
    assert tree(code_dir) == {"train.py": "print(1)\n", "lib": "dir", "lib/util.py": "X = 1\n"}


@pytest.mark.parametrize("tar_mode,suffix", [("w", ".tar"), ("w:gz", ".tgz"),
                                             ("w:bz2", ".tar.bz2"), ("w:xz", ".data")])
def test_compression_is_detected_from_content(tmp_path: Path, tar_mode: str, suffix: str) -> None:
    archive = write_tar(tmp_path / f"code{suffix}", [file("train.py", "ok")], tar_mode)
    code_dir = tmp_path / "code"
    fetch_code(str(archive), code_dir, environ=NO_ENV)
    assert tree(code_dir) == {"train.py": "ok"}


def test_file_uri_with_percent_encoding(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "my code.tar.gz", [file("train.py", "ok")])
    code_dir = tmp_path / "code"
    code_dir.mkdir()  # empty is fine
    uri = "file://" + str(archive).replace(" ", "%20")
    assert fetch_code(uri, code_dir, environ=NO_ENV) == code_dir
    assert tree(code_dir) == {"train.py": "ok"}
    assert fetch_code("file://localhost" + str(tmp_path), code_dir, environ=NO_ENV) == tmp_path


def test_non_empty_code_dir_is_refused_and_left_alone(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "code.tar.gz", [file("train.py", "new")])
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "train.py").write_text("baked into the image")
    with pytest.raises(CodeDirNotEmptyError) as info:
        fetch_code(str(archive), code_dir, environ=NO_ENV)
    assert isinstance(info.value, UserCodeError)
    assert info.value.code_dir == code_dir
    assert str(code_dir) in str(info.value)
    assert tree(code_dir) == {"train.py": "baked into the image"}


def test_hidden_file_counts_as_not_empty(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "code.tar.gz", [file("train.py", "new")])
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / ".keep").write_text("")
    with pytest.raises(CodeDirNotEmptyError):
        fetch_code(str(archive), code_dir, environ=NO_ENV)


def test_code_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "code.tar.gz", [file("train.py", "new")])
    code_dir = tmp_path / "code"
    code_dir.write_text("not a dir")
    with pytest.raises(CodeSourceError, match="not a directory"):
        fetch_code(str(archive), code_dir, environ=NO_ENV)


@pytest.mark.parametrize("source,match", [
    ("", "no code source"),
    ("https://example.com/code.tar.gz", "unsupported URI scheme 'https'"),
    ("file://otherhost/tmp/code.tar.gz", "remote host"),
    ("s3://bucket-only", "s3://bucket/key"),
    ("s3:///key-only", "s3://bucket/key"),
])
def test_bad_sources_are_named(tmp_path: Path, source: str, match: str) -> None:
    with pytest.raises(CodeSourceError, match=match) as info:
        fetch_code(source, tmp_path / "code", environ=NO_ENV)
    assert not (tmp_path / "code").exists()
    if source:
        assert source in str(info.value)


def test_missing_local_source(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tar.gz"
    with pytest.raises(CodeSourceError, match="no such file or directory") as info:
        fetch_code(str(missing), tmp_path / "code", environ=NO_ENV)
    assert str(missing) in str(info.value)


def test_missing_boto3_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` raise ImportError
    with pytest.raises(CodeSourceError, match=r"optml\[s3\]") as info:
        fetch_code("s3://bucket/code.tar.gz", tmp_path / "code", environ=NO_ENV)
    assert "s3://bucket/code.tar.gz" in str(info.value)


# -- corrupt archives ------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"print('not a tarball')\n", b"PK\x03\x04zipfile" * 50,
                                     gzip.compress(b"gzip but not tar" * 100, mtime=0)])
def test_non_tar_files_are_refused(tmp_path: Path, content: bytes) -> None:
    archive = tmp_path / "code.tar.gz"
    archive.write_bytes(content)
    with pytest.raises(InvalidArchiveError) as info:
        fetch_code(str(archive), tmp_path / "code", environ=NO_ENV)
    assert str(archive) in str(info.value)
    assert not (tmp_path / "code").exists() or not any((tmp_path / "code").iterdir())


def test_truncated_gzip_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    good = write_tar(tmp_path / "good.tar.gz",
                     [file(f"f{i}.py", os.urandom(2000).hex()) for i in range(20)])
    data = good.read_bytes()
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(data[: len(data) // 2])
    dest = tmp_path / "code"
    with pytest.raises(InvalidArchiveError, match="corrupt"):
        safe_extract(archive, dest)
    assert not dest.exists() or list(dest.iterdir()) == []


def test_truncated_plain_tar_data_is_refused_and_cleaned_up(tmp_path: Path) -> None:
    good = write_tar(tmp_path / "good.tar", [file("a.py", "a" * 5000), file("b.py", "b" * 50000)],
                     "w")
    data = good.read_bytes()
    archive = tmp_path / "cut.tar"
    archive.write_bytes(data[:7000 + 512 * 4])  # b.py's header survives, its data does not
    dest = tmp_path / "code"
    with pytest.raises(InvalidArchiveError):
        safe_extract(archive, dest)
    assert not dest.exists() or list(dest.iterdir()) == []


# -- tar-slip and special members ----------------------------------------------------------------

UNSAFE = {
    "absolute path": [file("/tmp/optml-evil", "x")],
    "dot-dot escape": [file("../evil", "x")],
    "dot-dot inside name": [file("a/../../evil", "x")],
    "dot-slash dot-dot": [file("./../evil", "x")],
    "symlink absolute": [symlink("link", "/etc")],
    "symlink escaping": [symlink("link", "../outside")],
    "symlink escaping from subdir": [directory("a"), symlink("a/link", "../../outside")],
    # x/b -> x/a/.. where x/a -> .. : lexically inside, really dest/.. (outside).
    "symlink dot-dot after name": [directory("x"), symlink("x/a", ".."), symlink("x/b", "a/..")],
    "write through symlink": [symlink("d", "sub"), file("d/x", "x")],
    "symlink chain climbing": [symlink("d", "."), symlink("d/e", ".."), file("d/e/evil", "x")],
    "hardlink absolute": [hardlink("link", "/etc/passwd")],
    "hardlink escaping": [hardlink("link", "../outside")],
    "hardlink to missing member": [hardlink("link", "nothere")],
    "hardlink before its target": [hardlink("link", "later"), file("later", "x")],
    "hardlink to symlink": [symlink("s", "a"), file("a", "x"), hardlink("h", "s")],
    "fifo": [special("pipe", tarfile.FIFOTYPE)],
    "char device": [special("null", tarfile.CHRTYPE)],
    "block device": [special("disk", tarfile.BLKTYPE)],
    "non-directory root": [file(".", "x")],
    "empty symlink target": [symlink("link", "")],
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_members_are_refused_before_anything_is_written(tmp_path: Path, case: str) -> None:
    # A harmless member first: validation must happen before it is written.
    archive = write_tar(tmp_path / "evil.tar.gz", [file("first.py", "ok"), *UNSAFE[case]])
    dest = tmp_path / "root" / "code"
    with pytest.raises(UnsafeArchiveError) as info:
        safe_extract(archive, dest)
    assert isinstance(info.value, UserCodeError)
    assert info.value.member in {member.name for member in UNSAFE[case]}
    assert info.value.member in str(info.value)
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz"]


def test_refused_archive_leaves_existing_dest_untouched(tmp_path: Path) -> None:
    dest = tmp_path / "code"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    archive = write_tar(tmp_path / "evil.tar", [file("keep.txt", "theirs"), file("../x", "x")], "w")
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, dest)
    assert tree(dest) == {"keep.txt": "mine"}


def test_symlink_already_in_dest_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "code"
    dest.mkdir()
    (dest / "lib").symlink_to(outside)
    archive = write_tar(tmp_path / "a.tar", [file("lib/evil.py", "x")], "w")
    with pytest.raises(UnsafeArchiveError, match="symlink already in"):
        safe_extract(archive, dest)
    assert list(outside.iterdir()) == []


def test_safe_links_and_modes_are_kept(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "good.tar.gz", [
        directory("bin", 0o755),
        file("bin/run.sh", "#!/bin/sh\necho hi\n", 0o755),
        file("train.py", "print(1)\n", 0o644),
        file("secret.cfg", "s", 0o4777),  # setuid and world-write must not survive
        directory("pkg"),
        file("pkg/data.txt", "data"),
        symlink("pkg/link.txt", "data.txt"),
        symlink("pkg/up.py", "../train.py"),
        symlink("dangling", "pkg/nothing-yet"),
        hardlink("copy.txt", "pkg/data.txt"),
        directory("readonly", 0o555),
        file("readonly/inside.txt", "r"),
    ])
    dest = tmp_path / "code"
    safe_extract(archive, dest)
    assert stat.S_IMODE((dest / "bin/run.sh").stat().st_mode) == 0o755
    assert os.access(dest / "bin/run.sh", os.X_OK)
    assert stat.S_IMODE((dest / "train.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "secret.cfg").stat().st_mode) == 0o755
    assert (dest / "pkg/link.txt").read_text() == "data"
    assert (dest / "pkg/up.py").read_text() == "print(1)\n"
    assert os.readlink(dest / "dangling") == "pkg/nothing-yet"
    assert (dest / "copy.txt").stat().st_ino == (dest / "pkg/data.txt").stat().st_ino
    assert stat.S_IMODE((dest / "readonly").stat().st_mode) == 0o755  # owner write kept
    assert (dest / "readonly/inside.txt").read_text() == "r"
    assert (dest / "train.py").stat().st_mtime == 1_700_000_000


def test_later_member_replaces_earlier_one(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "a.tar", [file("x.py", "old"), symlink("y", "x.py"),
                                             file("x.py", "new"), file("y", "plain")], "w")
    dest = tmp_path / "code"
    safe_extract(archive, dest)
    assert tree(dest) == {"x.py": "new", "y": "plain"}


def test_missing_archive_is_named(tmp_path: Path) -> None:
    with pytest.raises(CodeSourceError, match="no such file"):
        safe_extract(tmp_path / "nope.tar", tmp_path / "code")


def test_write_failure_removes_what_was_written(tmp_path: Path) -> None:
    # "a" is a file, then "a/b" needs it to be a directory: the OS refuses half-way through.
    archive = write_tar(tmp_path / "a.tar", [file("first.py", "1"), file("a", "file"),
                                             file("a/b", "x")], "w")
    dest = tmp_path / "code"
    dest.mkdir()
    (dest / "existing.txt").write_text("keep")
    with pytest.raises(CodeSourceError, match="cannot extract"):
        safe_extract(archive, dest)
    assert tree(dest) == {"existing.txt": "keep"}


# -- property: whatever the archive, nothing lands outside dest ------------------------------

@st.composite
def _archives(draw: st.DrawFn) -> list[Member]:
    """Archives whose members build on each other's names, so that links inside links, files
    written through links and links pointing at links (the dangerous combinations) are common."""
    names = ["a"]
    members: list[Member] = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        parent = draw(st.sampled_from(["", *names]))
        leaf = draw(st.sampled_from(["a", "b", "c"] * 4 + ["..", "."]))
        name = f"{parent}/{leaf}" if parent else leaf
        if draw(st.integers(min_value=0, max_value=19)) == 0:
            name = "/" + name
        target = draw(st.sampled_from([".", "..", "../..", "a/..", "../a", *names, *names])
                      | st.sampled_from(["", "/a", "/etc/passwd"]))
        kind = draw(st.sampled_from(["file", "dir", "symlink", "symlink", "hardlink"]))
        if kind == "file":
            members.append(file(name, "x"))
        elif kind == "dir":
            members.append(directory(name))
        elif kind == "symlink":
            members.append(symlink(name, target))
        else:
            members.append(hardlink(name, target))
        names.append(name.lstrip("/"))
    return members


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_archives())
def test_property_nothing_escapes_dest(members: list[Member]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "outside").mkdir()
        dest = base / "root" / "dest"
        archive = write_tar(base / "a.tar", members, "w")
        try:
            safe_extract(archive, dest)
        except UnsafeArchiveError:
            assert not dest.exists()
        except CodeSourceError:
            assert list(dest.iterdir()) == []
        else:
            real_dest = os.path.realpath(dest)
            for dirpath, dirnames, filenames in os.walk(dest):
                for name in dirnames + filenames:
                    assert _inside(os.path.realpath(Path(dirpath, name)), real_dest)
        assert sorted(p.name for p in base.iterdir()) in (["a.tar", "outside"],
                                                          ["a.tar", "outside", "root"])
        assert list((base / "outside").iterdir()) == []
        if (base / "root").exists():
            assert [p.name for p in (base / "root").iterdir()] == ["dest"]
