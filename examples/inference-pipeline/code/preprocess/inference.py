"""The pipeline's first container: raw rows in, standardised features out.

Requests come from the client (CSV or JSON rows of ``temperature_c, hour, floor_area_m2``),
parsed here as float64 (the toolkit's default CSV decoder gives float32; a preprocessor should
not round its input). The answer goes to the next container, not to the client: local mode (and
the service) forwards it with its Content-Type. Its format is chosen by ``Accept``; the router
sends none to a pipeline's first container, so the model's Environment sets
``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=application/x-npy`` -- binary float64, exact and compact.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import features
import numpy as np

from toolkit.serving import HTTPError


def model_fn(model_dir: str) -> dict[str, Any]:
    params: dict[str, Any] = json.loads((Path(model_dir) / "preprocessor.json").read_text())
    return params


def input_fn(body: bytes, content_type: str) -> np.ndarray:
    try:
        if content_type.startswith("text/csv"):
            return np.loadtxt(io.StringIO(body.decode("utf-8")), delimiter=",", ndmin=2)
        if content_type.startswith("application/json"):
            return np.asarray(json.loads(body), dtype=np.float64)
    except ValueError as exc:  # bad number, ragged rows, bad UTF-8/JSON
        raise HTTPError(400, f"cannot parse the {content_type} body: {exc}") from None
    raise HTTPError(415, f"send text/csv or application/json rows, not {content_type!r}")


def predict_fn(data: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    try:
        return features.transform(data, params)
    except ValueError as exc:
        raise HTTPError(400, str(exc)) from None


def output_fn(prediction: np.ndarray, accept: str) -> tuple[bytes | str, str]:
    if accept.startswith("application/x-npy"):
        buffer = io.BytesIO()
        np.save(buffer, prediction, allow_pickle=False)
        return buffer.getvalue(), "application/x-npy"
    if accept.startswith("text/csv"):
        return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in prediction), \
            "text/csv"
    if accept.startswith("application/json"):
        return json.dumps(prediction.tolist()), "application/json"
    raise HTTPError(406, f"answer types: application/x-npy, text/csv, application/json; "
                         f"not {accept!r}")
