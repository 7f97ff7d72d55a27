"""The no-op model every server of the benchmark serves (copied to ``model/code/inference.py``).

It does the minimum a real handler does, the same in every server: parse the JSON body, echo
it, serialise it. What remains of each request's time is the server's own overhead.
"""

from __future__ import annotations

import json
from typing import Any


def model_fn(model_dir: str) -> dict[str, str]:
    return {"model": "noop", "dir": model_dir}


def input_fn(body: bytes | str, content_type: str) -> Any:
    return json.loads(body)


def predict_fn(data: Any, model: dict[str, str]) -> Any:
    return data


def output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    return json.dumps(prediction).encode(), "application/json"
