"""Decision-tree classifier trained on CSV channels (label in the first column, no header).

Run by optml's ``train`` as ``python train.py --max-depth N --min-samples-leaf M``. Writes
``model.joblib`` (what the optml/sklearn image loads) and ``classes.json`` to SM_MODEL_DIR and
copies ``inference.py`` into the model's ``code/`` so the artifact serves on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import joblib
import numpy as np
from sklearn.tree import DecisionTreeClassifier


def load(channel: str) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(Path(os.environ[f"SM_CHANNEL_{channel.upper()}"]).glob("*.csv"))
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 1:], data[:, 0].astype(int)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-depth", type=int, default=3)
    parser.add_argument("--min-samples-leaf", type=int, default=1)
    parser.add_argument("--classes", type=json.loads, default=["0", "1", "2"])
    args = parser.parse_args()

    x_train, y_train = load("train")
    x_val, y_val = load("validation")
    tree = DecisionTreeClassifier(max_depth=args.max_depth,
                                  min_samples_leaf=args.min_samples_leaf, random_state=0)
    tree.fit(x_train, y_train)
    print(f"train_accuracy={tree.score(x_train, y_train):.4f}", flush=True)
    print(f"validation_accuracy={tree.score(x_val, y_val):.4f}", flush=True)
    print(f"tree depth={tree.get_depth()} leaves={tree.get_n_leaves()}", flush=True)

    model_dir = Path(os.environ["SM_MODEL_DIR"])
    joblib.dump(tree, model_dir / "model.joblib")
    (model_dir / "classes.json").write_text(json.dumps(args.classes))
    (model_dir / "code").mkdir(exist_ok=True)
    shutil.copy(Path(__file__).with_name("inference.py"), model_dir / "code" / "inference.py")


if __name__ == "__main__":
    main()
