"""The model trees: the no-op handlers and the ONNX MLP, run for real."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from bench.serving.fixtures import (
    NOOP_PAYLOAD,
    MlpShape,
    mlp_payload,
    write_noop_model,
    write_onnx_model,
)

SMALL = MlpShape(inputs=8, hidden=16, hidden_layers=1, outputs=3)


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"inference_{id(path)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_noop_model_echoes_the_payload(tmp_path: Path) -> None:
    model_dir = write_noop_model(tmp_path)
    handlers = _load(model_dir / "code" / "inference.py")
    model = handlers.model_fn(str(model_dir))
    body, content_type = handlers.output_fn(
        handlers.predict_fn(handlers.input_fn(NOOP_PAYLOAD.body, "application/json"), model),
        "application/json")
    assert json.loads(body) == json.loads(NOOP_PAYLOAD.body)
    assert content_type == "application/json"


def test_onnx_unbatched_tree_has_no_batch_hook_and_predicts(tmp_path: Path) -> None:
    model_dir = write_onnx_model(tmp_path, batched=False, shape=SMALL)
    handlers = _load(model_dir / "code" / "inference.py")
    assert not hasattr(handlers, "batch_predict_fn")
    session = handlers.model_fn(str(model_dir))
    rows = handlers.input_fn(mlp_payload(SMALL).body, "application/json")
    assert handlers.predict_fn(rows, session).shape == (1, 3)


def test_onnx_batch_hook_matches_one_by_one_predictions(tmp_path: Path) -> None:
    model_dir = write_onnx_model(tmp_path, batched=True, shape=SMALL)
    handlers = _load(model_dir / "code" / "inference.py")
    session = handlers.model_fn(str(model_dir))
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal((n, 8)).astype(np.float32) for n in (1, 3, 1, 2)]
    batched = handlers.batch_predict_fn(inputs, session)
    assert len(batched) == len(inputs)
    for rows, out in zip(inputs, batched):
        np.testing.assert_allclose(out, handlers.predict_fn(rows, session), rtol=1e-5, atol=1e-5)


def test_the_mlp_is_the_same_every_run(tmp_path: Path) -> None:
    first = write_onnx_model(tmp_path / "a", batched=False, shape=SMALL) / "mlp.onnx"
    second = write_onnx_model(tmp_path / "b", batched=False, shape=SMALL) / "mlp.onnx"
    assert first.read_bytes() == second.read_bytes()


def test_batch_hook_logs_batch_sizes_when_asked(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "batches.log"
    monkeypatch.setenv("BENCH_BATCH_LOG", str(log))
    model_dir = write_onnx_model(tmp_path / "tree", batched=True, shape=SMALL)
    handlers = _load(model_dir / "code" / "inference.py")
    session = handlers.model_fn(str(model_dir))
    handlers.batch_predict_fn([np.zeros((1, 8), np.float32)] * 3, session)
    handlers.batch_predict_fn([np.zeros((1, 8), np.float32)], session)
    assert log.read_text().split() == ["3", "1"]
