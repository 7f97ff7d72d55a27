"""Fuzzing a running server with hypothesis: hostile headers and bodies never make the server
itself answer 500 or die (the model here cannot fail, so any 5xx would be the server's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.test_serve_support import Server, model_tree
from toolkit.formats import csv as csv_format
from toolkit.formats import jsonlines, libsvm, npy, recordio_protobuf

INFERENCE = """
    import numpy as np

    def model_fn(model_dir):
        return None

    def predict_fn(data, model):
        # always encodable by every codec: a 1x1 float matrix
        return np.array([[float(len(type(data).__name__))]], dtype=np.float32)
"""

TYPES = ["application/json", "text/csv", "application/jsonlines", "application/x-npy",
         "application/x-npz", "application/x-recordio-protobuf", "text/libsvm",
         "application/x-parquet"]
VISIBLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)

_matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
VALID = [b"[[1,2],[3,4]]", csv_format.encode_csv(_matrix), jsonlines.encode_jsonlines([1, {}]),
         npy.encode_npy(_matrix), npy.encode_npz({"x": _matrix}),
         recordio_protobuf.encode_dense(_matrix), libsvm.encode_libsvm(_matrix)]


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "valid", "mutated", "truncated"]))
    if kind == "random":
        return draw(st.binary(max_size=512))
    body = draw(st.sampled_from(VALID))
    if kind == "truncated":
        return body[:draw(st.integers(0, len(body)))]
    if kind == "mutated" and body:
        index = draw(st.integers(0, len(body) - 1))
        return body[:index] + bytes([draw(st.integers(0, 255))]) + body[index + 1:]
    return body


content_types = st.one_of(
    st.sampled_from(TYPES),
    st.builds(lambda t, p: f"{t}; {p}", st.sampled_from(TYPES), VISIBLE),
    VISIBLE)
accepts = st.one_of(st.none(), st.sampled_from(TYPES + ["*/*", "text/*", "image/png"]),
                    VISIBLE, st.lists(st.sampled_from(TYPES + ["*/*;q=0.1", "x;q=abc"]),
                                      max_size=4).map(", ".join))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(model_tree(tmp_path_factory.mktemp("serve-fuzz"), INFERENCE),
                 env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


ALLOWED = {200, 400, 406, 413, 415}


def _check(response: requests.Response) -> None:
    assert response.status_code in ALLOWED, (response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "message"}


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies(), content_type=content_types, accept=accepts, attributes=VISIBLE)
def test_invocations_never_fail_on_the_server_side(server: Server, session: requests.Session,
                                                   body: bytes, content_type: str,
                                                   accept: str | None, attributes: str) -> None:
    headers = {"Content-Type": content_type.strip() or "x",
               "X-Amzn-SageMaker-Custom-Attributes": attributes.strip() or "-"}
    if accept is not None and accept.strip():
        headers["Accept"] = accept.strip()
    _check(session.post(server.url("/invocations"), data=body, headers=headers, timeout=30))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                  exclude_characters="#?%"), max_size=30),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
def test_any_route_and_method_answers_json(server: Server, session: requests.Session,
                                           path: str, method: str) -> None:
    response = session.request(method, server.url("/" + path), data=b"{}", timeout=30,
                               headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()) == {"error", "message"}


def test_server_survived_the_fuzzing(server: Server, session: requests.Session) -> None:
    assert session.get(server.url("/ping"), timeout=30).status_code == 200
    assert server.proc.poll() is None
    assert "internal server error" not in server.log
    assert Path(server.log_path).exists()
