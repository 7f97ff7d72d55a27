"""Train a scikit-learn pipeline and export it to ONNX inside the training job.

Run by optml's ``train`` as ``python train.py --c 1.0 --max-iter 500``. Reads the CSV channels
``train`` and ``validation`` (label first, no header) with ``toolkit.formats.csv``, fits
``StandardScaler -> LogisticRegression``, prints the accuracies (the job's MetricDefinitions
read them), and writes:

* ``$SM_MODEL_DIR/model.onnx`` -- the whole pipeline (scaling included) as one ONNX graph with
  a float32 input ``features`` of shape ``[N, n_features]`` and two outputs, ``label`` (int64)
  and ``probabilities`` (float32, no ZipMap, so clients get a plain matrix). This is the only
  thing in model.tar.gz: the serving image needs onnxruntime, not scikit-learn.
* ``$SM_OUTPUT_DATA_DIR/sklearn-pipeline.joblib`` -- the fitted scikit-learn pipeline, in
  output.tar.gz, so the ONNX answers can be checked against scikit-learn's on the host.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import joblib
import numpy as np
import onnx
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from toolkit.formats.csv import read_csv

# ONNX Runtime 1.17+ runs opset 17 and ai.onnx.ml 3; pinning them keeps the graph loadable by
# older runtimes too, whatever newer opset skl2onnx would pick by default.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def load(channel: str) -> tuple[np.ndarray, np.ndarray]:
    """All ``*.csv`` files of a channel, in name order, as (features, integer labels)."""
    directory = Path(os.environ[f"SM_CHANNEL_{channel.upper()}"])
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise SystemExit(f"channel {channel!r}: no *.csv file in {directory}")
    parts = [read_csv(f.read_bytes(), label_size=1, source=str(f), dtype=np.float64)
             for f in files]
    features = np.concatenate([x for x, _ in parts])
    labels = np.concatenate([y for _, y in parts]).astype(np.int64)
    return features, labels


def export(pipeline: Pipeline, n_features: int) -> onnx.ModelProto:
    """The pipeline as ONNX: input ``features`` float32 [N, n_features]; outputs ``label`` and
    ``probabilities`` (a tensor, not ZipMap's list of dicts)."""
    model = to_onnx(pipeline,
                    initial_types=[("features", FloatTensorType([None, n_features]))],
                    options={LogisticRegression: {"zipmap": False}},
                    target_opset=TARGET_OPSET)
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--max-iter", type=int, default=500)
    args = parser.parse_args()

    x_train, y_train = load("train")
    x_val, y_val = load("validation")
    pipeline = Pipeline([("scale", StandardScaler()),
                         ("classify", LogisticRegression(C=args.c, max_iter=args.max_iter))])
    pipeline.fit(x_train, y_train)
    print(f"train_accuracy={pipeline.score(x_train, y_train):.4f}", flush=True)
    print(f"validation_accuracy={pipeline.score(x_val, y_val):.4f}", flush=True)

    model = export(pipeline, x_train.shape[1])
    model_dir = Path(os.environ["SM_MODEL_DIR"])
    onnx.save_model(model, model_dir / "model.onnx")
    output_dir = Path(os.environ["SM_OUTPUT_DATA_DIR"])
    joblib.dump(pipeline, output_dir / "sklearn-pipeline.joblib")
    outputs = ", ".join(o.name for o in model.graph.output)
    print(f"exported model.onnx: opsets {TARGET_OPSET}, input features[N,{x_train.shape[1]}], "
          f"outputs {outputs}", flush=True)


if __name__ == "__main__":
    main()
