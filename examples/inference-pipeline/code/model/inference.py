"""The pipeline's second container: preprocessed features in, predicted energy use out.

Its request is the preprocessing container's answer (``application/x-npy``, float64), which the
toolkit's default ``input_fn`` decodes (pickles refused); the client's ``Accept`` reaches this
container, the last one, and picks the answer's format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from toolkit.serving import HTTPError


def model_fn(model_dir: str) -> Any:
    return joblib.load(Path(model_dir) / "model.joblib")


def predict_fn(data: Any, model: Any) -> np.ndarray:
    rows = np.asarray(data, dtype=np.float64)
    rows = rows.reshape(1, -1) if rows.ndim == 1 else rows
    if rows.ndim != 2 or rows.shape[1] != model.n_features_in_:
        raise HTTPError(400, f"expected rows of {model.n_features_in_} preprocessed features, "
                             f"got shape {rows.shape}")
    return np.asarray(model.predict(rows), dtype=np.float64)


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    if accept.startswith("application/json"):
        return json.dumps({"predictions": [float(p) for p in prediction]}), "application/json"
    if accept.startswith("text/csv"):
        return "".join(f"{float(p)!r}\n" for p in prediction), "text/csv"
    raise HTTPError(406, f"answer types: application/json, text/csv; not {accept!r}")
