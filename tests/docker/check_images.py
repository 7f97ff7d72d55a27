"""Tiny images for the ``optml check`` tests: one plain-Python program (no optml inside) whose
``BROKEN`` environment variable picks the one contract rule it breaks.

With ``BROKEN`` unset it follows the contract, so the same image shows that every check can
pass on an image nobody built with optml. Built in memory on the Debian stand-in base (cached
by the engine after the first build).
"""

from __future__ import annotations

import docker

from tests.docker import harness

TAG = "optml-test/check-broken:latest"

PROGRAM = r'''
import json, os, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BROKEN = os.environ.get("BROKEN", "")
MODEL, FAILURE = "/opt/ml/model", "/opt/ml/output/failure"
TRAIN_DATA = "/opt/ml/input/data/train"


def train():
    if BROKEN == "no-model":
        print("pretending to train", flush=True)
        return 0
    if BROKEN == "no-failure-file":
        print("failing without a word in the failure file", file=sys.stderr, flush=True)
        return 3
    if BROKEN == "ignore-sigterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(120)
    if not os.path.isdir(TRAIN_DATA):
        with open(FAILURE, "w") as out:
            out.write("ValueError: no train channel")
        return 1
    rows = sum(1 for name in os.listdir(TRAIN_DATA) for _ in open(os.path.join(TRAIN_DATA, name)))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait(1.5)  # "training": long enough for the SIGTERM check, which ends it early
    with open(os.path.join(MODEL, "model.json"), "w") as out:
        json.dump({"rows": rows}, out)
    return 143 if stop.is_set() else 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/ping":
            return self.answer(404, b'{"error": "not found"}')
        self.answer(503 if BROKEN == "ping-never" else 200, b"")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if BROKEN == "invocations-500":
            return self.answer(500, b'{"error": "always failing"}')
        if BROKEN != "unsupported-200" and self.headers.get("Content-Type") != "text/csv":
            return self.answer(415, b'{"error": "text/csv only"}')
        try:
            rows = [[float(v) for v in line.split(",")] for line in body.decode().splitlines()]
        except ValueError:
            if BROKEN == "unsupported-200":
                rows = []
            else:
                return self.answer(400, b'{"error": "not numeric CSV"}')
        self.answer(200, json.dumps([sum(r) for r in rows]).encode())

    def log_message(self, *args):
        pass


def serve():
    if BROKEN == "slow-start":
        time.sleep(2.5)
    server = ThreadingHTTPServer(("0.0.0.0", 8080), Handler)
    server.daemon_threads = False
    if BROKEN == "drop-on-sigterm":
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    else:
        # stop accepting, finish what is in flight (server_close joins request threads), exit
        signal.signal(signal.SIGTERM,
                      lambda *_: threading.Thread(target=server.shutdown).start())
    print("serving on 8080", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


sys.exit(train() if sys.argv[1:2] == ["train"] else serve())
'''

DOCKERFILE = """FROM {base}
COPY program.py /program.py
ENTRYPOINT ["python3", "/program.py"]
"""

FRAMEWORKS = ("sklearn", "xgboost", "onnx", "pytorch")
FRAMEWORK_DOCKERFILE = """FROM optml/{framework}:latest
COPY train.py /opt/ml/code/
"""
ONNX_TRAIN = """
import glob, os
import numpy as np

files = sorted(glob.glob(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "*.csv")))
data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
features = np.column_stack([data[:, 1:], np.ones(len(data))])
weights, *_ = np.linalg.lstsq(features, data[:, 0], rcond=None)
np.save(os.path.join(os.environ["SM_MODEL_DIR"], "weights.npy"), weights)
"""
"""What a user of optml/onnx trains in that image: the image has ONNX Runtime and numpy, nothing
that writes ONNX (models are exported where they are made), so it fits weights with numpy."""

BASE_TAG = "optml-test/check-base:latest"
BASE_DOCKERFILE = """FROM optml/base:latest
COPY train.py inference.py /opt/ml/code/
"""
BASE_TRAIN = """
import json, os, time
directory = os.environ["SM_CHANNEL_TRAIN"]
rows = sum(1 for name in os.listdir(directory) for _ in open(os.path.join(directory, name)))
for epoch in range(20):  # two seconds of "epochs": long enough to be stopped in the middle
    time.sleep(0.1)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as out:
    json.dump({"rows": rows}, out)
"""
BASE_INFERENCE = """
import json, os


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        return json.load(f)


def predict_fn(data, model):
    return [[float(sum(row))] for row in data.tolist()]
"""


def build_broken(client: docker.DockerClient) -> str:
    return harness.build_in_memory(client, TAG, DOCKERFILE.format(base=harness.STANDIN_BASE),
                                   {"program.py": (PROGRAM, 0o644)})


def build_base(client: docker.DockerClient) -> str:
    """optml/base with a trivial training script and a two-function inference.py."""
    return harness.build_in_memory(client, BASE_TAG, BASE_DOCKERFILE,
                                   {"train.py": (BASE_TRAIN, 0o644),
                                    "inference.py": (BASE_INFERENCE, 0o644)})


def framework_tag(framework: str) -> str:
    return f"optml-test/check-{framework}:latest"


def build_framework(client: docker.DockerClient, framework: str, train_script: str) -> str:
    """optml/<framework> with a training script in /opt/ml/code, as the README shows (no
    SAGEMAKER_PROGRAM: the toolkit finds train.py), serving with the image's default handlers."""
    return harness.build_in_memory(client, framework_tag(framework),
                                   FRAMEWORK_DOCKERFILE.format(framework=framework),
                                   {"train.py": (train_script, 0o644)})
