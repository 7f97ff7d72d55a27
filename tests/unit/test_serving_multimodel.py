"""The on-disk model registry and a worker's view of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toolkit.serving.errors import BadRequest, Conflict, NotFound
from toolkit.serving.multimodel import Entry, ModelRegistry, WorkerModels, check_model_name


def test_registry_add_remove_and_generation(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path).create()
    assert registry.generation() == 0
    assert registry.add(Entry("a/b", "/m/a", "1")) == 1
    with pytest.raises(Conflict):
        registry.add(Entry("a/b", "/m/a", "2"))
    assert list(registry.entries()) == ["a/b"]
    assert registry.get("a/b") == Entry("a/b", "/m/a", "1")
    assert registry.remove("a/b") == 2
    with pytest.raises(NotFound):
        registry.remove("a/b")
    assert registry.get("a/b") is None and registry.entries() == {}


def test_pending_workers_ignores_dead_and_caught_up(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path).create()
    registry.ack(os.getpid(), 1)
    registry.ack(2**22 + 12345, 0)  # no such process
    assert registry.pending_workers(1) == []
    assert registry.pending_workers(2) == [os.getpid()]
    registry.forget_worker(os.getpid())
    assert registry.pending_workers(2) == []


def test_worker_loads_lazily_and_drops_on_unload(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    registry = ModelRegistry(tmp_path / "run").create()
    loads: list[str] = []

    def loader(name: str, path: Path) -> str:
        loads.append(name)
        return f"model-{name}"

    first, second = WorkerModels(registry, loader), WorkerModels(registry, loader)
    first.load("m", str(tmp_path / "m"))
    assert second.get("m") == "model-m"  # loaded through the other "worker"
    assert second.get("m") == "model-m" and loads == ["m", "m"]
    with pytest.raises(Conflict):
        second.load("m", str(tmp_path / "m"))
    first.unload("m")
    second.sync()
    assert second.local_names() == [] and first.local_names() == []
    with pytest.raises(NotFound):
        second.get("m")


@pytest.mark.parametrize("name", ["", "../x", "a/../b", "-a", "a b", None, 3, "x" * 300])
def test_bad_model_names(name: object) -> None:
    with pytest.raises(BadRequest):
        check_model_name(name)


def test_good_model_names() -> None:
    for name in ["model", "a.tar.gz", "dir/m-1_2", "A=b+c"]:
        assert check_model_name(name) == name
