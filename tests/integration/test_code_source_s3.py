"""fetch_code against a real S3 HTTP API (moto's server on 127.0.0.1)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.tarballs import directory, file, symlink, write_tar
from toolkit.training.code_source import (
    CodeDirNotEmptyError,
    CodeSourceError,
    UnsafeArchiveError,
    fetch_code,
)

pytest_plugins = ["tests.fixtures.s3_server"]


def _upload(s3_client: Any, bucket: str, key: str, path: Path) -> str:
    s3_client.upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


def test_fetches_and_extracts_a_tarball_keeping_modes(
        tmp_path: Path, s3_client: Any, s3_bucket: str, s3_environ: dict[str, str]) -> None:
    archive = write_tar(tmp_path / "sourcedir.tar.gz", [
        directory("./"),
        file("./train.py", "print('training')\n"),
        file("./run.sh", "#!/bin/sh\nexec python train.py \"$@\"\n", 0o755),
        file("./pkg/__init__.py", ""),
    ])
    uri = _upload(s3_client, s3_bucket, "jobs/job-1/source/sourcedir.tar.gz", archive)
    code_dir = tmp_path / "opt/ml/code"
    code_dir.mkdir(parents=True)
    temp_before = set(os.listdir(tempfile.gettempdir()))

    assert fetch_code(uri, code_dir, environ=s3_environ) == code_dir

    assert (code_dir / "train.py").read_text() == "print('training')\n"
    assert stat.S_IMODE((code_dir / "run.sh").stat().st_mode) == 0o755
    assert (code_dir / "pkg/__init__.py").exists()
    leftovers = set(os.listdir(tempfile.gettempdir())) - temp_before
    assert not [name for name in leftovers if name.startswith("optml-code-")]


def test_generic_endpoint_variable_is_used_too(
        tmp_path: Path, s3_client: Any, s3_bucket: str, s3_environ: dict[str, str]) -> None:
    archive = write_tar(tmp_path / "code.tar.gz", [file("train.py", "x")])
    uri = _upload(s3_client, s3_bucket, "code.tar.gz", archive)
    environ = dict(s3_environ)
    environ["AWS_ENDPOINT_URL"] = environ.pop("AWS_ENDPOINT_URL_S3")
    environ["AWS_DEFAULT_REGION"] = environ.pop("AWS_REGION")
    fetch_code(uri, tmp_path / "code", environ=environ)
    assert (tmp_path / "code/train.py").read_text() == "x"


@pytest.mark.parametrize("key", ["missing/sourcedir.tar.gz", "sourcedir.tar.gz?versionId=x#y"])
def test_missing_key_is_named(tmp_path: Path, s3_bucket: str, s3_environ: dict[str, str],
                              key: str) -> None:
    uri = f"s3://{s3_bucket}/{key}"
    with pytest.raises(CodeSourceError, match="no such S3 object") as info:
        fetch_code(uri, tmp_path / "code", environ=s3_environ)
    assert uri in str(info.value)
    assert not (tmp_path / "code").exists()


def test_missing_bucket_is_named(tmp_path: Path, s3_environ: dict[str, str]) -> None:
    uri = "s3://optml-no-such-bucket-4c1e/sourcedir.tar.gz"
    with pytest.raises(CodeSourceError, match="no such S3 object") as info:
        fetch_code(uri, tmp_path / "code", environ=s3_environ)
    assert uri in str(info.value)


def test_unsafe_tarball_from_s3_leaves_code_dir_empty(
        tmp_path: Path, s3_client: Any, s3_bucket: str, s3_environ: dict[str, str]) -> None:
    archive = write_tar(tmp_path / "evil.tar.gz", [file("train.py", "ok"),
                                                   symlink("escape", "../../etc")])
    uri = _upload(s3_client, s3_bucket, "evil.tar.gz", archive)
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    with pytest.raises(UnsafeArchiveError, match="escape"):
        fetch_code(uri, code_dir, environ=s3_environ)
    assert list(code_dir.iterdir()) == []


def test_corrupt_object_names_the_uri(tmp_path: Path, s3_client: Any, s3_bucket: str,
                                      s3_environ: dict[str, str]) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="code.tar.gz", Body=b"<html>not a tarball</html>")
    uri = f"s3://{s3_bucket}/code.tar.gz"
    with pytest.raises(CodeSourceError, match="not a readable tar archive") as info:
        fetch_code(uri, tmp_path / "code", environ=s3_environ)
    assert uri in str(info.value)


def test_non_empty_code_dir_is_refused_before_downloading(
        tmp_path: Path, s3_bucket: str, s3_environ: dict[str, str]) -> None:
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "train.py").write_text("from the image")
    # The key does not exist: the directory check must come first.
    with pytest.raises(CodeDirNotEmptyError):
        fetch_code(f"s3://{s3_bucket}/missing.tar.gz", code_dir, environ=s3_environ)
    assert (code_dir / "train.py").read_text() == "from the image"
