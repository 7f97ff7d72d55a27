#!/usr/bin/env python3
"""Example: XGBoost on a LibSVM train channel and a Parquet validation channel, metrics plotted.

Generate a sparse binary-classification data set, write the training rows as LibSVM and the
validation rows as Parquet, train in an image FROM optml/xgboost (pyarrow baked in from the
offline wheelhouse), read the train/validation metric series the job's MetricDefinitions
extracted, draw them with `optml local metrics NAME --plot`, deploy the model with the image's
default XGBoost handlers, invoke it with LibSVM and CSV, and compare with the booster on the host.

    python examples/xgboost-libsvm-parquet/run.py [--backend auto|docker|process] [--output DIR]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import xgboost

from toolkit.formats.libsvm import encode_libsvm
from toolkit.formats.parquet import encode_parquet

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402 -- examples/common.py, the examples' shared glue
import wheels  # noqa: E402 -- this example's extra wheels (pyarrow) from the offline wheelhouse

NAME = HERE.name
IMAGE = "optml-examples/xgboost-libsvm-parquet:latest"
FEATURES = 40
INVOKE_ROWS = 20
"""Validation rows sent to the endpoint, once as LibSVM and once as CSV."""


def make_rows(rng: np.random.Generator, count: int) -> tuple[scipy.sparse.csr_matrix,
                                                             np.ndarray]:
    """Sparse rows (about 15% stored values) and 0/1 labels from a noisy linear rule."""
    features = scipy.sparse.random(count, FEATURES, density=0.15, format="csr", rng=rng,
                                   data_rvs=lambda n: np.round(rng.normal(size=n), 3))
    weights = np.linspace(-2, 2, FEATURES)
    score = features @ weights + rng.normal(scale=0.5, size=count)
    return features, (score > 0).astype(np.float32)


def with_missing(features: scipy.sparse.csr_matrix) -> np.ndarray:
    """Dense rows where an absent entry is NaN: what XGBoost calls missing, as LibSVM's absent
    entries are. (A dense 0.0 would be a *value* 0, a different input to the trees.)"""
    coo = features.tocoo()
    dense = np.full(features.shape, np.nan)
    dense[coo.row, coo.col] = coo.data
    return dense


def write_data(root: Path) -> scipy.sparse.csr_matrix:
    """``train/train.libsvm`` and ``validation/validation.parquet`` (columns f0..f39, NaN where
    a value is absent, and ``label``); returns the validation rows."""
    rng = np.random.default_rng(0)
    train_x, train_y = make_rows(rng, 1000)
    val_x, val_y = make_rows(rng, 300)
    (root / "train").mkdir(parents=True)
    (root / "train" / "train.libsvm").write_bytes(encode_libsvm(train_x, train_y))
    (root / "validation").mkdir()
    dense = with_missing(val_x)
    columns = {f"f{i}": dense[:, i] for i in range(FEATURES)} | {"label": val_y}
    (root / "validation" / "validation.parquet").write_bytes(encode_parquet(columns))
    return val_x


def build_image() -> int:
    """Build the example image (context staged with pyarrow's wheels); returns how many
    extra wheels it installs."""
    extra = wheels.extra_wheels("xgboost", HERE / "image-requirements.txt", NAME)
    with tempfile.TemporaryDirectory(prefix="optml-example-context.") as context:
        wheels.stage_context(Path(context), {"Dockerfile": HERE / "Dockerfile",
                                             "code": HERE / "code"}, extra)
        common.build_image(Path(context), IMAGE)
    return len(extra)


def plot_metrics(name: str, state: Path, target: Path) -> str:
    """``optml local metrics NAME --plot TARGET``: the job's metric series as a table + PNG."""
    command = [sys.executable, "-m", "toolkit.cli", "local", "metrics", name, "--plot",
               str(target), "--state-dir", str(state)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def host_booster(model_tar: Path, into: Path) -> xgboost.Booster:
    with tarfile.open(model_tar) as tar:
        tar.extract("model.json", into, filter="data")
    booster = xgboost.Booster()
    booster.load_model(str(into / "model.json"))
    return booster


def invoke(rt: Any, endpoint: str, rows: scipy.sparse.csr_matrix) -> dict[str, list[float]]:
    """The rows as LibSVM (stored entries, 1-based, label 0) and as CSV (``nan`` where absent);
    answers as CSV, one probability per line."""
    bodies = {"text/libsvm": encode_libsvm(rows),
              "text/csv": "".join(",".join(repr(float(v)) for v in row) + "\n"
                                  for row in with_missing(rows)).encode()}
    answers = {}
    for content_type, body in bodies.items():
        answer = rt.invoke_endpoint(EndpointName=endpoint, Body=body,
                                    ContentType=content_type, Accept="text/csv")
        answers[content_type] = [float(v) for v in answer["Body"].read().decode().split()]
    return answers


def main(argv: list[str] | None = None) -> int:
    args = common.example_parser(__doc__).parse_args(argv)
    run = common.start(NAME, args.output, args.backend, "optml/xgboost:latest")
    summary: dict[str, Any] = {"backend": run.backend, "serving_backend": run.serving}
    if run.backend == "docker":
        summary["extra_wheels"] = build_image()
        print(f"[image] {IMAGE} (+{summary['extra_wheels']} wheels from the offline wheelhouse)",
              flush=True)
    sm, serving_sm, rt = run.clients()
    validation = write_data(run.root / "data")

    request = run.training_request(HERE / "job.json", HERE / "code")
    job = common.train(sm, request, run.state)
    metrics = common.final_metrics(job)
    model_data = job["ModelArtifacts"]["S3ModelArtifacts"]
    print(f"[train] {job['TrainingJobStatus']}; final metrics {metrics}; model {model_data}")
    table = plot_metrics(NAME, run.state, run.root / "metrics.png")
    points = len(table.splitlines()) - 1
    print(f"[metrics] {points} points; plot {run.root / 'metrics.png'} "
          f"(optml local metrics {NAME} --plot metrics.png --state-dir {run.state})")
    summary.update(metrics=metrics, metric_points=points, model_data=model_data,
                   plot=str(run.root / "metrics.png"))

    booster = host_booster(run.root / "artifacts" / NAME / "output" / "model.tar.gz",
                           run.root / "host")
    environment = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    if run.serving == "process":  # the image sets it; on the host, point at the same module
        environment["OPTML_DEFAULT_HANDLERS"] = str(
            REPO / "containers" / "xgboost" / "optml_xgboost_handlers.py")
    container = {"Image": IMAGE, "ModelDataUrl": model_data, "Environment": environment}
    rows = validation[:INVOKE_ROWS]
    with common.deployed(serving_sm, NAME, container) as endpoint:
        answers = invoke(rt, endpoint, rows)
    expected = booster.predict(xgboost.DMatrix(rows)).tolist()  # the CSR rows: absent = missing
    for content_type, got in answers.items():
        diff = float(np.max(np.abs(np.asarray(got) - expected)))
        print(f"[invoke] {content_type}: {len(got)} probabilities, e.g. {got[:3]}; "
              f"max |endpoint - host booster| = {diff:.2e}")
    summary.update(invoke=answers, host_predictions=expected)
    (run.root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[done] summary {run.root / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
