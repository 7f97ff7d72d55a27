"""Default inference handlers of the optml scikit-learn image (``OPTML_DEFAULT_HANDLERS``).

The serving stack decodes requests (CSV, JSON, NPY, ...) and encodes responses itself; a framework
image only has to know how to load its models and call them. A user's inference module overrides
any of these functions and inherits the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.serving.model_files import find_model_file as _find

#: Tried in this order; ``model.joblib`` is what the image's docs tell training scripts to write.
MODEL_FILES = ("model.joblib", "model.pkl")


def find_model_file(model_dir: str | Path, names: tuple[str, ...] = MODEL_FILES) -> Path:
    """This framework's model file in ``model_dir`` (see :data:`MODEL_FILES`)."""
    return _find(model_dir, names)


def model_fn(model_dir: str) -> Any:
    """Load the estimator (or pipeline) saved with ``joblib.dump``.

    joblib files are pickles: they execute code when loaded, which is acceptable only because the
    model directory is the endpoint owner's own artifact, never request data.
    """
    import joblib  # framework import only where the framework is installed

    return joblib.load(find_model_file(model_dir))


def as_2d(data: Any) -> Any:
    """scikit-learn wants (n_samples, n_features); a single JSON row ``[1, 2, 3]`` is one sample."""
    import numpy as np

    if hasattr(data, "tocsr"):  # scipy sparse (LibSVM, RecordIO-protobuf): already 2-D
        return data
    array = np.asarray(data)
    return array.reshape(1, -1) if array.ndim == 1 else array


def predict_fn(data: Any, model: Any) -> Any:
    """``model.predict`` on a 2-D batch."""
    return model.predict(as_2d(data))
