"""One region's house-price model: ordinary least squares (optionally ridge) with numpy.

Run by optml's ``train`` as ``python train.py --region R --l2 X`` once per region (the example
starts one training job per region, all from this script and image). CSV channels ``train`` and
``validation``: price (k EUR) first, then ``area_m2, rooms, age_years``; no header. Writes
``model.json`` (coefficients, intercept, region) to SM_MODEL_DIR and prints
``validation_rmse=...`` for the job's metric definitions.

No ``code/`` in the artifact: on a multi-model endpoint one container serves every model, so
the handlers come from the container (its /opt/ml/code/inference.py), not from each tarball.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

FEATURES = ["area_m2", "rooms", "age_years"]


def load(channel: str) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(Path(os.environ[f"SM_CHANNEL_{channel.upper()}"]).glob("*.csv"))
    if not files:
        raise SystemExit(f"channel {channel!r} has no .csv files")
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    if data.shape[1] != len(FEATURES) + 1:
        raise SystemExit(f"channel {channel!r}: expected {len(FEATURES) + 1} columns "
                         f"(price, {', '.join(FEATURES)}), got {data.shape[1]}")
    return data[:, 1:], data[:, 0]


def fit(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Least squares with an unpenalised intercept (centre, solve, recover the intercept)."""
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc = x - x_mean
    coef = np.linalg.solve(xc.T @ xc + l2 * np.eye(x.shape[1]), xc.T @ (y - y_mean))
    return coef, float(y_mean - x_mean @ coef)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--region", required=True)
    parser.add_argument("--l2", type=float, default=0.0)
    args = parser.parse_args()

    x_train, y_train = load("train")
    x_val, y_val = load("validation")
    coef, intercept = fit(x_train, y_train, args.l2)
    rmse = float(np.sqrt(np.mean((x_val @ coef + intercept - y_val) ** 2)))
    print(f"region={args.region} rows={len(y_train)} coef={np.round(coef, 3).tolist()} "
          f"intercept={intercept:.3f}", flush=True)
    print(f"validation_rmse={rmse:.4f}", flush=True)
    model = {"region": args.region, "features": FEATURES, "coef": coef.tolist(),
             "intercept": intercept}
    (Path(os.environ["SM_MODEL_DIR"]) / "model.json").write_text(json.dumps(model, indent=2))


if __name__ == "__main__":
    main()
