"""Serving the exported pipeline with ONNX Runtime, micro-batched (no scikit-learn here).

Concurrent requests in one worker are predicted together: optml's server hands each request's
decoded input (its default ``input_fn``: CSV or JSON rows) to a batcher, which collects up to
``batch_max_size`` of them, waiting at most ``batch_max_wait_ms`` after the first, and calls
``batch_predict_fn`` once. ONNX Runtime runs one ``session.run`` on all their rows, which costs
about as much as one request's.

A request with a bad shape must not fail the requests batched with it, so
``batch_predict_fn`` checks every input on its own and returns an ``HTTPError`` in that input's
slot; ``output_fn`` raises it for that request alone (400). Each answer tells, in its
``X-Amzn-SageMaker-Custom-Attributes``, how many requests shared its batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from toolkit.serving import HTTPError, RequestContext

batch_max_size = 16
"""At most this many requests per ``session.run`` (also the worker's request threads)."""
batch_max_wait_ms = 10
"""How long the first request of a batch waits for company."""


@dataclass(frozen=True)
class Prediction:
    labels: np.ndarray
    probabilities: np.ndarray
    batch_size: int


def model_fn(model_dir: str) -> onnxruntime.InferenceSession:
    """One single-threaded CPU session per worker (the onnx image loads it after fork)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(Path(model_dir) / "model.onnx"),
                                        sess_options=options,
                                        providers=["CPUExecutionProvider"])


def _rows(data: Any, width: int) -> np.ndarray:
    """One request's input as a float32 matrix of ``width`` columns, or HTTPError 400."""
    try:
        rows = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise HTTPError(400, f"expected numeric rows: {exc}") from None
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    if rows.ndim != 2 or rows.shape[1] != width or rows.shape[0] == 0:
        raise HTTPError(400, f"expected rows of {width} features, got shape {rows.shape}")
    return rows


def batch_predict_fn(inputs: list[Any], model: onnxruntime.InferenceSession
                     ) -> list[Prediction | HTTPError]:
    """One ``session.run`` over the rows of every well-formed input; outputs in input order."""
    feature = model.get_inputs()[0]
    checked: list[np.ndarray | HTTPError] = []
    for data in inputs:
        try:
            checked.append(_rows(data, feature.shape[1]))
        except HTTPError as error:
            checked.append(error)
    good = [item for item in checked if isinstance(item, np.ndarray)]
    if good:
        labels, probabilities = model.run(["label", "probabilities"],
                                          {feature.name: np.concatenate(good)})
    outputs: list[Prediction | HTTPError] = []
    offset = 0
    for item in checked:
        if isinstance(item, HTTPError):
            outputs.append(item)
            continue
        end = offset + len(item)
        outputs.append(Prediction(labels[offset:end], probabilities[offset:end], len(inputs)))
        offset = end
    return outputs


def output_fn(prediction: Prediction | HTTPError, accept: str,
              context: RequestContext) -> tuple[str, str]:
    """CSV: ``label,p0,p1,...`` per row. JSON: ``{"predictions": [{"label", "probabilities"}]}``.

    Floats are written with ``repr`` (shortest round-trip form), so nothing is lost on the way.
    """
    if isinstance(prediction, HTTPError):
        raise prediction
    context.set_custom_attributes(f"batch_size={prediction.batch_size}")
    rows = zip(prediction.labels.tolist(), prediction.probabilities.tolist())
    if accept.startswith("text/csv"):
        return "".join(f"{label}," + ",".join(map(repr, probs)) + "\n"
                       for label, probs in rows), "text/csv"
    if accept.startswith("application/json"):
        return json.dumps({"predictions": [{"label": label, "probabilities": probs}
                                           for label, probs in rows]}), "application/json"
    raise HTTPError(406, f"accept text/csv or application/json, not {accept!r}")
