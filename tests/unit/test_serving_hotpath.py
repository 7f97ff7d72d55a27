"""The lean WSGI hot path answers exactly as the Flask routes do, and leaves the rest to Flask."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest

from toolkit.serving.app import CLOSE_CONNECTION, close_connection_when_asked, create_app
from toolkit.serving.hotpath import HotPath, status_line
from toolkit.serving.invoke import set_header

from .test_serving_app import runtime_for

Reply = tuple[str, list[tuple[str, str]], bytes]


def environ(method: str, path: str, body: bytes = b"", **headers: str) -> dict[str, Any]:
    env: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
                           "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080",
                           "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
                           "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO()}
    if body or method == "POST":
        env["CONTENT_LENGTH"] = str(len(body))
    for name, value in headers.items():
        key = name.upper()
        env[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return env


def call(app: Any, env: dict[str, Any]) -> Reply:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen.update(status=status, headers=headers)

    result = app(env, start_response)
    try:
        body = b"".join(result)
    finally:
        getattr(result, "close", lambda: None)()
    return seen["status"], list(seen["headers"]), body


def both(hot: HotPath, method: str, path: str, body: bytes = b"", **headers: str
         ) -> tuple[Reply, Reply]:
    """The same request through the hot path and through Flask's own routes."""
    return (call(hot, environ(method, path, body, **headers)),
            call(hot.fallback, environ(method, path, body, **headers)))


def hot_path(tmp_path: Path, **kwargs: Any) -> HotPath:
    app = create_app(runtime_for(tmp_path, **kwargs))
    assert isinstance(app.wsgi_app, HotPath)
    return app.wsgi_app


def predict_with_headers(data: Any, model: Any, context: Any) -> Any:
    context.set_response_header("X-Id", context.inference_id or "none")
    context.set_response_header("content-type", "application/json")  # replaces, like Werkzeug
    context.set_custom_attributes(context.custom_attributes or "")
    return data


@pytest.mark.parametrize(("method", "path", "body", "headers"), [
    ("GET", "/ping", b"", {}),
    ("HEAD", "/ping", b"", {}),
    ("POST", "/invocations", b"[[1, 2]]", {"CONTENT_TYPE": "application/json"}),
    ("POST", "/invocations", b"[[1, 2]]", {"CONTENT_TYPE": "application/json",
                                           "ACCEPT": "text/csv;q=0.5, application/x-npy;q=0.1"}),
    ("POST", "/invocations", b"1,2\n", {"CONTENT_TYPE": "text/csv; charset=utf-8",
                                        "ACCEPT": "*/*"}),
    ("POST", "/invocations", b"[[1, 2]]", {"CONTENT_TYPE": "application/json",
                                           "ACCEPT": "image/png"}),  # 406
    ("POST", "/invocations", b"[[1, 2]]", {"CONTENT_TYPE": "image/png"}),  # 415
    ("POST", "/invocations", b"[[1, 2]]", {}),  # no Content-Type: 415
    ("POST", "/invocations", b"[[1, 2]]", {"CONTENT_TYPE": "csv"}),  # malformed: 400
    ("POST", "/invocations", b"[[1, 2", {"CONTENT_TYPE": "application/json"}),  # 400
    ("POST", "/invocations", b"[1]", {"CONTENT_TYPE": "application/json",
                                      "X_AMZN_SAGEMAKER_INFERENCE_ID": "i-9",
                                      "X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES": "a=1"}),
])
def test_hot_routes_answer_exactly_like_flask(tmp_path: Path, method: str, path: str,
                                              body: bytes, headers: dict[str, str]) -> None:
    hot = hot_path(tmp_path, predict_fn=predict_with_headers)
    fast, flask = both(hot, method, path, body, **headers)
    assert fast == flask


def test_ping_states_and_head_have_no_body(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path, load=False)
    hot = create_app(runtime).wsgi_app
    fast, flask = both(hot, "GET", "/ping")
    assert fast == flask and fast[0] == "503 SERVICE UNAVAILABLE"
    runtime.fail(ValueError("bad weights"))
    fast, flask = both(hot, "HEAD", "/ping")
    assert fast == flask and fast[2] == b"" and ("Content-Length", "65") in fast[1]


