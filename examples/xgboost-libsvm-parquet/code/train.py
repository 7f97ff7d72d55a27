"""XGBoost binary classifier: LibSVM ``train`` channel, Parquet ``validation`` channel.

Run by optml's ``train`` as ``python train.py --num-round 30 --max-depth 4 --eta 0.3``.

* ``train``: ``*.libsvm`` files (``label idx:value ...``, 1-based indices, the classic
  convention), read with ``toolkit.formats.libsvm`` into one sparse matrix;
* ``validation``: ``*.parquet`` files, one numeric column per feature plus the label column
  (``--label-column``), read with ``toolkit.formats.parquet``. Its width fixes the number of
  features, so a LibSVM file whose last columns happen to be all zero still lines up.

XGBoost prints ``[round]\\ttrain-logloss:...\\ttrain-auc:...\\tvalidation-logloss:...`` each round;
the job's MetricDefinitions turn those lines into metric series. The booster is saved as
``model.json`` (one of the names the optml/xgboost image's default handlers load; the extension
fixes the format, so neither side has to guess it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import scipy.sparse
import xgboost

from toolkit.formats.libsvm import read_libsvm
from toolkit.formats.parquet import read_parquet, table_to_array


def channel_files(channel: str, pattern: str) -> list[Path]:
    directory = Path(os.environ[f"SM_CHANNEL_{channel.upper()}"])
    files = sorted(directory.glob(pattern))
    if not files:
        raise SystemExit(f"channel {channel!r}: no {pattern} file in {directory}")
    return files


def load_validation(label_column: str) -> tuple[np.ndarray, np.ndarray]:
    """Parquet files → (features, labels); every column but the label is a feature."""
    features, labels = [], []
    for path in channel_files("validation", "*.parquet"):
        table = read_parquet(path)
        if label_column not in table.schema.names:
            raise SystemExit(f"{path}: no label column {label_column!r} "
                             f"(columns: {', '.join(table.schema.names)})")
        labels.append(table_to_array(table.select([label_column]), source=str(path))[:, 0])
        features.append(table_to_array(table.drop_columns([label_column]), source=str(path)))
    return np.concatenate(features), np.concatenate(labels)


def load_train(n_features: int) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """LibSVM files → (CSR features of ``n_features`` columns, labels)."""
    features, labels = [], []
    for path in channel_files("train", "*.libsvm"):
        with path.open("rb") as stream:
            data = read_libsvm(stream, source=str(path), n_features=n_features,
                               zero_based=False)
        features.append(data.features)
        labels.append(data.labels)
    return scipy.sparse.vstack(features, format="csr"), np.concatenate(labels)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-round", type=int, default=30)
    parser.add_argument("--max-depth", type=int, default=4)
    parser.add_argument("--eta", type=float, default=0.3)
    parser.add_argument("--label-column", default="label")
    args = parser.parse_args()

    x_val, y_val = load_validation(args.label_column)
    x_train, y_train = load_train(n_features=x_val.shape[1])
    print(f"train: {x_train.shape[0]} rows, {x_train.nnz} stored values (LibSVM); "
          f"validation: {x_val.shape[0]} rows x {x_val.shape[1]} columns (Parquet)", flush=True)
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"],
              "max_depth": args.max_depth, "eta": args.eta, "nthread": 1, "seed": 0}
    train = xgboost.DMatrix(x_train, label=y_train)
    booster = xgboost.train(params, train, num_boost_round=args.num_round,
                            evals=[(train, "train"),
                                   (xgboost.DMatrix(x_val, label=y_val), "validation")],
                            verbose_eval=1)
    booster.save_model(Path(os.environ["SM_MODEL_DIR"]) / "model.json")


if __name__ == "__main__":
    main()
