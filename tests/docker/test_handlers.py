"""Unit tests of the framework images' default handlers, run on the host (no Docker needed).

The modules are loaded from containers/<fw>/ by path, exactly as the serving stack loads
``OPTML_DEFAULT_HANDLERS`` inside an image.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.docker.frameworks import FEATURES, dataset, export_onnx_linear, probes
from toolkit.errors import ConfigError

CONTAINERS = Path(__file__).resolve().parents[2] / "containers"


def _handlers(framework: str) -> ModuleType:
    path = CONTAINERS / framework / f"optml_{framework}_handlers.py"
    spec = importlib.util.spec_from_file_location(f"handlers_{framework}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("framework", ["sklearn", "onnx", "xgboost", "pytorch"])
def test_missing_model_names_the_directory_and_what_is_there(framework: str,
                                                             tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0")
    module = _handlers(framework)
    with pytest.raises(ConfigError) as excinfo:
        module.model_fn(str(tmp_path))
    message = str(excinfo.value)
    assert str(tmp_path) in message and "weights.bin" in message
    assert module.MODEL_FILES[0] in message


def test_missing_model_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="found nothing"):
        _handlers("sklearn").model_fn(str(tmp_path / "absent"))


def test_sklearn_loads_joblib_and_predicts_single_rows(tmp_path: Path) -> None:
    import joblib
    from sklearn.tree import DecisionTreeRegressor

    data = dataset()
    model = DecisionTreeRegressor(max_depth=3, random_state=0).fit(data[:, 1:], data[:, 0])
    joblib.dump(model, tmp_path / "model.pkl")
    handlers = _handlers("sklearn")
    loaded = handlers.model_fn(str(tmp_path))
    x = probes()
    np.testing.assert_array_equal(handlers.predict_fn(x, loaded), model.predict(x))
    np.testing.assert_array_equal(handlers.predict_fn(list(x[0]), loaded), model.predict(x[:1]))


def test_onnx_feeds_first_input_as_float32(tmp_path: Path) -> None:
    host_predict = export_onnx_linear(tmp_path / "model.onnx")
    handlers = _handlers("onnx")
    session = handlers.model_fn(str(tmp_path))
    x = probes()
    np.testing.assert_allclose(handlers.predict_fn(x.tolist(), session), host_predict(x),
                               rtol=1e-5)
    assert handlers.predict_fn(x[0], session).shape == (1, 1)


def test_xgboost_prefers_builtin_name_and_accepts_sparse(tmp_path: Path) -> None:
    import xgboost
    from scipy.sparse import csr_matrix

    data = dataset()
    booster = xgboost.train({"max_depth": 2, "nthread": 1, "seed": 0},
                            xgboost.DMatrix(data[:, 1:], label=data[:, 0]), num_boost_round=5)
    booster.save_model(str(tmp_path / "model.ubj"))
    (tmp_path / "model.ubj").rename(tmp_path / "xgboost-model")
    handlers = _handlers("xgboost")
    loaded = handlers.model_fn(str(tmp_path))
    x = probes().astype(np.float32)
    expected = booster.predict(xgboost.DMatrix(x))
    np.testing.assert_allclose(handlers.predict_fn(x, loaded), expected, rtol=1e-6)
    np.testing.assert_allclose(handlers.predict_fn(csr_matrix(x), loaded), expected, rtol=1e-6)


def test_xgboost_rejects_a_file_that_is_no_model(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text("{\"not\": \"a model\"}")
    with pytest.raises(ConfigError, match="model.json"):
        _handlers("xgboost").model_fn(str(tmp_path))


def test_pytorch_serves_torchscript_without_grad(tmp_path: Path) -> None:
    import torch

    model = torch.nn.Linear(FEATURES, 2)
    torch.jit.save(torch.jit.script(model), str(tmp_path / "model.pt"))
    handlers = _handlers("pytorch")
    loaded = handlers.model_fn(str(tmp_path))
    x = probes()
    with torch.no_grad():
        expected = model(torch.tensor(x, dtype=torch.float32)).numpy()
    result = handlers.predict_fn(x, loaded)
    assert isinstance(result, np.ndarray)
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    assert handlers.predict_fn(x[0].tolist(), loaded).shape == (1, 2)


def test_pytorch_rejects_a_pickled_module_with_advice(tmp_path: Path) -> None:
    import torch

    torch.save(torch.nn.Linear(FEATURES, 1).state_dict(), tmp_path / "model.pt")
    with pytest.raises(ConfigError, match="TorchScript"):
        _handlers("pytorch").model_fn(str(tmp_path))
