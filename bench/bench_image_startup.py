"""Cold start of an optml image: ``docker run IMAGE serve`` to the first 200 on /ping.

Peer, measured in the same run and the same image (same layers, same page cache): a bare
``python3 -m http.server`` started the same way. The ratio says what optml's serving start-up
(settings, handler resolution, model load, gunicorn with a preloaded worker) costs on top of
starting a container with a Python process listening on a port.

Usage: .venv/bin/python bench/bench_image_startup.py [--image optml/sklearn:latest] [--runs 5]
Needs a running engine and the image built (scripts/build-images.sh sklearn).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import docker
import requests

LABELS = {"org.optml.bench": "image-startup"}
TRAIN_SMALL_MODEL = (
    "import joblib, numpy as np; from sklearn.tree import DecisionTreeClassifier; "
    "rng = np.random.default_rng(0); x = rng.random((200, 4)); "
    "joblib.dump(DecisionTreeClassifier(max_depth=4).fit(x, x[:, 0] > 0.5), "
    "'/opt/ml/model/model.joblib')")


def time_to_first_200(client: docker.DockerClient, image: str, command: Sequence[str],
                      path: str, timeout: float = 120.0, **kwargs: object) -> float:
    """Seconds from asking the engine to run the container to the first 200 on ``path``."""
    started = time.perf_counter()
    container = client.containers.run(image, list(command), detach=True, labels=LABELS,
                                      ports={"8080/tcp": ("127.0.0.1", None)}, **kwargs)
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{port}{path}"
        while time.perf_counter() - started < timeout:
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return time.perf_counter() - started
            except requests.RequestException:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{image} {command}: no 200 on {path} within {timeout}s:\n"
                           f"{container.logs().decode(errors='replace')[-2000:]}")
    finally:
        container.remove(force=True, v=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="optml/sklearn:latest")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    client = docker.from_env(timeout=300)
    with tempfile.TemporaryDirectory(prefix="optml-bench-") as tmp:
        model_dir = Path(tmp, "model")
        model_dir.mkdir()
        model_dir.chmod(0o777)
        volumes = {str(model_dir): {"bind": "/opt/ml/model", "mode": "rw"}}
        client.containers.run(args.image, ["python", "-c", TRAIN_SMALL_MODEL], volumes=volumes,
                              labels=LABELS, remove=True)
        optml_times, peer_times = [], []
        for _ in range(args.runs):  # interleaved, so drift in machine load hits both alike
            optml_times.append(time_to_first_200(
                client, args.image, ["serve"], "/ping", volumes=volumes,
                environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}))
            peer_times.append(time_to_first_200(
                client, args.image, ["-m", "http.server", "8080"], "/",
                entrypoint=["python3"]))
        for leftover in client.containers.list(all=True, filters={"label": "org.optml.bench"}):
            leftover.remove(force=True)
    optml_median = statistics.median(optml_times)
    peer_median = statistics.median(peer_times)
    print(f"image: {args.image}, runs: {args.runs} (median; min-max)")
    print(f"optml serve -> first 200 /ping : {optml_median:6.2f} s "
          f"({min(optml_times):.2f}-{max(optml_times):.2f})")
    print(f"python3 -m http.server -> 200 / : {peer_median:6.2f} s "
          f"({min(peer_times):.2f}-{max(peer_times):.2f})")
    print(f"ratio optml / http.server: {optml_median / peer_median:.2f}x")


if __name__ == "__main__":
    main()
