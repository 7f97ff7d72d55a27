"""The batching benchmark's models: the batched variants answer exactly what the unbatched ones
do, and the batch counts the benchmark reports are the batches that ran.

The hooks are appended to ``inference.py`` as source text, so only running them shows they work.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for bench.serving

from bench.serving.fixtures import (
    BATCH_STATS_ENV,
    MlpShape,
    mlp_payload,
    read_batch_stats,
    write_heavy_model,
    write_trivial_model,
)


def _load(model_dir: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, model_dir / "code" / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_trivial_batched_echoes_each_input_and_counts_batches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stats = tmp_path / "stats" / "batch-stats"
    stats.parent.mkdir()
    monkeypatch.setenv(BATCH_STATS_ENV, str(stats))
    inference = _load(write_trivial_model(tmp_path / "t", batched=True), "bench_trivial")
    model = inference.model_fn("unused")
    inputs = [inference.input_fn(json.dumps({"instances": [[i]]}), "application/json")
              for i in range(3)]
    assert inference.batch_predict_fn(inputs, model) == inputs
    assert read_batch_stats(stats) is None  # written every 64 batches, to stay cheap
    for _ in range(63):
        inference.batch_predict_fn(inputs[:1], model)
    assert read_batch_stats(stats) == (64, 3 + 63, 3)
    assert not hasattr(_load(write_trivial_model(tmp_path / "u", batched=False), "bench_u"),
                       "batch_predict_fn")


def test_heavy_batched_matches_row_by_row(tmp_path: Path) -> None:
    shape = MlpShape(inputs=4, hidden=8, hidden_layers=1, outputs=2)
    inference = _load(write_heavy_model(tmp_path / "h", batched=True, shape=shape), "bench_heavy")
    model = inference.model_fn(str(tmp_path / "h" / "model"))
    rows = [inference.input_fn(mlp_payload(shape, seed=seed).body, "application/json")
            for seed in range(5)]
    batched = inference.batch_predict_fn(rows, model)
    assert len(batched) == 5
    for row, output in zip(rows, batched):
        assert output.shape == (1, shape.outputs)
        assert output.ravel().tolist() == pytest.approx(
            inference.predict_fn(row, model).ravel().tolist(), rel=1e-5, abs=1e-6)


def test_batch_stats_are_summed_over_workers_and_unreadable_files_skipped(tmp_path: Path) -> None:
    prefix = tmp_path / "batch-stats"
    assert read_batch_stats(prefix) is None
    (tmp_path / "batch-stats.101").write_text("10 40 8\n")
    (tmp_path / "batch-stats.102").write_text("5 7 3\n")
    (tmp_path / "batch-stats.103").write_text("")  # a worker caught rewriting its file
    assert read_batch_stats(prefix) == (15, 47, 8)
