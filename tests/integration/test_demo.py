"""The main demo (``scripts/demo``) on the process backend: real training job, endpoint with two
``optml serve`` instances, invocations and a batch transform, then nothing left running.

The demo's data comes from a known linear function, so the checks compare its printed and
recorded predictions with the truth, not only its exit status.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "quickstart" / "demo.py"
RUN_LIMIT_SECONDS = 600
"""A liveness bound (a hung demo fails instead of hanging CI), not a speed assertion."""


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("optml_quickstart_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def test_generated_data_follows_the_known_function(tmp_path: Path) -> None:
    demo = load_demo()
    paths = demo.generate_data(tmp_path)
    train = np.loadtxt(paths["train"] / "train.csv", delimiter=",", ndmin=2)
    assert train.shape == (800, 5)
    residual = train[:, 0] - demo.truth(train[:, 1:])
    assert abs(residual.mean()) < 0.02 and residual.std() < 0.1
    batch = sorted(p.name for p in paths["batch"].iterdir())
    assert batch == ["part-0.csv", "part-1.csv", "part-2.csv"]
    assert np.loadtxt(paths["batch"] / "part-0.csv", delimiter=",", ndmin=2).shape == (40, 4)


def test_scripts_demo_on_the_process_backend(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "OPTML_", "SM_"))}
    env["OPTML_VENV"] = str(REPO / ".venv")
    result = subprocess.run([str(REPO / "scripts" / "demo"), "--backend", "process",
                             "--output", str(tmp_path)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=RUN_LIMIT_SECONDS,
                            check=False)
    out = result.stdout
    assert result.returncode == 0, f"{out}\n{result.stderr}"
    assert "training on process, serving on process (process backend requested)" in out
    (root,) = [p for p in tmp_path.iterdir() if p.name.startswith("run-")]
    assert f"everything of this run is under {root}" in out
    summary = json.loads((root / "summary.json").read_text())
    demo = load_demo()

    # training: completed, metrics captured by MetricDefinitions, artifacts with inference code
    assert summary["training_status"] == "Completed"
    assert set(summary["metrics"]) == {"train:mse", "validation:mse"}
    assert 0 < summary["metrics"]["validation:mse"] < 0.01  # noise variance is 0.0025
    assert re.search(r"final validation:mse = 0\.00\d+", out)
    model_tar = root / "artifacts" / "quickstart" / "output" / "model.tar.gz"
    assert summary["model_data"] == model_tar.as_uri()
    with tarfile.open(model_tar) as tar:
        names = set(tar.getnames())
        saved = json.load(tar.extractfile("model.json"))  # type: ignore[arg-type]
    assert {"model.json", "code/inference.py"} <= names and "code/train.py" not in names
    np.testing.assert_allclose(saved["weights"], demo.TRUE_WEIGHTS, atol=0.05)
    assert abs(saved["bias"] - demo.TRUE_BIAS) < 0.05
    with tarfile.open(root / "artifacts" / "quickstart" / "output" / "output.tar.gz") as tar:
        evaluation = json.load(tar.extractfile("evaluation.json"))  # type: ignore[arg-type]
    assert evaluation["epochs"] == 300

    # endpoint: two instances, CSV and JSON predictions close to the truth, and printed
    assert summary["endpoint_instances"] == 2
    kinds = [p["content_type"] for p in summary["predictions"]]
    assert kinds == ["csv", "csv", "csv", "json", "json"]
    for prediction in summary["predictions"]:
        want = float(demo.truth(np.array(prediction["features"])))
        assert abs(prediction["prediction"] - want) < 0.05
        assert f"-> {prediction['prediction']:8.4f}" in out

    # batch transform: every input row joined with its prediction, in input order
    assert summary["transform_status"] == "Completed"
    assert summary["transform_files"] == ["part-0.csv.out", "part-1.csv.out", "part-2.csv.out"]
    for name in ("part-0.csv", "part-1.csv", "part-2.csv"):
        inputs = (root / "data" / "batch" / name).read_text().splitlines()
        outputs = (root / "transform" / f"{name}.out").read_text().splitlines()
        assert len(outputs) == len(inputs) == 40
        for line_in, line_out in zip(inputs, outputs):
            assert line_out.startswith(line_in + ",")
            features = np.array([float(v) for v in line_in.split(",")])
            assert abs(float(line_out.rsplit(",", 1)[1]) - float(demo.truth(features))) < 0.05

    # the same job and endpoint through the wire API, with boto3 itself
    wire = summary["wire_api"]
    assert wire["training_status"] == "Completed" and wire["variant"] == "main"
    assert wire["prediction"] == pytest.approx(summary["predictions"][0]["prediction"], abs=1e-4)
    assert "[api] optml local api on http://127.0.0.1:" in out
    assert summary["transform_rows"] == 120

    # clean-up: endpoint, config and model deleted; no process of the run left
    assert summary["processes_left"] == []
    state = root / "state"
    assert not any((state / "endpoints").glob("*/description.json"))
    assert not any((state / "models").glob("*/description.json"))
    assert demo.leftover_processes(root) == []
