"""A small scoring network, served by optml: 16 features -> two tanh layers of 512 -> a score.

The point of this model is only that an invocation costs a little CPU -- about a millisecond of
numpy for the 16 rows the example sends -- so that load shows in ``ModelLatency`` and
``CPUUtilization`` the way a real model's does. ``weights.npz`` (W1, b1, W2, b2, W3, b3, w4,
b4) is the model artifact; ``run.py`` writes it and computes the same function on the host to
check every answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.serving import HTTPError

FEATURES = 16


@dataclass(frozen=True)
class Network:
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    """(weights, bias) of each tanh layer, in order."""
    head: tuple[np.ndarray, float]
    """(weights, bias) of the linear output."""

    def score(self, rows: np.ndarray) -> np.ndarray:
        hidden = rows
        for weights, bias in self.layers:
            hidden = np.tanh(hidden @ weights + bias)
        head_weights, head_bias = self.head
        return hidden @ head_weights + head_bias


def load_network(model_dir: str | Path) -> Network:
    """The network in ``<model_dir>/weights.npz`` (shared with run.py's host-side check)."""
    with np.load(Path(model_dir) / "weights.npz") as weights:
        layers = tuple((weights[f"W{i}"], weights[f"b{i}"]) for i in (1, 2, 3))
        return Network(layers=layers, head=(weights["w4"], float(weights["b4"])))


def model_fn(model_dir: str) -> Network:
    network = load_network(model_dir)
    print(f"[model_fn] network {[w.shape for w, _ in network.layers]} loaded", flush=True)
    return network


def predict_fn(data: Any, model: Network) -> np.ndarray:
    try:
        rows = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HTTPError(400, f"expected a JSON list of rows of {FEATURES} numbers: {exc}") \
            from exc
    rows = rows.reshape(1, -1) if rows.ndim == 1 else rows
    if rows.ndim != 2 or rows.shape[1] != FEATURES:
        raise HTTPError(400, f"expected rows of {FEATURES} numbers, got shape {rows.shape}")
    return model.score(rows)


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    if not accept.startswith(("application/json", "*/*")):
        raise HTTPError(406, f"this model answers application/json, not {accept!r}")
    return json.dumps({"scores": [float(s) for s in prediction]}), "application/json"
