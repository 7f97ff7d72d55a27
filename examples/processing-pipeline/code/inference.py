"""Scoring raw customer records: the batch transform's (and an endpoint's) handlers.

A request is CSV rows in the raw format without the label (``customer_id, tenure_months,
monthly_charges, contract, support_calls``), featurised by ``features.py`` -- the file the
processing job used -- so the model sees exactly what it was trained on. A record that the
processing job would have dropped is a 400 naming the row. CSV answers ``probability,label``
per row (``yes``/``no``: will the customer churn), so a transform with JoinSource=Input appends
them to each record; JSON answers ``{"predictions": [{"probability", "label"}]}``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import features
import joblib
import numpy as np

from toolkit.serving import HTTPError

THRESHOLD = 0.5


def model_fn(model_dir: str) -> Any:
    return joblib.load(Path(model_dir) / "model.joblib")


def input_fn(body: bytes, content_type: str) -> np.ndarray:
    if not content_type.startswith("text/csv"):
        raise HTTPError(415, f"send text/csv records, not {content_type!r}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPError(400, f"the body is not UTF-8: {exc}") from None
    rows = []
    for index, values in enumerate(row for row in csv.reader(io.StringIO(text)) if row):
        try:
            rows.append(features.featurise(features.parse(values, labelled=False)))
        except features.BadRecord as bad:
            raise HTTPError(400, f"row {index}: {bad}") from None
    if not rows:
        raise HTTPError(400, "no records in the body")
    return np.asarray(rows, dtype=np.float64)


def predict_fn(data: np.ndarray, model: Any) -> np.ndarray:
    return np.asarray(model.predict_proba(data)[:, 1])


def output_fn(probabilities: np.ndarray, accept: str) -> tuple[str, str]:
    labels = ["yes" if p >= THRESHOLD else "no" for p in probabilities]
    if accept.startswith("text/csv"):
        return "".join(f"{p:.6f},{label}\n" for p, label in zip(probabilities, labels)), \
            "text/csv"
    if accept.startswith("application/json"):
        return json.dumps({"predictions": [
            {"probability": round(float(p), 6), "label": label}
            for p, label in zip(probabilities, labels)]}), "application/json"
    raise HTTPError(406, f"accept text/csv or application/json, not {accept!r}")
