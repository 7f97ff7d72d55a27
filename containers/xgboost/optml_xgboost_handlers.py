"""Default inference handlers of the optml XGBoost image (``OPTML_DEFAULT_HANDLERS``).

Loads a ``Booster`` saved with ``save_model`` under the names XGBoost users write
(``xgboost-model`` is the managed service's built-in algorithm's name) and predicts through a
``DMatrix``, dense or sparse (LibSVM and RecordIO-protobuf requests decode to sparse matrices).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.errors import ConfigError
from toolkit.serving.model_files import find_model_file as _find

MODEL_FILES = ("xgboost-model", "model.json", "model.ubj")


def find_model_file(model_dir: str | Path, names: tuple[str, ...] = MODEL_FILES) -> Path:
    """This framework's model file in ``model_dir`` (see :data:`MODEL_FILES`)."""
    return _find(model_dir, names)


def model_fn(model_dir: str) -> Any:
    """A ``Booster`` from the JSON or UBJSON model file (format detected by XGBoost)."""
    import xgboost  # framework import only where the framework is installed

    path = find_model_file(model_dir)
    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except xgboost.core.XGBoostError as exc:
        raise ConfigError(str(path), f"not an XGBoost model saved with save_model: {exc}") from exc
    return booster


def predict_fn(data: Any, model: Any) -> Any:
    """``Booster.predict`` on a ``DMatrix``; feature names are the model's, when it has them."""
    import numpy as np
    import xgboost

    if isinstance(data, xgboost.DMatrix):
        return model.predict(data)
    if not hasattr(data, "tocsr"):
        data = np.asarray(data, dtype=np.float32)
        if data.ndim == 1:
            data = data.reshape(1, -1)
    names = model.feature_names
    if names is not None and len(names) != data.shape[1]:
        names = None  # let XGBoost report the shape mismatch in its own words
    return model.predict(xgboost.DMatrix(data, feature_names=names))
