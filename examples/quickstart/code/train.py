"""Quickstart training script: a linear regression fitted with numpy gradient descent.

optml's ``train`` runs it as ``python train.py --epochs N --learning-rate LR`` (the job's
hyperparameters become arguments) with the contract's environment: ``SM_CHANNEL_TRAIN`` and
``SM_CHANNEL_VALIDATION`` are the channel directories, ``SM_MODEL_DIR`` is what becomes
model.tar.gz and ``SM_OUTPUT_DATA_DIR`` what becomes output.tar.gz.

Metrics are plain log lines (``epoch=10 train_mse=0.01 validation_mse=0.01``); the job's
MetricDefinitions turn them into series. The inference code is copied into the model
(``code/inference.py``) so the artifact serves on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np


def load_csv_dir(directory: str) -> tuple[np.ndarray, np.ndarray]:
    """Every ``*.csv`` in a channel: no header, the label in the first column."""
    files = sorted(Path(directory).glob("*.csv"))
    if not files:
        raise SystemExit(f"no .csv files in channel directory {directory}")
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 1:], data[:, 0]


def mse(features: np.ndarray, labels: np.ndarray, weights: np.ndarray, bias: float) -> float:
    return float(np.mean((features @ weights + bias - labels) ** 2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--log-every", type=int, default=25)
    args = parser.parse_args()

    x_train, y_train = load_csv_dir(os.environ["SM_CHANNEL_TRAIN"])
    x_val, y_val = load_csv_dir(os.environ["SM_CHANNEL_VALIDATION"])
    print(f"train rows={len(y_train)} validation rows={len(y_val)} features={x_train.shape[1]}",
          flush=True)

    weights, bias = np.zeros(x_train.shape[1]), 0.0
    for epoch in range(1, args.epochs + 1):
        error = x_train @ weights + bias - y_train
        weights -= args.learning_rate * 2 * x_train.T @ error / len(y_train)
        bias -= args.learning_rate * 2 * float(error.mean())
        if epoch % args.log_every == 0 or epoch == args.epochs:
            print(f"epoch={epoch} train_mse={mse(x_train, y_train, weights, bias):.6f} "
                  f"validation_mse={mse(x_val, y_val, weights, bias):.6f}", flush=True)

    model_dir = Path(os.environ["SM_MODEL_DIR"])
    (model_dir / "model.json").write_text(json.dumps({"weights": weights.tolist(),
                                                      "bias": bias}))
    shutil.copytree(Path(__file__).resolve().parent, model_dir / "code", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("train.py", "__pycache__"))
    evaluation = {"validation_mse": mse(x_val, y_val, weights, bias), "epochs": args.epochs}
    (Path(os.environ["SM_OUTPUT_DATA_DIR"]) / "evaluation.json").write_text(
        json.dumps(evaluation))
    print(f"saved model to {model_dir}", flush=True)


if __name__ == "__main__":
    main()
