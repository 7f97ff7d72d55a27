"""Micro-batching under concurrency: every request gets its own answer, none lost or crossed."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.integration.test_serve_support import Server, model_tree

INFERENCE = """
    import os
    import time
    from pathlib import Path

    batch_max_size = 16
    batch_max_wait_ms = 20

    def model_fn(model_dir):
        return Path(model_dir)

    def input_fn(body, content_type):
        import json
        return json.loads(body)

    def batch_predict_fn(inputs, model_dir):
        with open(model_dir / "batches.log", "a") as log:
            log.write(f"{os.getpid()} {len(inputs)}\\n")
        time.sleep(0.05)  # a batch costs about what one row costs
        return [{"id": item["id"], "square": item["id"] ** 2} for item in inputs]

    def output_fn(prediction, accept):
        import json
        return json.dumps(prediction), "application/json"
"""


def test_concurrent_requests_are_batched_and_answered_individually(tmp_path: Path) -> None:
    server = Server(model_tree(tmp_path, INFERENCE), args=["--threads", "16"])
    try:
        server.wait_ready()

        def call(i: int) -> dict[str, int]:
            response = requests.post(server.url("/invocations"), data=json.dumps({"id": i}),
                                     headers={"Content-Type": "application/json"}, timeout=60)
            assert response.status_code == 200, response.text
            return response.json()

        with ThreadPoolExecutor(max_workers=24) as pool:
            answers = list(pool.map(call, range(200)))
        assert answers == [{"id": i, "square": i * i} for i in range(200)]
        sizes = [int(line.split()[1]) for line in
                 (tmp_path / "model" / "batches.log").read_text().splitlines()]
        assert sum(sizes) == 200
        assert max(sizes) > 1  # requests really were predicted together
        assert max(sizes) <= 16
    finally:
        server.stop()


FAILING = """
    batch_max_size = 4

    def model_fn(model_dir):
        return None

    def batch_predict_fn(inputs, model):
        return inputs[:-1]  # one output short: the whole batch must fail, loudly
"""


def test_wrong_batch_length_fails_every_request_of_the_batch(tmp_path: Path) -> None:
    server = Server(model_tree(tmp_path, FAILING))
    try:
        server.wait_ready()
        response = requests.post(server.url("/invocations"), data=b"[1]", timeout=60,
                                 headers={"Content-Type": "application/json"})
        assert response.status_code == 500
        assert "batch_predict_fn" in response.json()["message"]
        assert "0 outputs for 1 inputs" in response.json()["message"]
    finally:
        server.stop()


def test_default_threads_let_batches_grow_past_four(tmp_path: Path) -> None:
    """No --threads: with batch_predict_fn each worker runs batch_max_size request threads, so a
    batch can hold more than the 4 requests the plain default would allow."""
    inference = INFERENCE.replace("batch_max_size = 16", "batch_max_size = 8")
    server = Server(model_tree(tmp_path, inference), env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    try:
        server.wait_ready()

        def call(i: int) -> int:
            response = requests.post(server.url("/invocations"), data=json.dumps({"id": i}),
                                     headers={"Content-Type": "application/json"}, timeout=60)
            assert response.status_code == 200, response.text
            return response.json()["square"]

        with ThreadPoolExecutor(max_workers=16) as pool:
            assert list(pool.map(call, range(96))) == [i * i for i in range(96)]
        sizes = [int(line.split()[1]) for line in
                 (tmp_path / "model" / "batches.log").read_text().splitlines()]
        assert sum(sizes) == 96 and 4 < max(sizes) <= 8
        assert "micro-batching: 8 request threads per worker" in server.log
    finally:
        server.stop()
