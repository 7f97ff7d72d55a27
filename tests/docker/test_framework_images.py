"""Each framework image, as a real container: train a model, serve it, stop, fail.

``docker run IMAGE train`` on a mounted /opt/ml tree trains with the user's script and leaves
the model in /opt/ml/model; ``docker run IMAGE serve`` on that tree answers /ping and predicts
what the same model predicts on the host; ``docker stop`` ends the server cleanly.
"""

from __future__ import annotations

from pathlib import Path

import docker
import numpy as np
import pytest
import requests

from tests.docker import harness
from tests.docker.frameworks import TRAINED, TrainedFramework, dataset, export_onnx_linear, probes

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SERVE_ENV = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
STOP_GRACE = 30


def _serve_and_check(client: docker.DockerClient, image: str, tree: harness.OptMlTree,
                     expected: np.ndarray, x: np.ndarray) -> None:
    """Serve ``tree``'s model, compare /invocations with ``expected``, then stop the server."""
    with harness.running(client, image, ["serve"], volumes=tree.volumes(), environment=SERVE_ENV,
                         ports={"8080/tcp": ("127.0.0.1", None)}) as server:
        base = f"http://127.0.0.1:{harness.published_port(server)}"
        harness.wait_until_ready(server, f"{base}/ping")
        response = requests.post(f"{base}/invocations", data=harness.csv_text(x),
                                 headers={"Content-Type": "text/csv",
                                          "Accept": "application/json"}, timeout=60)
        assert response.status_code == 200, response.text
        served = np.asarray(response.json(), dtype=np.float64)
        np.testing.assert_allclose(served.reshape(expected.shape), expected, rtol=1e-5,
                                   atol=1e-6)

        server.stop(timeout=STOP_GRACE)
        status = server.wait(timeout=STOP_GRACE + 30)["StatusCode"]
        logs = server.logs().decode(errors="replace")
        # 137 would mean docker had to SIGKILL it: the server must drain and exit on SIGTERM.
        assert status == 0, f"serve exited {status} on docker stop:\n{logs[-3000:]}"


@pytest.mark.parametrize("framework", TRAINED, ids=lambda f: f.name)
def test_train_then_serve_round_trip(docker_client: docker.DockerClient,
                                     images: dict[str, str], tmp_path: Path,
                                     framework: TrainedFramework) -> None:
    image = images[framework.name]
    train = dataset()
    tree = harness.OptMlTree.create(
        tmp_path / "ml", hyperparameters=framework.hyperparameters,
        channels={"train": {"part-0.csv": harness.csv_text(train[:40]),
                            "part-1.csv": harness.csv_text(train[40:])}},
        code={"train.py": framework.train_script})
    try:
        status, logs = harness.run_to_completion(
            docker_client, image, ["train"], volumes=tree.volumes(),
            environment={"SAGEMAKER_PROGRAM": "train.py"})
        assert status == 0, logs[-4000:]
        assert (tree.model_dir / framework.model_file).is_file(), logs[-4000:]
        assert not tree.failure_file.exists()

        x = probes()
        expected = np.asarray(framework.host_predict(tree.model_dir, x), dtype=np.float64)
        _serve_and_check(docker_client, image, tree, expected, x)
    finally:
        harness.reclaim(docker_client, image, tmp_path)


def test_onnx_image_serves_a_model_made_on_the_host(docker_client: docker.DockerClient,
                                                    images: dict[str, str],
                                                    tmp_path: Path) -> None:
    tree = harness.OptMlTree.create(tmp_path / "ml")
    host_predict = export_onnx_linear(tree.model_dir / "model.onnx")
    x = probes()
    try:
        _serve_and_check(docker_client, images["onnx"], tree, host_predict(x).astype(np.float64),
                         x)
    finally:
        harness.reclaim(docker_client, images["onnx"], tmp_path)


FAILING_SCRIPT = '''
import sys
print("starting, then failing", flush=True)
def load_data():
    raise ValueError("no rows in channel train (made-up failure)")
load_data()
'''


@pytest.mark.parametrize("user", [None, "1000:1000"], ids=["root", "uid-1000"])
def test_failing_user_script_leaves_failure_file_and_exit_code(
        docker_client: docker.DockerClient, images: dict[str, str], tmp_path: Path,
        user: str | None) -> None:
    tree = harness.OptMlTree.create(tmp_path / "ml", code={"train.py": FAILING_SCRIPT})
    try:
        status, logs = harness.run_to_completion(
            docker_client, images["sklearn"], ["train"], volumes=tree.volumes(), user=user,
            environment={"SAGEMAKER_PROGRAM": "train.py"})
        assert status == 1, logs[-4000:]
        assert "starting, then failing" in logs
        failure = tree.failure_file.read_text()
        assert "no rows in channel train (made-up failure)" in failure
        assert "ValueError" in failure
    finally:
        harness.reclaim(docker_client, images["sklearn"], tmp_path)
