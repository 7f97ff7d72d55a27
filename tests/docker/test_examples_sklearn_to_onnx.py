"""Docker tier: examples/sklearn-to-onnx, run with its one command on the Docker backend.

Checks the artifacts, not only exit 0: model.tar.gz holds model.onnx alone; every concurrent
endpoint answer and every batch-transform row equals the scikit-learn pipeline's prediction on
the host (the fitted pipeline comes back in output.tar.gz); the micro-batcher served every
answer; the malformed request failed alone with 400; the serving image cannot import
scikit-learn while the training image has skl2onnx; nothing is left running.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path
from typing import Any

import docker
import joblib
import numpy as np
import pytest

from tests.docker import harness
from tests.docker.test_examples import EXAMPLES, no_containers_left, run, summary_of

pytestmark = pytest.mark.docker

NAME = "sklearn-to-onnx"
TRAIN_IMAGE = "optml-examples/sklearn-to-onnx-train:latest"
SERVE_IMAGE = "optml-examples/sklearn-to-onnx-serve:latest"
REQUESTS = 48
BATCH_MAX_SIZE = 16
PROBABILITY_TOLERANCE = 1e-5
"""ONNX computes in float32, scikit-learn in float64: answers agree to ~1e-7 (measured)."""


def python_in(client: docker.DockerClient, image: str, code: str) -> None:
    """Run ``python -c code`` in ``image``; raises ContainerError on a non-zero exit."""
    client.containers.run(image, ["python", "-c", code], remove=True,
                          labels={**harness.LABELS, "org.optml.example": NAME})


def leftover_processes(marker: str) -> list[str]:
    """Command lines of live processes that mention ``marker`` (the run directory)."""
    left = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited meanwhile
        if marker in text:
            left.append(text)
    return left


def csv_rows(lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    rows = [line.split(",") for line in lines]
    return (np.array([int(r[0]) for r in rows]),
            np.array([[float(v) for v in r[1:]] for r in rows]))


def assert_matches(pipeline: Any, features: np.ndarray, labels: Any,
                   probabilities: Any) -> None:
    expected = pipeline.predict_proba(features)
    np.testing.assert_array_equal(np.asarray(labels),
                                  pipeline.classes_[expected.argmax(axis=1)])
    np.testing.assert_allclose(np.asarray(probabilities), expected, rtol=0,
                               atol=PROBABILITY_TOLERANCE)


def test_sklearn_to_onnx(images: dict[str, str], docker_client: docker.DockerClient,
                         tmp_path: Path) -> None:
    out = run([sys.executable, str(EXAMPLES / NAME / "run.py"), "--backend", "docker",
               "--output", str(tmp_path)], tmp_path)
    root, summary = summary_of(tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "docker", out
    assert summary["extra_wheels"] >= 2  # skl2onnx and onnx at least
    assert summary["metrics"]["validation:accuracy"] >= 0.85

    artifacts = root / "artifacts" / NAME / "output"
    with tarfile.open(artifacts / "model.tar.gz") as tar:
        assert tar.getnames() == ["model.onnx"]  # nothing scikit-learn in the served model
    with tarfile.open(artifacts / "output.tar.gz") as tar:
        tar.extract("sklearn-pipeline.joblib", tmp_path / "host", filter="data")
    pipeline = joblib.load(tmp_path / "host" / "sklearn-pipeline.joblib")
    features = np.loadtxt(root / "data" / "validation" / "validation.csv", delimiter=",")[:, 1:]

    answers = summary["answers"]
    good = [a for a in answers if "error" not in a]
    bad = [a for a in answers if "error" in a]
    assert len(good) == REQUESTS
    assert [a["status"] for a in bad] == [400]
    for answer in good:
        assert_matches(pipeline, features[answer["rows"]], answer["labels"],
                       answer["probabilities"])
        assert 1 <= answer["batch_size"] <= BATCH_MAX_SIZE  # served by batch_predict_fn

    outputs = sorted(p.name for p in (root / "transform").iterdir())
    assert outputs == ["wines-0.csv.out", "wines-1.csv.out"]
    for name in ("wines-0.csv", "wines-1.csv"):
        batch_in = np.loadtxt(root / "data" / "batch" / name, delimiter=",", ndmin=2)
        lines = (root / "transform" / f"{name}.out").read_text().splitlines()
        assert len(lines) == len(batch_in)
        labels, probabilities = csv_rows(lines)
        assert_matches(pipeline, batch_in, labels, probabilities)

    # the serving image runs without scikit-learn; the training image has the exporter
    python_in(docker_client, SERVE_IMAGE,
              "import importlib.util, sys; sys.exit(importlib.util.find_spec('sklearn') "
              "is not None or importlib.util.find_spec('onnxruntime') is None)")
    python_in(docker_client, TRAIN_IMAGE,
              "import os, skl2onnx, onnx; assert not os.path.exists('/tmp/wheels')")
    no_containers_left(docker_client, f"optml.job={NAME}", f"optml.endpoint={NAME}",
                       f"optml.transform={NAME}", f"org.optml.example={NAME}")
    assert leftover_processes(str(tmp_path)) == []
