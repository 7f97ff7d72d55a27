"""Quickstart inference code, run by ``optml serve`` from the model's ``code/`` directory.

Only ``model_fn`` and ``predict_fn`` are written here: optml's default ``input_fn`` decodes
``text/csv`` and ``application/json`` bodies into a numpy matrix, and its default ``output_fn``
encodes the predictions as the client's Accept type (one CSV line or JSON number per row).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.serving import HTTPError


@dataclass(frozen=True)
class LinearModel:
    weights: np.ndarray
    bias: float


def model_fn(model_dir: str) -> LinearModel:
    saved = json.loads((Path(model_dir) / "model.json").read_text())
    return LinearModel(np.asarray(saved["weights"], dtype=np.float64), float(saved["bias"]))


def predict_fn(data: object, model: LinearModel) -> np.ndarray:
    features = np.asarray(data, dtype=np.float64)
    if features.ndim == 1:
        features = features[np.newaxis, :]
    if features.ndim != 2 or features.shape[1] != len(model.weights):
        raise HTTPError(400, f"expected rows of {len(model.weights)} features, got an array "
                             f"of shape {features.shape}")
    return features @ model.weights + model.bias
