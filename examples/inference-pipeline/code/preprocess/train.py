"""Fit the preprocessor: the mean and standard deviation of the engineered features.

Run by optml's ``train`` as ``python train.py``. Channel ``train``: CSV, label first (ignored
here), then ``temperature_c, hour, floor_area_m2``. Writes ``preprocessor.json`` to SM_MODEL_DIR
and copies ``inference.py`` and ``features.py`` into the model's ``code/``, so the artifact
serves on its own -- and so the model's training job can import the same ``features.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import features
import numpy as np


def main() -> None:
    files = sorted(Path(os.environ["SM_CHANNEL_TRAIN"]).glob("*.csv"))
    if not files:
        raise SystemExit("channel 'train' has no .csv files")
    raw = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])[:, 1:]
    params = features.fit(raw)
    print(f"rows={len(raw)} features={params['outputs']}", flush=True)
    print(f"mean={np.round(params['mean'], 3).tolist()} std={np.round(params['std'], 3).tolist()}",
          flush=True)
    model_dir = Path(os.environ["SM_MODEL_DIR"])
    (model_dir / "preprocessor.json").write_text(json.dumps(params, indent=2))
    (model_dir / "code").mkdir(exist_ok=True)
    for name in ("inference.py", "features.py"):
        shutil.copy(Path(__file__).with_name(name), model_dir / "code" / name)


if __name__ == "__main__":
    main()
