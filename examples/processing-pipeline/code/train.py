"""The training job: churn classifier on the processing job's train and validation outputs.

Run by optml's ``train`` as ``python train.py --c C``. Channels ``train`` and ``validation``
are the processing job's outputs of the same names: one ``part-<host>.csv`` per processing
instance, no header, the label (1 = churned) first, then :data:`features.FEATURES`. Fits
standardisation + logistic regression, prints the metrics the job's MetricDefinitions capture,
and writes ``model.joblib`` with ``code/inference.py`` and ``code/features.py`` so the artifact
scores raw records on its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def load(channel: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(features, labels, number of files) of every ``*.csv`` in the channel."""
    files = sorted(Path(os.environ[f"SM_CHANNEL_{channel.upper()}"]).glob("*.csv"))
    if not files:
        raise SystemExit(f"channel {channel!r} has no .csv files")
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 1:], data[:, 0].astype(int), len(files)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    args = parser.parse_args()

    x_train, y_train, train_files = load("train")
    x_val, y_val, val_files = load("validation")
    print(f"train rows={len(y_train)} from {train_files} files; validation rows={len(y_val)} "
          f"from {val_files} files; churn rate {y_train.mean():.3f}", flush=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=args.c))
    model.fit(x_train, y_train)
    p_val = model.predict_proba(x_val)[:, 1]
    print(f"train_accuracy={model.score(x_train, y_train):.4f}", flush=True)
    print(f"validation_accuracy={model.score(x_val, y_val):.4f}", flush=True)
    print(f"validation_logloss={log_loss(y_val, p_val):.4f}", flush=True)
    print(f"validation_auc={roc_auc_score(y_val, p_val):.4f}", flush=True)

    model_dir = Path(os.environ["SM_MODEL_DIR"])
    joblib.dump(model, model_dir / "model.joblib")
    (model_dir / "code").mkdir(exist_ok=True)
    for name in ("inference.py", "features.py"):
        shutil.copy(Path(__file__).with_name(name), model_dir / "code" / name)


if __name__ == "__main__":
    main()
