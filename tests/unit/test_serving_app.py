"""The Flask app in-process (Werkzeug test client): routes, pipeline, errors, context."""

from __future__ import annotations

import io
import types
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from toolkit.serving.app import create_app
from toolkit.serving.codecs import default_registry
from toolkit.serving.handlers import resolve, toolkit_defaults
from toolkit.serving.multimodel import ModelRegistry
from toolkit.serving.runtime import ExecutionDefaults, ServingRuntime


def runtime_for(tmp_path: Path, *, load: bool = True, registry: bool = False,
                max_payload_mb: int = 1, **functions: Any) -> ServingRuntime:
    codecs = default_registry()
    user = types.ModuleType("user")
    functions.setdefault("model_fn", lambda model_dir: (lambda data: data))
    for name, fn in functions.items():
        setattr(user, name, fn)
    runtime = ServingRuntime(
        handlers=resolve(user, None, toolkit_defaults(codecs, "x")), codecs=codecs,
        model_dir=tmp_path, default_accept=None, max_payload_mb=max_payload_mb,
        debug_errors=False, execution=ExecutionDefaults(2, "MULTI_RECORD", max_payload_mb),
        registry=ModelRegistry(tmp_path / "run").create() if registry else None)
    if load and not registry:
        runtime.load_model()
    return runtime


def client(runtime: ServingRuntime) -> FlaskClient:
    return create_app(runtime).test_client()


def test_ping_follows_the_model_state(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path, load=False)
    app = client(runtime)
    response = app.get("/ping")
    assert response.status_code == 503 and response.json["error"] == "service_unavailable"
    runtime.load_model()
    assert app.get("/ping").status_code == 200
    runtime.fail(ValueError("bad weights"))
    response = app.get("/ping")
    assert response.status_code == 503
    assert response.json == {"error": "model_load_failed", "message": "ValueError: bad weights"}


def test_invocation_with_context_and_response_headers(tmp_path: Path) -> None:
    def predict_fn(data, model, context):
        context.set_response_header("X-Id", context.inference_id or "")
        context.set_custom_attributes(context.custom_attributes or "")
        return data * 2

    app = client(runtime_for(tmp_path, predict_fn=predict_fn))
    response = app.post("/invocations", data=b"[[1, 2]]", headers={
        "Content-Type": "application/json", "Accept": "text/csv",
        "X-Amzn-SageMaker-Inference-Id": "i-1", "X-Amzn-SageMaker-Custom-Attributes": "c=2"})
    assert response.status_code == 200
    assert response.data == b"2,4\n"
    assert response.headers["Content-Type"] == "text/csv"
    assert response.headers["X-Id"] == "i-1"
    assert response.headers["X-Amzn-SageMaker-Custom-Attributes"] == "c=2"


def test_header_splitting_is_refused(tmp_path: Path) -> None:
    def predict_fn(data, model, context):
        context.set_response_header("X-Bad", "a\r\nSet-Cookie: x")

    response = client(runtime_for(tmp_path, predict_fn=predict_fn)).post(
        "/invocations", data=b"[1]", content_type="application/json")
    assert response.status_code == 500 and "line break" in response.json["message"]


def test_output_fn_may_choose_the_content_type(tmp_path: Path) -> None:
    app = client(runtime_for(tmp_path, output_fn=lambda p, accept: ("hi", "text/x-mine")))
    response = app.post("/invocations", data=b"[1]", content_type="application/json",
                        headers={"Accept": "text/x-mine"})
    assert response.status_code == 200 and response.data == b"hi"
    assert response.headers["Content-Type"] == "text/x-mine"


def test_output_fn_returning_garbage_is_a_500_naming_it(tmp_path: Path) -> None:
    app = client(runtime_for(tmp_path, output_fn=lambda p, accept: 42))
    response = app.post("/invocations", data=b"[1]", content_type="application/json")
    assert response.status_code == 500
    assert response.json["message"].startswith("output_fn raised TypeError")


def test_transform_fn(tmp_path: Path) -> None:
    seen = {}

    def transform_fn(model, body, content_type, accept):
        seen.update(content_type=content_type, accept=accept)
        return body[::-1]

    app = client(runtime_for(tmp_path, transform_fn=transform_fn))
    response = app.post("/invocations", data=b"abc", content_type="text/plain; charset=utf-8",
                        headers={"Accept": "text/plain"})
    assert response.data == b"cba"
    assert seen == {"content_type": "text/plain; charset=utf-8", "accept": "text/plain"}


def test_declared_oversized_body_is_413_and_closes(tmp_path: Path) -> None:
    app = client(runtime_for(tmp_path))
    environ = {"CONTENT_LENGTH": str(2 * 1024 * 1024), "CONTENT_TYPE": "application/json",
               "wsgi.input": io.BytesIO(b"")}
    response = app.post("/invocations", environ_overrides=environ)
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"
    assert "2097152 bytes is over the limit of 1048576" in response.json["message"]


def test_zero_payload_limit_means_unlimited(tmp_path: Path) -> None:
    app = client(runtime_for(tmp_path, max_payload_mb=0))
    body = b"[" + b"1," * (700 * 1024) + b"1]"
    assert app.post("/invocations", data=body, content_type="application/json").status_code \
        == 200


def test_execution_parameters_hook(tmp_path: Path) -> None:
    app = client(runtime_for(tmp_path, execution_parameters_fn=lambda: {"MaxPayloadInMB": 3}))
    assert app.get("/execution-parameters").json == {
        "MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 3}
    bad = client(runtime_for(tmp_path, execution_parameters_fn=lambda: {"Nope": 1}))
    assert bad.get("/execution-parameters").status_code == 500


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/nowhere", 404), ("PUT", "/invocations", 405), ("DELETE", "/ping", 405),
    ("GET", "/models", 404)])
def test_routing_errors_are_json(tmp_path: Path, method: str, path: str, status: int) -> None:
    response = client(runtime_for(tmp_path)).open(path, method=method)
    assert response.status_code == status
    assert set(response.json) == {"error", "message"}


def test_multi_model_routes_in_process(tmp_path: Path) -> None:
    (tmp_path / "m1").mkdir()
    runtime = runtime_for(tmp_path, registry=True, model_fn=lambda d: (lambda x: x + 1))
    app = client(runtime)
    assert app.post("/models", json={"model_name": "m1", "url": str(tmp_path / "m1")}) \
        .status_code == 200
    assert app.post("/models", json={"model_name": "m1", "url": str(tmp_path / "m1")}) \
        .status_code == 409
    assert app.post("/models", json={"model_name": "../x", "url": "/"}).status_code == 400
    assert app.post("/models", json={"model_name": "m2", "url": str(tmp_path / "no")}) \
        .status_code == 404
    assert app.get("/models?limit=0").status_code == 400
    assert app.get("/models?next_page_token=abc").status_code == 400
    assert app.post("/models/m1/invoke", data=b"[1]", content_type="application/json") \
        .json == [2]
    assert app.post("/invocations", data=b"[1]", content_type="application/json") \
        .status_code == 400  # the target-model header is required
    assert app.delete("/models/m1").status_code == 200
    assert app.post("/models/m1/invoke", data=b"[1]", content_type="application/json") \
        .status_code == 404
