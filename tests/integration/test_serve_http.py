"""``optml serve`` over real HTTP: every codec both ways, negotiation, and every error status."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator

import numpy as np
import pytest
import requests
import scipy.sparse as sp

from tests.integration.test_serve_support import Server, model_tree
from toolkit.formats import csv as csv_format
from toolkit.formats import jsonlines, libsvm, npy, parquet, recordio_protobuf

INFERENCE = """
    import os
    import numpy as np
    from toolkit.serving import HTTPError

    class Teapot(Exception):
        status_code = 418

    class Model:
        def predict(self, data):
            if isinstance(data, dict) and "raise" in data:
                kind = data["raise"]
                if kind == "value":
                    raise ValueError("bad value from the model")
                if kind == "memory":
                    raise MemoryError()
                if kind == "teapot":
                    raise Teapot("short and stout")
                if kind == "http":
                    raise HTTPError(429, "slow down")
            if isinstance(data, dict):
                return {k: np.asarray(v) * 2 for k, v in data.items()}
            if isinstance(data, list):
                return data
            return data * 2

    def model_fn(model_dir):
        return Model()

    def predict_fn(data, model, context):
        if context.custom_attributes:
            context.set_custom_attributes("echo:" + context.custom_attributes)
        if context.inference_id:
            context.set_response_header("X-Seen-Inference-Id", context.inference_id)
        return model.predict(data)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = model_tree(tmp_path_factory.mktemp("serve-http"), INFERENCE)
    srv = Server(base, env={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1",
                            "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "3",
                            "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD"})
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


def post(server: Server, body: bytes, content_type: str | None, accept: str | None = None,
         **headers: str) -> requests.Response:
    sent = dict(headers)
    if content_type is not None:
        sent["Content-Type"] = content_type
    if accept is not None:
        sent["Accept"] = accept
    return requests.post(server.url("/invocations"), data=body, headers=sent, timeout=30)


MATRIX = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)


def _parquet_bytes(array: np.ndarray) -> bytes:
    return parquet.encode_parquet(array)


ROUND_TRIPS = {
    "application/json": (lambda a: json.dumps(a.tolist()).encode(),
                         lambda b: np.asarray(json.loads(b))),
    "text/csv": (csv_format.encode_csv, lambda b: csv_format.read_csv(b, label_size=0)[0]),
    "application/x-npy": (npy.encode_npy, npy.decode_npy),
    "application/x-recordio-protobuf": (recordio_protobuf.encode_dense,
                                        lambda b: recordio_protobuf.decode(b).features),
    "application/x-parquet": (_parquet_bytes, parquet.read_parquet_array),
}


@pytest.mark.parametrize("mime", sorted(ROUND_TRIPS))
def test_dense_codecs_round_trip(server: Server, mime: str) -> None:
    encode, decode = ROUND_TRIPS[mime]
    response = post(server, encode(MATRIX), mime, mime)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == mime
    np.testing.assert_allclose(np.asarray(decode(response.content), dtype=np.float64),
                               MATRIX * 2)


def test_jsonlines_round_trip(server: Server) -> None:
    items = [{"a": 1}, [1, 2], "text"]
    response = post(server, jsonlines.encode_jsonlines(items), "application/jsonlines",
                    "application/jsonlines")
    assert response.status_code == 200, response.text
    assert jsonlines.read_jsonlines(response.content) == items


def test_npz_round_trip(server: Server) -> None:
    body = npy.encode_npz({"x": MATRIX, "y": np.arange(3)})
    response = post(server, body, "application/x-npz", "application/x-npz")
    assert response.status_code == 200, response.text
    decoded = npy.decode_npz(response.content)
    np.testing.assert_allclose(decoded["x"], MATRIX * 2)
    np.testing.assert_array_equal(decoded["y"], np.arange(3) * 2)


def test_libsvm_round_trip(server: Server) -> None:
    matrix = sp.csr_matrix(MATRIX)
    response = post(server, libsvm.encode_libsvm(matrix), "text/libsvm", "text/libsvm")
    assert response.status_code == 200, response.text
    back = libsvm.read_libsvm(response.content, n_features=3).features
    np.testing.assert_allclose(back.toarray(), MATRIX * 2)


def test_sparse_recordio_request_answers_json(server: Server) -> None:
    body = recordio_protobuf.encode_sparse(sp.csr_matrix(MATRIX))
    response = post(server, body, "application/x-recordio-protobuf", "application/json")
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(np.asarray(response.json()), MATRIX * 2)


@pytest.mark.parametrize(("accept", "expected"), [
    (None, "application/json"),
    ("*/*", "application/json"),
    ("text/csv;q=0.9, application/x-npy;q=0.5", "text/csv"),
    ("application/json; charset=utf-8", "application/json"),
    ("text/*", "text/csv"),
    ("application/x-npy;q=0, */*;q=0.1", "application/json"),
    ("image/png, text/csv;q=0.2", "text/csv"),
])
def test_accept_negotiation(server: Server, accept: str | None, expected: str) -> None:
    response = post(server, b"[[1, 2]]", "application/json", accept)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == expected


