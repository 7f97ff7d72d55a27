"""Serving the decision tree: CSV or JSON rows of 4 measurements in, class names out.

``model_fn`` loads the estimator and the class names; optml's default ``input_fn`` decodes CSV
and JSON into a matrix. ``output_fn`` answers CSV with one class name per line (so a batch
transform with JoinSource=Input appends it to each input row) and JSON with the name and the
class probabilities of each row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from toolkit.serving import HTTPError


def model_fn(model_dir: str) -> dict[str, Any]:
    return {"tree": joblib.load(Path(model_dir) / "model.joblib"),
            "classes": json.loads((Path(model_dir) / "classes.json").read_text())}


def predict_fn(data: Any, model: dict[str, Any]) -> dict[str, Any]:
    rows = np.asarray(data, dtype=np.float64)
    rows = rows.reshape(1, -1) if rows.ndim == 1 else rows
    if rows.ndim != 2 or rows.shape[1] != model["tree"].n_features_in_:
        raise HTTPError(400, f"expected rows of {model['tree'].n_features_in_} features, got "
                             f"shape {rows.shape}")
    probabilities = np.asarray(model["tree"].predict_proba(rows))
    return {"labels": [model["classes"][i] for i in probabilities.argmax(axis=1)],
            "probabilities": probabilities}


def output_fn(prediction: dict[str, Any], accept: str) -> tuple[str, str]:
    labels, probabilities = prediction["labels"], prediction["probabilities"]
    if accept.startswith("text/csv"):
        return "".join(f"{label}\n" for label in labels), "text/csv"
    if accept.startswith("application/json"):
        return json.dumps({"predictions": [
            {"label": label, "probabilities": [round(float(p), 4) for p in row]}
            for label, row in zip(labels, probabilities)]}), "application/json"
    raise HTTPError(406, f"accept text/csv or application/json, not {accept!r}")
