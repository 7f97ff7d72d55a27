"""Docker tier: examples/pipe-recordio-linear, run with its one command on the Docker backend.

Checks what the example is about, not only exit 0: both hosts streamed their epochs through
FIFOs with inputdataconfig.json saying Pipe/ShardedByS3Key, the shards are disjoint and cover
the data, the averaged weights are close to the generating ones, the three request content types
give the same predictions, and no container is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import docker
import pytest

REPO = Path(__file__).resolve().parents[2]
NAME = "pipe-recordio-linear"
RUN_LIMIT_SECONDS = 600
"""A liveness bound (a hung example fails instead of hanging CI), not a speed assertion."""

pytestmark = pytest.mark.docker


def run_example(output: Path) -> tuple[Path, dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SAGEMAKER_", "OPTML_", "SM_"))}
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / NAME / "run.py"), "--backend", "docker",
         "--output", str(output)],
        cwd=output, env=env, capture_output=True, text=True, timeout=RUN_LIMIT_SECONDS,
        check=False)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n" \
                                   f"{result.stderr[-4000:]}"
    (root,) = [p for p in output.rglob("run-*") if p.is_dir()]
    return root, json.loads((root / "summary.json").read_text()), result.stdout


def test_pipe_recordio_linear_on_two_docker_hosts(images: dict[str, str],
                                                  docker_client: docker.DockerClient,
                                                  tmp_path: Path) -> None:
    root, summary, out = run_example(tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "docker"
    assert summary["status"] == "Completed"
    assert "training: docker" in out

    shards = summary["shards"]
    assert sorted(shards["hosts"]) == ["algo-1", "algo-2"]
    for host, info in shards["hosts"].items():
        assert info["config_input_mode"] == "Pipe", host  # inputdataconfig.json said Pipe
        assert info["input_mode"] == "Pipe", host         # and open_channel read it so
        assert info["config_distribution"] == "ShardedByS3Key", host
        assert info["all_epochs_from_fifo"] is True, host
        assert info["rows_per_epoch"] == [1000] * 4, host  # 4 epochs, half of the objects
        assert info["same_rows_every_epoch"] is True, host
    assert shards["overlap_rows"] == 0
    assert shards["union_rows"] == shards["total_rows"] == 2000

    assert sorted(summary["host_models"]) == ["algo-1", "algo-2"]
    assert all(m["rows"] == 1000 for m in summary["host_models"].values())
    assert summary["max_weight_error"] < 0.02
    for got, want in zip(summary["weights"], summary["true_weights"]):
        assert abs(got - want) < 0.02
    assert abs(summary["bias"] - summary["true_bias"]) < 0.02
    assert summary["metrics"]["train:mse"] < 0.01

    predictions = summary["predictions"]
    assert set(predictions) == {"application/x-recordio-protobuf", "text/csv",
                                "application/json"}
    reference = predictions["application/json"]
    assert predictions["text/csv"] == reference
    assert predictions["application/x-recordio-protobuf"] == reference
    assert summary["recordio_answer"] == pytest.approx(reference, rel=1e-6)
    assert reference == pytest.approx(summary["expected"], abs=0.05)

    model_tar = root / "artifacts" / NAME / "output" / "model.tar.gz"
    with tarfile.open(model_tar) as tar:
        assert {"weights-algo-1.json", "weights-algo-2.json", "code/inference.py"} <= \
            set(tar.getnames())
    for selector in (f"optml.job={NAME}", f"optml.endpoint={NAME}"):
        assert docker_client.containers.list(all=True, filters={"label": selector}) == [], \
            selector
    assert docker_client.networks.list(filters={"label": f"optml.job={NAME}"}) == []