def test_content_type_parameters(server: Server) -> None:
    response = post(server, b"9,1,2\n9,3,4\n", "text/csv; label_size=1; charset=utf-8",
                    "application/json")
    assert response.status_code == 200, response.text
    assert response.json() == [[2, 4], [6, 8]]


def test_context_headers_echoed(server: Server) -> None:
    response = post(server, b"[1]", "application/json", None,
                    **{"X-Amzn-SageMaker-Custom-Attributes": "trace=1",
                       "X-Amzn-SageMaker-Inference-Id": "id-7"})
    assert response.status_code == 200
    assert response.headers["X-Amzn-SageMaker-Custom-Attributes"] == "echo:trace=1"
    assert response.headers["X-Seen-Inference-Id"] == "id-7"


def _expect_error(response: requests.Response, status: int, error: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]
    assert "traceback" not in body and "Traceback" not in body["message"]
    return body


@pytest.mark.parametrize(("body", "status", "error", "needle"), [
    (b'{"raise": "value"}', 500, "internal_server_error", "bad value from the model"),
    (b'{"raise": "memory"}', 507, "insufficient_storage", "out of memory"),
    (b'{"raise": "teapot"}', 418, "im_a_teapot", "short and stout"),
    (b'{"raise": "http"}', 429, "too_many_requests", "slow down"),
    (b'{"unterminated": ', 400, "bad_request", "invalid JSON"),
])
def test_error_statuses(server: Server, body: bytes, status: int, error: str,
                        needle: str) -> None:
    found = _expect_error(post(server, body, "application/json"), status, error)
    assert needle in found["message"]


def test_unsupported_content_type_is_415(server: Server) -> None:
    _expect_error(post(server, b"x", "image/png"), 415, "unsupported_media_type")
    _expect_error(post(server, b"x", None), 415, "unsupported_media_type")


def test_unacceptable_accept_is_406(server: Server) -> None:
    _expect_error(post(server, b"[1]", "application/json", "image/png"), 406, "not_acceptable")


def test_unknown_route_and_method(server: Server) -> None:
    _expect_error(requests.get(server.url("/nope"), timeout=10), 404, "not_found")
    _expect_error(requests.get(server.url("/invocations"), timeout=10), 405,
                  "method_not_allowed")
    _expect_error(requests.post(server.url("/ping"), timeout=10), 405, "method_not_allowed")


def test_pickled_npy_and_npz_are_refused(server: Server) -> None:
    objects = np.array([{"a": 1}, None], dtype=object)
    buffer = io.BytesIO()
    np.save(buffer, objects, allow_pickle=True)
    _expect_error(post(server, buffer.getvalue(), "application/x-npy"), 400, "bad_request")
    buffer = io.BytesIO()
    np.savez(buffer, x=objects)
    _expect_error(post(server, buffer.getvalue(), "application/x-npz"), 400, "bad_request")


def _raw_request(server: Server, head: bytes, body: bytes = b"") -> bytes:
    """Send raw bytes and read the response until the server closes or sends it whole."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        header, _, rest = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in header.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return header + b"\r\n\r\n" + rest


def test_oversized_content_length_is_refused_before_the_body(server: Server) -> None:
    # 100 MiB announced, 2 bytes sent: the answer must come from the header alone.
    head = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n")
    response = _raw_request(server, head, b"[1")
    status_line, _, rest = response.partition(b"\r\n")
    assert b" 413 " in status_line
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["error"] == "payload_too_large"
    assert "1048576" in body["message"]


def test_chunked_body_over_the_limit_is_413(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"1" * 65536  # 2.5 MiB in all, limit is 1 MiB

    response = requests.post(server.url("/invocations"), data=chunks(),
                             headers={"Content-Type": "text/csv"}, timeout=30)
    _expect_error(response, 413, "payload_too_large")


def test_chunked_body_under_the_limit_is_served(server: Server) -> None:
    response = requests.post(server.url("/invocations"), data=iter([b"[[1,", b" 2]]"]),
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == [[2, 4]]


def test_execution_parameters(server: Server) -> None:
    response = requests.get(server.url("/execution-parameters"), timeout=10)
    assert response.status_code == 200
    assert response.json() == {"MaxConcurrentTransforms": 3, "BatchStrategy": "SINGLE_RECORD",
                               "MaxPayloadInMB": 1}


def test_ping_is_empty_200(server: Server) -> None:
    response = requests.get(server.url("/ping"), timeout=10)
    assert response.status_code == 200
    assert response.content == b""


def test_server_log_has_no_server_side_faults(server: Server) -> None:
    # user errors are logged with their traceback; server-side faults never appear
    assert "Unhandled exception" not in server.log
    assert "internal server error" not in server.log
