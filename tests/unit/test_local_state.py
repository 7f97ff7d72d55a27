"""The state directory: atomic descriptions, locked updates, names, datetimes."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from local_mode.errors import ResourceInUse, ResourceNotFound
from local_mode.state import StateStore, now, read_json, write_json_atomic


def test_create_get_list_delete(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    stamp = now()
    resource = store.create("training-jobs", "a", {"Name": "a", "CreationTime": stamp}, {"r": 1})
    assert resource.describe() == {"Name": "a", "CreationTime": stamp}
    assert resource.request() == {"r": 1}
    with pytest.raises(ResourceInUse, match="'a' already exists"):
        store.create("training-jobs", "a", {}, {})
    store.create("training-jobs", "b", {"Name": "b"}, {})
    assert [r.name for r in store.list("training-jobs")] == ["a", "b"]
    store.delete("training-jobs", "a")
    with pytest.raises(ResourceNotFound):
        store.get("training-jobs", "a")
    with pytest.raises(ValueError, match="unknown resource kind"):
        store.list("clusters")


def test_the_root_is_absolute_so_other_working_directories_agree(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert StateStore(Path("relative")).root == tmp_path / "relative"


def test_datetimes_round_trip(tmp_path: Path) -> None:
    value = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    write_json_atomic(tmp_path / "x.json", {"when": value, "list": [value]})
    assert read_json(tmp_path / "x.json") == {"when": value, "list": [value]}
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "y.json", {"bad": object()})
    assert not list(tmp_path.glob(".y.json.*"))  # no temp file left by a failed write


def test_concurrent_updates_lose_nothing(tmp_path: Path) -> None:
    resource = StateStore(tmp_path).create("training-jobs", "j", {"n": 0}, {})

    def bump() -> None:
        for _ in range(25):
            resource.update(lambda d: d.__setitem__("n", d["n"] + 1))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    description = resource.describe()
    assert description["n"] == 100
    assert isinstance(description["LastModifiedTime"], datetime)


def test_runner_pid(tmp_path: Path) -> None:
    resource = StateStore(tmp_path).create("training-jobs", "j", {}, {})
    assert resource.runner_pid() is None
    resource.pid_file.write_text("123\n")
    assert resource.runner_pid() == 123
    resource.pid_file.write_text("garbage")
    assert resource.runner_pid() is None