def test_user_errors_and_debug_tracebacks_match(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    def predict_fn(data, model):
        raise RuntimeError("boom")

    runtime = runtime_for(tmp_path, predict_fn=predict_fn)
    hot = create_app(runtime).wsgi_app
    with caplog.at_level(logging.ERROR, logger="optml.serving"):
        fast, flask = both(hot, "POST", "/invocations", b"[1]", CONTENT_TYPE="application/json")
    assert fast == flask and fast[0] == "500 INTERNAL SERVER ERROR"
    assert b"predict_fn raised RuntimeError: boom" in fast[2]
    assert [r.getMessage() for r in caplog.records] == [
        "POST /invocations -> 500: predict_fn raised RuntimeError: boom"] * 2
    runtime.debug_errors = True
    fast, _ = both(hot, "POST", "/invocations", b"[1]", CONTENT_TYPE="application/json")
    assert b'"traceback"' in fast[2]


def test_declared_oversized_body_is_413_and_asks_to_close(tmp_path: Path) -> None:
    hot = hot_path(tmp_path)
    env = environ("POST", "/invocations", CONTENT_TYPE="application/json")
    env["CONTENT_LENGTH"] = str(2 * 1024 * 1024)
    status, _, body = call(hot, env)
    assert status.startswith("413") and b"payload_too_large" in body
    assert env[CLOSE_CONNECTION] is True

    closed = []

    class Owner:
        def force_close(self) -> None:
            closed.append(True)

        def start_response(self, *args: Any) -> None:
            pass

    app = close_connection_when_asked(create_app(runtime_for(tmp_path)))
    env = environ("POST", "/invocations", CONTENT_TYPE="application/json")
    env["CONTENT_LENGTH"] = str(2 * 1024 * 1024)
    app(env, Owner().start_response)
    assert closed == [True]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/execution-parameters"), ("PUT", "/invocations"), ("POST", "/ping"),
    ("GET", "/ping/"), ("GET", "//ping"), ("GET", "/nowhere"), ("OPTIONS", "/ping")])
def test_everything_else_is_left_to_flask(tmp_path: Path, method: str, path: str) -> None:
    calls = []
    hot = hot_path(tmp_path)
    flask = hot.fallback

    def spy(env: dict[str, Any], start_response: Any) -> Any:
        calls.append(env["PATH_INFO"])
        return flask(env, start_response)

    hot.fallback = spy
    call(hot, environ(method, path))
    assert calls == [path]


def test_multi_model_invoke_through_the_hot_path(tmp_path: Path) -> None:
    (tmp_path / "m1").mkdir()
    runtime = runtime_for(tmp_path, registry=True, model_fn=lambda d: (lambda x: x + 1))
    app = create_app(runtime)
    hot = app.wsgi_app
    client = app.test_client()
    assert client.post("/models", json={"model_name": "m1", "url": str(tmp_path / "m1")}) \
        .status_code == 200
    for path, headers in [("/models/m1/invoke", {}),
                          ("/invocations", {"X_AMZN_SAGEMAKER_TARGET_MODEL": "m1"}),
                          ("/invocations", {}),  # 400: the target header is required
                          ("/models/nope/invoke", {}),  # 404
                          ("/models//m1/invoke", {})]:  # odd path: Flask decides
        fast, flask = both(hot, "POST", path, b"[1]", CONTENT_TYPE="application/json", **headers)
        assert fast == flask
    assert call(hot, environ("POST", "/models/m1/invoke", b"[1]",
                             CONTENT_TYPE="application/json"))[2] == b"[2]"


def test_set_header_replaces_case_insensitively_like_werkzeug() -> None:
    headers = [("Content-Type", "a/b"), ("X-A", "1"), ("x-a", "2")]
    set_header(headers, "X-a", "3")
    set_header(headers, "X-New", "4")
    assert headers == [("Content-Type", "a/b"), ("X-a", "3"), ("X-New", "4")]


def test_status_lines_are_werkzeugs() -> None:
    assert status_line(413) == "413 REQUEST ENTITY TOO LARGE"
    assert status_line(599) == "599 UNKNOWN"


def test_a_codec_registered_after_start_up_is_negotiated(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path)
    hot = create_app(runtime).wsgi_app
    request = ("POST", "/invocations", b"[1]")
    headers = {"CONTENT_TYPE": "application/json", "ACCEPT": "text/x-new"}
    assert call(hot, environ(*request, **headers))[0].startswith("406")
    runtime.codecs.register("text/x-new", encode=lambda prediction: b"new")
    assert call(hot, environ(*request, **headers))[2] == b"new"
