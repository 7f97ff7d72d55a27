"""What each framework image's round trip uses: a training script and a host-side predictor.

The training scripts run inside the images; the host predictors load the model the container
wrote and predict on the host, so the served answers are checked against an independent run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = 3


def dataset(rows: int = 80, seed: int = 7) -> np.ndarray:
    """Features in [0, 1); column 0 is the label (the CSV convention of the built-in algorithms)."""
    rng = np.random.default_rng(seed)
    x = rng.random((rows, FEATURES))
    y = 2.0 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2]
    return np.column_stack([y, x])


def probes(rows: int = 6, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).random((rows, FEATURES))


_LOAD_CSV = '''
import glob, os
import numpy as np

def load(channel):
    files = sorted(glob.glob(os.path.join(os.environ["SM_CHANNEL_" + channel.upper()], "*.csv")))
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 1:], data[:, 0]
'''

SKLEARN_TRAIN = _LOAD_CSV + '''
import argparse, joblib
from sklearn.tree import DecisionTreeClassifier

parser = argparse.ArgumentParser()
parser.add_argument("--max_depth", type=int, default=2)
args = parser.parse_args()
x, y = load("train")
model = DecisionTreeClassifier(max_depth=args.max_depth, random_state=0).fit(x, y > 0.7)
joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))
print("trained a tree of depth", model.get_depth())
'''

XGBOOST_TRAIN = _LOAD_CSV + '''
import xgboost as xgb

x, y = load("train")
params = {"objective": "reg:squarederror", "max_depth": int(os.environ["SM_HP_MAX_DEPTH"]),
          "eta": 0.3, "seed": 0, "nthread": 1}
booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=15)
booster.save_model(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"))
'''

PYTORCH_TRAIN = _LOAD_CSV + '''
import torch

torch.manual_seed(0)
x, y = load("train")
x = torch.tensor(x, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
model = torch.nn.Linear(x.shape[1], 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(int(os.environ["SM_HP_EPOCHS"])):
    optimizer.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    optimizer.step()
torch.jit.save(torch.jit.script(model), os.path.join(os.environ["SM_MODEL_DIR"], "model.pt"))
'''


def _sklearn_predict(model_dir: Path, x: np.ndarray) -> np.ndarray:
    import joblib  # host-side framework, only for these tests

    return joblib.load(model_dir / "model.joblib").predict(x)


def _xgboost_predict(model_dir: Path, x: np.ndarray) -> np.ndarray:
    import xgboost

    booster = xgboost.Booster(model_file=str(model_dir / "model.json"))
    return booster.predict(xgboost.DMatrix(x.astype(np.float32)))


def _pytorch_predict(model_dir: Path, x: np.ndarray) -> np.ndarray:
    import torch

    model = torch.jit.load(str(model_dir / "model.pt")).eval()
    with torch.inference_mode():
        return model(torch.tensor(x, dtype=torch.float32)).numpy()


@dataclass(frozen=True)
class TrainedFramework:
    name: str
    train_script: str
    hyperparameters: dict[str, str]
    model_file: str
    host_predict: Callable[[Path, np.ndarray], Any]


TRAINED = [
    TrainedFramework("sklearn", SKLEARN_TRAIN, {"max_depth": "3"}, "model.joblib",
                     _sklearn_predict),
    TrainedFramework("xgboost", XGBOOST_TRAIN, {"max_depth": "3"}, "model.json",
                     _xgboost_predict),
    TrainedFramework("pytorch", PYTORCH_TRAIN, {"epochs": "200"}, "model.pt", _pytorch_predict),
]


def export_onnx_linear(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """Write a small ONNX regressor made on the host with torch; return its host predictor."""
    import torch

    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, 4), torch.nn.ReLU(),
                                torch.nn.Linear(4, 1)).eval()
    torch.onnx.export(model, (torch.zeros(1, FEATURES),), str(path), input_names=["features"],
                      output_names=["score"], dynamic_axes={"features": {0: "batch"}},
                      dynamo=False)

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.tensor(x, dtype=torch.float32)).numpy()

    return predict
