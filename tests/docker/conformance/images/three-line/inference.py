"""Serving the ridge model: rows in, JSON predictions out, naming the file that served them."""

import json
from pathlib import Path

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(Path(model_dir) / "model.joblib")


def predict_fn(data, model):
    rows = np.asarray(data, dtype=np.float64)
    return model.predict(rows.reshape(1, -1) if rows.ndim == 1 else rows)


def output_fn(prediction, accept):
    return json.dumps({"predictions": [round(float(p), 6) for p in prediction],
                       "served_by": __file__}), "application/json"
