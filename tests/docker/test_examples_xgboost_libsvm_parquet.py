"""Docker tier: examples/xgboost-libsvm-parquet, run with its one command on the Docker backend.

Checks: FinalMetricDataList holds the four train/validation metrics and the job's metric series
has one point per boosting round for each; the plot is a real PNG; the image's default XGBoost
handlers answer LibSVM and CSV requests exactly as the trained booster does on the host, for rows
rebuilt here from the Parquet validation file; pyarrow is in the example image; nothing is left.
"""

from __future__ import annotations

import json
import struct
import sys
import tarfile
from pathlib import Path

import docker
import numpy as np
import pyarrow.parquet
import pytest
import xgboost

from tests.docker import harness
from tests.docker.test_examples import EXAMPLES, no_containers_left, run, summary_of
from tests.docker.test_examples_sklearn_to_onnx import leftover_processes

pytestmark = pytest.mark.docker

NAME = "xgboost-libsvm-parquet"
IMAGE = "optml-examples/xgboost-libsvm-parquet:latest"
METRICS = {"train:logloss", "train:auc", "validation:logloss", "validation:auc"}
ROUNDS = 30
INVOKE_ROWS = 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails unless the file starts like a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", head
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_xgboost_libsvm_parquet(images: dict[str, str], docker_client: docker.DockerClient,
                                tmp_path: Path) -> None:
    out = run([sys.executable, str(EXAMPLES / NAME / "run.py"), "--backend", "docker",
               "--output", str(tmp_path)], tmp_path)
    root, summary = summary_of(tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "docker", out

    assert set(summary["metrics"]) == METRICS
    assert summary["metrics"]["validation:auc"] >= 0.75
    series = [json.loads(line) for line in
              (root / "state" / "training-jobs" / NAME / "metrics.jsonl").read_text().splitlines()]
    for metric in METRICS:
        values = [p["Value"] for p in series if p["MetricName"] == metric]
        assert len(values) == ROUNDS, metric
        assert values[-1] == summary["metrics"][metric]
    assert summary["metric_points"] == ROUNDS * len(METRICS)
    width, height = png_size(Path(summary["plot"]))
    assert width > 100 and height > 100

    with tarfile.open(root / "artifacts" / NAME / "output" / "model.tar.gz") as tar:
        assert tar.getnames() == ["model.json"]
        tar.extract("model.json", tmp_path / "host", filter="data")
    booster = xgboost.Booster()
    booster.load_model(str(tmp_path / "host" / "model.json"))
    table = pyarrow.parquet.read_table(root / "data" / "validation" / "validation.parquet")
    rows = np.column_stack([table.column(f"f{i}").to_numpy() for i in range(40)])[:INVOKE_ROWS]
    expected = booster.predict(xgboost.DMatrix(rows))  # NaN = missing, as in training
    for content_type in ("text/libsvm", "text/csv"):
        np.testing.assert_allclose(summary["invoke"][content_type], expected, rtol=0, atol=1e-6)

    docker_client.containers.run(IMAGE, ["python", "-c", "import pyarrow.parquet"],
                                 remove=True,
                                 labels={**harness.LABELS, "org.optml.example": NAME})
    no_containers_left(docker_client, f"optml.job={NAME}", f"optml.endpoint={NAME}",
                       f"org.optml.example={NAME}")
    assert leftover_processes(str(tmp_path)) == []
