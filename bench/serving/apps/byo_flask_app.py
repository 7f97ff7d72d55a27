"""The classic bring-your-own serving app: Flask behind gunicorn behind nginx.

This is the pattern of the service's original "bring your own container" examples, written
afresh: a module-level model loaded once per worker, ``/ping`` and ``/invocations`` routes, and
the handler functions of the user's ``inference.py`` (from ``$BENCH_MODEL_DIR/code``) called
in order. nginx terminates keep-alive and proxies to gunicorn's unix socket.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import flask

_MODEL_DIR = Path(os.environ["BENCH_MODEL_DIR"])


def _load_handlers() -> ModuleType:
    path = _MODEL_DIR / "code" / "inference.py"
    spec = importlib.util.spec_from_file_location("byo_inference", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


handlers = _load_handlers()
model = handlers.model_fn(str(_MODEL_DIR))
app = flask.Flask(__name__)


@app.route("/ping", methods=["GET"])
def ping() -> flask.Response:
    return flask.Response(response="\n", status=200 if model is not None else 404,
                          mimetype="application/json")


@app.route("/invocations", methods=["POST"])
def invocations() -> flask.Response:
    request = flask.request
    content_type = request.content_type or "application/json"
    accept = request.headers.get("Accept") or "application/json"
    data = handlers.input_fn(request.get_data(), content_type)
    prediction = handlers.predict_fn(data, model)
    result = handlers.output_fn(prediction, accept)
    body, mimetype = result if isinstance(result, tuple) else (result, accept)
    return flask.Response(response=body, status=200, mimetype=mimetype)
