"""Docker tier: examples/distributed-pytorch, run with its one command on the Docker backend.

Checks what the example is about, not only exit 0: the job Completed after a simulated spot
interruption (Interrupted, Restarting in its transitions), the first attempt started at epoch 0
and the second resumed from a checkpoint (epoch > 0) on all 4 ranks (2 hosts x 2 processes),
the 4 ranks ended with identical weights, billable time is at most the training time, the
endpoint (default PyTorch handlers) answers what the TorchScript model computes here, and no
container is left.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import docker
import pytest

REPO = Path(__file__).resolve().parents[2]
NAME = "distributed-pytorch"
RUN_LIMIT_SECONDS = 900
"""A liveness bound (a hung example fails instead of hanging CI), not a speed assertion."""

pytestmark = [pytest.mark.docker, pytest.mark.slow]


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


def test_distributed_pytorch_resumes_after_spot_interruption(
        images: dict[str, str], docker_client: docker.DockerClient, tmp_path: Path) -> None:
    root, summary, out = run_example(tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "docker"
    assert summary["status"] == "Completed"

    transitions = summary["transitions"]
    interrupted = transitions.index("Interrupted")
    assert transitions[interrupted + 1] == "Restarting"
    assert transitions[interrupted - 1] == "Stopping"
    assert transitions.count("Training") == 2 and transitions[-1] == "Completed"

    first, *_, last = summary["attempts"]
    assert len(summary["attempts"]) == 2
    ranks = {0: "algo-1", 1: "algo-1", 2: "algo-2", 3: "algo-2"}
    for attempt in (first, last):
        assert attempt["world_size"] == 4
        assert {int(r): h for r, h in attempt["hosts"].items()} == ranks
    assert set(first["resume_epoch"].values()) == {0}
    resumed = set(last["resume_epoch"].values())
    assert len(resumed) == 1 and resumed.pop() > 0   # every rank resumed at the same epoch
    log = (root / "state" / "training-jobs" / NAME / "logs" / "all.log").read_text()
    assert "resume_epoch=0 " in log and "stop_requested after_epoch=" in log
    assert re.search(r"resume_epoch=[1-9]", log)  # the log itself shows the resumed epoch
    assert "restored" in log  # local mode restored the checkpoints before the second attempt
    assert summary["checkpoints"] == [f"epoch-{e:04d}.pt" for e in range(6)]

    assert summary["billable_seconds"] <= summary["training_seconds"]
    assert summary["metrics"]["train:loss"] < 0.05

    final = summary["ranks"]
    assert sorted(r["rank"] for r in final.values()) == [0, 1, 2, 3]
    assert len({r["weights_sha256"] for r in final.values()}) == 1
    assert {r["host"] for r in final.values()} == {"algo-1", "algo-2"}

    assert summary["served"] == pytest.approx(summary["reference"], rel=1e-5, abs=1e-6)
    with tarfile.open(root / "artifacts" / NAME / "output" / "model.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"model.pt", *(f"ranks/rank-{r}.json" for r in range(4))} <= names
    assert "[train] Completed" in out
    for selector in (f"optml.job={NAME}", f"optml.endpoint={NAME}"):
        assert docker_client.containers.list(all=True, filters={"label": selector}) == [], \
            selector
    assert docker_client.networks.list(filters={"label": f"optml.job={NAME}"}) == []
