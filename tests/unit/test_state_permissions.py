"""The state directory is private: a stored request's Environment may carry secrets.

Every directory the store creates is 0700 and every file it writes 0600 whatever the umask; an
existing state directory is tightened (root and kind directories) when a store opens it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_mode.cluster.supervisor import PLATFORM, JobLog
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
