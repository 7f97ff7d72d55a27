"""The state directory is private: a stored request's Environment may carry secrets.

Every directory the store creates is 0700 and every file it writes 0600 whatever the umask; an
existing state directory (one holding a kind directory) is tightened (root and kind directories)
when a store opens it, and any other existing directory keeps its mode: ``--state-dir`` may name
any directory, and read-only commands and shell completion open it too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import local_mode
from local_mode.cluster.supervisor import PLATFORM, JobLog
from local_mode.errors import ResourceNotFound
from local_mode.state import KINDS, StateStore, append_private, write_json_atomic


@pytest.fixture(params=[0o022, 0o000, 0o002], ids=["umask-022", "umask-000", "umask-002"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process umask set explicitly (a developer's usual 022, and looser ones), restored."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _modes(root: Path) -> dict[str, int]:
    """Every path under ``root`` (and root itself) with its permission bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(directory, name)
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_a_job_created_through_the_store_is_private(tmp_path: Path, umask: int) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home").chmod(0o755)
    root = tmp_path / "home" / ".optml" / "local"  # missing parents, as on a new machine
    store = StateStore(root)
    secret = {"Environment": {"API_TOKEN": "s3cr3t"}}
    job = store.create("training-jobs", "job-1", {"TrainingJobStatus": "InProgress"}, secret)
    job.update(lambda description: description.update(TrainingJobStatus="Completed"))
    log = JobLog(job.logs_dir)
    log.line("algo-1", b"token is s3cr3t")
    log.line(PLATFORM, b"Completed")
    write_json_atomic(job.path / "nested" / "progress.json", {"done": 1})
    store.create("endpoints", "ep", {}, {})

    modes = _modes(root)
    must_have = {"training-jobs/job-1/request.json", "training-jobs/job-1/description.json",
                 "training-jobs/job-1/.lock", "training-jobs/job-1/logs/all.log",
                 "training-jobs/job-1/logs/algo-1.log",
                 "training-jobs/job-1/nested/progress.json",
                 "endpoints/ep/request.json", "endpoints/ep/description.json",
                 ".", "training-jobs", "training-jobs/job-1", "training-jobs/job-1/logs",
                 "training-jobs/job-1/nested", "endpoints", "endpoints/ep"}
    assert must_have <= set(modes)
    # everything there, including what the log writer keeps beside a log: dirs 0700, files 0600
    wanted = {path: "0o700" if (root / path).is_dir() else "0o600" for path in modes}
    assert {path: oct(mode) for path, mode in modes.items()} == wanted
    assert not [path for path in modes if ".json." in path]  # no temporary file left behind
    # the parents it had to create are private too; the ones that existed are left alone
    assert stat.S_IMODE((tmp_path / "home" / ".optml").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o755
    assert job.request() == secret


def test_opening_a_loose_state_directory_tightens_its_root_and_kind_dirs(
        tmp_path: Path, umask: int) -> None:
    root = tmp_path / "state"
    (root / "training-jobs" / "old-job").mkdir(parents=True)
    (root / "endpoints").mkdir()
    for path in (root, root / "training-jobs", root / "training-jobs" / "old-job",
                 root / "endpoints"):
        path.chmod(0o755)

    StateStore(root)

    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "training-jobs").stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "endpoints").stat().st_mode) == 0o700
    # below a kind directory nothing changes: the 0700 kind directory already closes it
    assert stat.S_IMODE((root / "training-jobs" / "old-job").stat().st_mode) == 0o755


def _unrelated_directory(tmp_path: Path) -> Path:
    """A project directory someone points ``--state-dir`` at by mistake: 0755, with a
    subdirectory and a file (one named like a kind: a file is no kind directory)."""
    root = tmp_path / "x" / "proj"
    (root / "src").mkdir(parents=True)
    (root / "README").write_text("mine\n")
    (root / "models").write_text("not a directory\n")
    for path in (root, root / "src"):
        path.chmod(0o755)
    return root


def test_reading_an_unrelated_directory_leaves_its_mode_alone(tmp_path: Path) -> None:
    root = _unrelated_directory(tmp_path)
    before = _modes(root)

    store = StateStore(root)
    assert store.list("training-jobs") == []
    assert store.descriptions("endpoints") == []
    with pytest.raises(ResourceNotFound):
        store.get("training-jobs", "fast")
    sagemaker = local_mode.client("sagemaker", state_dir=root, region_name="us-east-1")
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
    assert sagemaker.list_endpoints()["Endpoints"] == []

    assert _modes(root) == before
    assert stat.S_IMODE(root.stat().st_mode) == 0o755


def test_an_unrelated_directory_used_for_a_job_becomes_a_state_directory(
        tmp_path: Path, umask: int) -> None:
    """Creating a resource there makes only what it creates private at once; from then on the
    directory is evidently a state directory, and the next store to open it tightens it."""
    root = _unrelated_directory(tmp_path)
    store = StateStore(root)
    job = store.create("training-jobs", "fast", {"TrainingJobStatus": "InProgress"}, {})

    assert stat.S_IMODE(root.stat().st_mode) == 0o755  # existed: not the store's to change
    assert stat.S_IMODE((root / "training-jobs").stat().st_mode) == 0o700
    assert stat.S_IMODE(job.path.stat().st_mode) == 0o700

    StateStore(root)

    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "src").stat().st_mode) == 0o755  # below the root: untouched


def test_a_kind_directory_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    """The root is tightened (it holds a real kind directory), but a kind entry that is a
    symlink to some other directory does not make that directory 0700."""
    root = tmp_path / "state"
    (root / "endpoints").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for path in (root, root / "endpoints", elsewhere):
        path.chmod(0o755)
    (root / "models").symlink_to(elsewhere)

    StateStore(root)

    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "endpoints").stat().st_mode) == 0o700
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o755


def test_opening_a_store_creates_nothing(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    assert store.list("training-jobs") == []
    assert not (tmp_path / "state").exists()
    assert all(not (tmp_path / "state" / kind).exists() for kind in KINDS)


def test_an_existing_loose_log_file_is_tightened_when_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "all.log"
    path.write_bytes(b"old\n")
    path.chmod(0o644)
    with append_private(path) as handle:
        handle.write(b"new\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"old\nnew\n"
