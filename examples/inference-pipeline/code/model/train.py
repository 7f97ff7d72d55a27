"""Fit the pipeline's model: ridge regression of energy use on the preprocessed features.

Run by optml's ``train`` as ``python train.py --alpha A``. Channels:

- ``train`` and ``validation``: CSV, ``energy_kwh`` first, then the raw
  ``temperature_c, hour, floor_area_m2`` (the same rows the preprocessor was fitted on);
- ``preprocessor``: the preprocessing job's output prefix, holding its ``model.tar.gz``.

The raw rows go through ``features.py`` and ``preprocessor.json`` taken from that artifact --
the same code and parameters the preprocessing container serves with -- then a ridge regression
is fitted. Writes ``model.joblib`` and copies ``inference.py`` into the model's ``code/``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import numpy as np
from sklearn.linear_model import Ridge


def load(channel: str) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(Path(os.environ[f"SM_CHANNEL_{channel.upper()}"]).glob("*.csv"))
    if not files:
        raise SystemExit(f"channel {channel!r} has no .csv files")
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 1:], data[:, 0]


def load_preprocessor(scratch: Path) -> tuple[ModuleType, dict[str, Any]]:
    """``features`` (as a module) and its fitted parameters, from the preprocessor's artifact.
    Only the two members needed are read (never a blind extractall)."""
    (archive,) = Path(os.environ["SM_CHANNEL_PREPROCESSOR"]).glob("model.tar.gz")
    with tarfile.open(archive) as tar:
        members = {}
        for name in ("preprocessor.json", "code/features.py"):
            member = tar.extractfile(name)
            if member is None:
                raise SystemExit(f"{archive}: {name} is not a regular file")
            members[name] = member.read()
    (scratch / "features.py").write_bytes(members["code/features.py"])
    spec = importlib.util.spec_from_file_location("features", scratch / "features.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, json.loads(members["preprocessor.json"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=1.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        features, params = load_preprocessor(Path(scratch))
        raw_train, y_train = load("train")
        raw_val, y_val = load("validation")
        x_train = features.transform(raw_train, params)
        x_val = features.transform(raw_val, params)
    model = Ridge(alpha=args.alpha).fit(x_train, y_train)
    rmse = float(np.sqrt(np.mean((model.predict(x_val) - y_val) ** 2)))
    print(f"coef={np.round(model.coef_, 3).tolist()} intercept={model.intercept_:.3f}",
          flush=True)
    print(f"validation_rmse={rmse:.4f}", flush=True)
    model_dir = Path(os.environ["SM_MODEL_DIR"])
    joblib.dump(model, model_dir / "model.joblib")
    (model_dir / "code").mkdir(exist_ok=True)
    shutil.copy(Path(__file__).with_name("inference.py"), model_dir / "code" / "inference.py")


if __name__ == "__main__":
    main()
