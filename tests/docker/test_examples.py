"""Docker tier: the main demo and every finished example, run with one command each as a user
would, on the Docker backend, checking their predictions and artifacts (not only exit 0).

The ``images`` fixture builds optml's images once per session (cached layers); each example
builds its own small image FROM them. Every example deletes its endpoint and containers; the
test checks that nothing labelled by a job of its run directory is left.
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
EXAMPLES = REPO / "examples"
RUN_LIMIT_SECONDS = 900
"""A liveness bound (a hung example fails instead of hanging CI), not a speed assertion."""

pytestmark = pytest.mark.docker

NO_OPTML = ("! command -v optml && python3 -c 'import importlib.util, sys; "
            "sys.exit(importlib.util.find_spec(\"toolkit\") is not None)'")


def run(command: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "OPTML_", "SM_"))}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=RUN_LIMIT_SECONDS, check=False)
    assert result.returncode == 0, f"{command} exited {result.returncode}\n{result.stdout}\n" \
                                   f"{result.stderr[-4000:]}"
    return result.stdout


def summary_of(output: Path) -> tuple[Path, dict[str, Any]]:
    (root,) = [p for p in output.rglob("run-*") if p.is_dir() and p.parent != p]
    return root, json.loads((root / "summary.json").read_text())


def no_containers_left(client: docker.DockerClient, *selectors: str) -> None:
    for selector in selectors:
        assert client.containers.list(all=True, filters={"label": selector}) == [], selector


def test_main_demo_trains_on_docker(images: dict[str, str], docker_client: docker.DockerClient,
                                    tmp_path: Path) -> None:
    out = run([str(REPO / "scripts" / "demo"), "--backend", "docker", "--output", str(tmp_path)],
              tmp_path)
    _, summary = summary_of(tmp_path)
    assert summary["backends"]["training"] == summary["backends"]["serving"] == "docker"
    assert "training on docker" in out
    assert summary["training_status"] == "Completed"
    assert summary["metrics"]["validation:mse"] < 0.01
    assert all(abs(p["prediction"] - p["true"]) < 0.05 for p in summary["predictions"])
    assert summary["transform_rows"] == 120 and summary["transform_max_error"] < 0.05
    assert summary["processes_left"] == []
    no_containers_left(docker_client, "optml.job=quickstart", "optml.endpoint=quickstart",
                       "optml.transform=quickstart")


def test_sklearn_decision_tree(images: dict[str, str], docker_client: docker.DockerClient,
                               tmp_path: Path) -> None:
    run([sys.executable, str(EXAMPLES / "sklearn-decision-tree" / "run.py"), "--backend",
         "docker", "--output", str(tmp_path)], tmp_path)
    root, summary = summary_of(tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "docker"
    assert summary["metrics"]["validation:accuracy"] >= 0.9
    assert summary["invoke_csv"] == summary["invoke_true"] == \
        ["setosa", "versicolor", "virginica"]
    assert [p["label"] for p in summary["invoke_json"]] == summary["invoke_true"]
    assert all(abs(sum(p["probabilities"]) - 1) < 1e-3 for p in summary["invoke_json"])
    assert summary["transform_rows"] == 30 and summary["transform_correct"] >= 27
    outputs = sorted(p.name for p in (root / "transform").iterdir())
    assert outputs == ["flowers-0.csv.out", "flowers-1.csv.out"]
    first_in = (root / "data" / "batch" / "flowers-0.csv").read_text().splitlines()[0]
    first_out = (root / "transform" / "flowers-0.csv.out").read_text().splitlines()[0]
    assert first_out.startswith(first_in + ",")  # JoinSource=Input
    model_tar = root / "artifacts" / "sklearn-decision-tree" / "output" / "model.tar.gz"
    with tarfile.open(model_tar) as tar:
        assert {"model.joblib", "classes.json", "code/inference.py"} <= set(tar.getnames())
    # the image's own code, where a user's image keeps it; the job spec names no directory
    job_log = root / "state" / "training-jobs" / "sklearn-decision-tree" / "logs" / "all.log"
    assert "'/opt/ml/code/train.py'" in job_log.read_text()
    no_containers_left(docker_client, "optml.job=sklearn-decision-tree",
                       "optml.endpoint=sklearn-decision-tree",
                       "optml.transform=sklearn-decision-tree")


def test_custom_image_without_optml(images: dict[str, str], docker_client: docker.DockerClient,
                                    tmp_path: Path) -> None:
    out = run([sys.executable, str(EXAMPLES / "custom-image" / "run.py"), "--output",
               str(tmp_path)], tmp_path)
    _, summary = summary_of(tmp_path)
    assert summary["model"] == {"slope": 2.5, "intercept": -1.0}
    assert summary["metrics"] == 0.0
    assert summary["csv"] == [1.5, 4.0] and summary["json"] == [24.0, -11.0]
    assert "Completed on docker" in out and summary["serving"] == "docker"
    # no optml in the image at all: neither the command nor the Python package
    docker_client.containers.run(  # raises ContainerError on a non-zero exit
        "optml-examples/custom-image:latest",
        ["sh", "-c", NO_OPTML],
        remove=True, labels={"org.optml.example": "custom-image"})
    no_containers_left(docker_client, "org.optml.example=custom-image",
                       "optml.job=custom-image", "optml.endpoint=custom-image")
