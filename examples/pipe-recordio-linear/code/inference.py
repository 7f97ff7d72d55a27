"""Serving the averaged linear model: RecordIO-protobuf, CSV or JSON rows in, predictions out.

``model_fn`` averages the per-host weights that ``train.py`` wrote (``weights-algo-*.json``, all
packed into the one model tarball), weighted by how many rows each host learned from. Decoding
the three request types is left to optml's default ``input_fn`` (its codecs turn
``application/x-recordio-protobuf``, ``text/csv`` and ``application/json`` into a matrix), and
encoding to its default ``output_fn`` (the client's Accept type).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.serving import HTTPError


@dataclass(frozen=True)
class AveragedLinearModel:
    weights: np.ndarray
    bias: float
    hosts: tuple[str, ...]


def model_fn(model_dir: str) -> AveragedLinearModel:
    parts = [json.loads(p.read_text()) for p in sorted(Path(model_dir).glob("weights-*.json"))]
    if not parts:
        raise FileNotFoundError(f"no weights-<host>.json in {model_dir}")
    rows = np.array([p["rows"] for p in parts], dtype=np.float64)
    share = rows / rows.sum()
    weights = sum(s * np.asarray(p["weights"], dtype=np.float64) for s, p in zip(share, parts))
    bias = float(sum(s * p["bias"] for s, p in zip(share, parts)))
    return AveragedLinearModel(np.asarray(weights), bias, tuple(p["host"] for p in parts))


def predict_fn(data: object, model: AveragedLinearModel) -> np.ndarray:
    # float32 first: CSV and RecordIO-protobuf arrive as float32, JSON as float64; the same
    # numbers must give the same prediction whichever way they were sent.
    features = np.asarray(data, dtype=np.float32).astype(np.float64)
    if features.ndim == 1:
        features = features[np.newaxis, :]
    if features.ndim != 2 or features.shape[1] != len(model.weights):
        raise HTTPError(400, f"expected rows of {len(model.weights)} features, got an array "
                             f"of shape {features.shape}")
    return features @ model.weights + model.bias
