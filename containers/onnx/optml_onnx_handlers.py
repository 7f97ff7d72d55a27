"""Default inference handlers of the optml ONNX Runtime image (``OPTML_DEFAULT_HANDLERS``).

``model.onnx`` is loaded into one CPU ``InferenceSession`` per worker; requests are fed to the
model's first input as float32 (what exported regressors and classifiers take). Models with
several inputs or other dtypes need the user's own ``predict_fn``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.serving.model_files import find_model_file as _find

MODEL_FILES = ("model.onnx",)


def find_model_file(model_dir: str | Path, names: tuple[str, ...] = MODEL_FILES) -> Path:
    """This framework's model file in ``model_dir`` (see :data:`MODEL_FILES`)."""
    return _find(model_dir, names)


def session_options() -> Any:
    """One intra-op and one inter-op thread: the workers (one per CPU) give the parallelism.

    Sessions are not fork-safe (a forked worker deadlocks on ONNX Runtime's internal locks when
    it exits, so ``docker stop`` ends in SIGKILL); the image therefore sets
    ``OPTML_PRELOAD_MODEL=false`` and every worker calls :func:`model_fn` itself.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return options


def model_fn(model_dir: str) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU provider, safe to fork."""
    import onnxruntime  # framework import only where the framework is installed

    return onnxruntime.InferenceSession(str(find_model_file(model_dir)),
                                        sess_options=session_options(),
                                        providers=["CPUExecutionProvider"])


def predict_fn(data: Any, model: Any) -> Any:
    """Run the session on the first input; one output comes back as is, several as a dict."""
    import numpy as np

    if hasattr(data, "toarray"):  # sparse input: ONNX Runtime takes dense tensors only
        data = data.toarray()
    features = np.asarray(data, dtype=np.float32)
    if features.ndim == 1:
        features = features.reshape(1, -1)
    first_input = model.get_inputs()[0].name
    outputs = model.run(None, {first_input: features})
    if len(outputs) == 1:
        return outputs[0]
    return {meta.name: value for meta, value in zip(model.get_outputs(), outputs)}
