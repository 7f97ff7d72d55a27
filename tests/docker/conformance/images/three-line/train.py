"""Ridge regression on the CSV channel `train` (target in the first column, no header).
``--seconds`` stands for a longer training (it waits that long first)."""

import argparse
import os
import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import Ridge

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, default=1.0)
parser.add_argument("--seconds", type=float, default=0.0)
args = parser.parse_args()
time.sleep(args.seconds)
files = sorted(Path(os.environ["SM_CHANNEL_TRAIN"]).glob("*.csv"))
data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
model = Ridge(alpha=args.alpha).fit(data[:, 1:], data[:, 0])
rmse = float(np.sqrt(np.mean((model.predict(data[:, 1:]) - data[:, 0]) ** 2)))
print(f"train_rmse={rmse:.6f}", flush=True)
joblib.dump(model, Path(os.environ["SM_MODEL_DIR"]) / "model.joblib")
