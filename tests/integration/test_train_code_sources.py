"""``train`` fetching code from a submit directory: a local tarball, S3 (a real local
S3-compatible server), unsafe archives, and a requirements.txt that cannot be installed."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

from tests.integration.trainjob import TrainJob

pytest_plugins = ["tests.fixtures.s3_server"]

SCRIPT = "import sys\nprint('from', __file__.rsplit('/', 2)[-2], sys.argv[1:])\n"


def _tarball(files: dict[str, str], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return buffer.getvalue()


def test_submit_directory_tarball_from_s3(tmp_path: Path, s3_client: Any, s3_bucket: str,
                                          s3_environ: dict[str, str]) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="jobs/j1/source/sourcedir.tar.gz",
                         Body=_tarball({"entry.py": SCRIPT}))
    job = TrainJob.create(tmp_path, hyperparameters={
        "sagemaker_program": '"entry.py"',
        "sagemaker_submit_directory": f'"s3://{s3_bucket}/jobs/j1/source/sourcedir.tar.gz"',
        "epochs": "3"})
    result = job.run(**s3_environ)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from code ['--epochs', '3']\n"
    assert (job.layout.code_dir / "entry.py").read_text() == SCRIPT


def test_missing_s3_object_fails_with_the_uri(tmp_path: Path, s3_bucket: str,
                                              s3_environ: dict[str, str]) -> None:
    uri = f"s3://{s3_bucket}/nope/sourcedir.tar.gz"
    job = TrainJob.create(tmp_path, hyperparameters={"sagemaker_program": '"entry.py"'})
    result = job.run(SAGEMAKER_SUBMIT_DIRECTORY=uri, **s3_environ)
    assert result.returncode == 1
    assert uri in job.failure.splitlines()[0]


def test_local_tarball_submit_directory(tmp_path: Path) -> None:
    archive = tmp_path / "src.tar.gz"
    archive.write_bytes(_tarball({"entry.py": SCRIPT}))
    job = TrainJob.create(tmp_path / "ml")
    result = job.run(SAGEMAKER_PROGRAM="entry.py", SAGEMAKER_SUBMIT_DIRECTORY=str(archive))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from code []\n"


def test_tar_slip_is_refused_before_anything_runs(tmp_path: Path) -> None:
    escape = tarfile.TarInfo("../escaped.py")
    escape.size = 0
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(_tarball({"entry.py": "raise SystemExit('must not run')"}, [escape]))
    job = TrainJob.create(tmp_path / "ml")
    result = job.run(SAGEMAKER_PROGRAM="entry.py", SAGEMAKER_SUBMIT_DIRECTORY=str(archive))
    assert result.returncode == 1
    assert "../escaped.py" in job.failure.splitlines()[0]
    assert not (tmp_path / "ml" / "escaped.py").exists()
    assert list(job.layout.code_dir.iterdir()) == []


def test_failed_requirement_is_named_in_the_failure_file(tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    job = TrainJob.create(tmp_path / "ml", code={
        "train.py": "raise SystemExit('must not run')\n",
        "requirements.txt": "optml-no-such-package==9.9\n"})
    result = job.run(SAGEMAKER_PROGRAM="train.py", PIP_NO_INDEX="1",
                     PIP_FIND_LINKS=str(wheelhouse))
    assert result.returncode == 1
    first = job.failure.splitlines()[0]
    assert "optml-no-such-package==9.9" in first
    assert "must not run" not in result.stderr
