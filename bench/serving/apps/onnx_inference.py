"""The ONNX MLP model of the micro-batching case (copied to ``model/code/inference.py``).

One request carries one row (``{"instances": [[...256 floats...]]}``). Unbatched, every row is
its own matrix-vector pass over all weights; the batched variant appends
``onnx_batch_hook.py``, whose ``batch_predict_fn`` runs many requests' rows as one matrix
product. onnxruntime gets one thread per worker so that workers x threads = cores.
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime as ort


def model_fn(model_dir: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(os.path.join(model_dir, "mlp.onnx"), options,
                                providers=["CPUExecutionProvider"])


def input_fn(body: bytes | str, content_type: str) -> np.ndarray:
    return np.asarray(json.loads(body)["instances"], dtype=np.float32)


def predict_fn(data: np.ndarray, model: ort.InferenceSession) -> np.ndarray:
    return model.run(None, {"x": data})[0]


def output_fn(prediction: np.ndarray, accept: str) -> tuple[bytes, str]:
    return json.dumps({"predictions": prediction.tolist()}).encode(), "application/json"

