"""Default inference handlers of the optml PyTorch image (``OPTML_DEFAULT_HANDLERS``).

Serves a TorchScript archive (``torch.jit.save``): it needs no Python class definition at load
time, unlike a pickled ``nn.Module``. Inference runs on the CPU in ``inference_mode``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.errors import ConfigError
from toolkit.serving.model_files import find_model_file as _find

MODEL_FILES = ("model.pt", "model.pth")


def find_model_file(model_dir: str | Path, names: tuple[str, ...] = MODEL_FILES) -> Path:
    """This framework's model file in ``model_dir`` (see :data:`MODEL_FILES`)."""
    return _find(model_dir, names)


def model_fn(model_dir: str) -> Any:
    """The TorchScript module, on the CPU, in eval mode."""
    import torch  # framework import only where the framework is installed

    path = find_model_file(model_dir)
    try:
        model = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as exc:
        raise ConfigError(str(path), "not a TorchScript archive; save the model with "
                          "torch.jit.save(torch.jit.script(model), path) or write a model_fn: "
                          f"{exc}") from exc
    return model.eval()


def _to_numpy(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_to_numpy(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_numpy(item) for key, item in value.items()}
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value


def predict_fn(data: Any, model: Any) -> Any:
    """Call the model on a float32 batch without autograd; tensors come back as numpy arrays."""
    import numpy as np
    import torch

    if hasattr(data, "toarray"):
        data = data.toarray()
    if not isinstance(data, torch.Tensor):
        data = torch.from_numpy(np.ascontiguousarray(np.asarray(data, dtype=np.float32)))
    if data.ndim == 1:
        data = data.unsqueeze(0)
    with torch.inference_mode():
        return _to_numpy(model(data))
