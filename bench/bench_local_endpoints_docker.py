"""Local endpoints on Docker: deploy-to-first-invoke against the bare container's own start-up.

Same run, same image, same model artifact:

- **bare**: ``docker run -p 127.0.0.1::8080 IMAGE serve`` with the model mounted, timed from the
  create call to the first ``GET /ping`` 200 (polled every 10 ms);
- **endpoint**: ``create_endpoint`` (Docker backend, one instance) to the first successful
  ``invoke_endpoint`` through the router (retried every 10 ms).

The difference is what local mode adds (runner start, network, staging, health checks); the
target is at most 1.5 s. Each is measured ``--rounds`` times, alternating; medians are printed.

Then, on one endpoint with two workers: mean latency at concurrency 16 straight to the
instance's published port (which the engine's port proxy forwards) against through the router
(which reaches an optml image over its Unix socket), interleaved, ``--rounds`` times.

    .venv/bin/python bench/bench_local_endpoints_docker.py [--image optml/sklearn:latest] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local_mode.endpoints.staging import stage_model_data
from local_mode.runtime import RuntimeClient
from local_mode.sagemaker import SageMakerClient
from toolkit.settings import Settings

ENV = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "OPTML_INSTALL_REQUIREMENTS": "false"}
BENCH_LABEL = "optml.bench"


def model_tarball(path: Path) -> Path:
    """A tiny scikit-learn model (fitted here) as model.tar.gz."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LinearRegression

    features = np.arange(30, dtype=float).reshape(10, 3)
    model = LinearRegression().fit(features, features.sum(axis=1))
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(buffer.getvalue())
        archive.addfile(info, io.BytesIO(buffer.getvalue()))
    return path


def bare_startup(client: object, image: str, model_dir: Path) -> float:
    """Create + start a container of ``image`` and time it to its first /ping 200."""
    api = client.api  # type: ignore[attr-defined]
    started = time.monotonic()
    created = api.create_container(
        image, command=["serve"], environment=ENV, ports=[8080], labels={BENCH_LABEL: "bare"},
        host_config=api.create_host_config(
            binds={str(model_dir): {"bind": "/opt/ml/model", "mode": "ro"}},
            port_bindings={8080: ("127.0.0.1", None)}))
    try:
        api.start(created["Id"])
        ports = api.inspect_container(created["Id"])["NetworkSettings"]["Ports"]
        port = int(ports["8080/tcp"][0]["HostPort"])
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    return time.monotonic() - started
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            time.sleep(0.01)
    finally:
        api.remove_container(created["Id"], force=True)


def endpoint_first_invoke(sm: SageMakerClient, rt: RuntimeClient, name: str, image: str,
                          tar: Path) -> float:
    sm.create_model(ModelName=name, PrimaryContainer={
        "Image": image, "ModelDataUrl": tar.as_uri(), "Environment": ENV})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
        "InstanceType": "local", "InitialVariantWeight": 1.0}])
    started = time.monotonic()
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    try:
        while True:
            try:
                rt.invoke_endpoint(EndpointName=name, Body=b"1,2,3", ContentType="text/csv")
                return time.monotonic() - started
            except Exception:  # noqa: BLE001 - not in service yet
                status = sm.describe_endpoint(EndpointName=name)["EndpointStatus"]
                if status == "Failed":
                    raise RuntimeError(sm.describe_endpoint(EndpointName=name)
                                       ["FailureReason"]) from None
                time.sleep(0.01)
    finally:
        rt.close()
        sm.delete_endpoint(EndpointName=name)


def router_overhead(sm: SageMakerClient, image: str, tar: Path, rounds: int,
                    requests: int) -> list[tuple[float, float]]:
    """``(direct, router)`` mean latencies per round at concurrency 16: the instance's
    published port (through the engine's port proxy) against the endpoint's router."""
    from bench.bench_local_endpoints import load

    sm.create_model(ModelName="latency", PrimaryContainer={
        "Image": image, "ModelDataUrl": tar.as_uri(), "Environment": {
            **ENV, "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}})
    sm.create_endpoint_config(EndpointConfigName="latency", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "latency", "InitialInstanceCount": 1,
        "InstanceType": "local", "InitialVariantWeight": 1.0}])
    sm.create_endpoint(EndpointName="latency", EndpointConfigName="latency")
    try:
        deadline = time.monotonic() + 120
        while sm.describe_endpoint(EndpointName="latency")["EndpointStatus"] != "InService":
            assert time.monotonic() < deadline, "endpoint not in service"
            time.sleep(0.05)
        private = sm.store.get("endpoints", "latency").describe()
        router, direct = private["RouterPort"], private["Instances"][0]["Ports"][0]
        row = {"body": b"1,2,3", "content_type": "text/csv"}
        load(direct, 320, 16, **row)
        load(router, 320, 16, **row)
        results = []
        for _ in range(rounds):
            results.append((statistics.mean(load(direct, requests, 16, **row)),
                            statistics.mean(load(router, requests, 16, **row))))
        return results
    finally:
        sm.delete_endpoint(EndpointName="latency")


def main() -> None:
    import docker

    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default="optml/sklearn:latest")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000,
                        help="per path and round of the router-overhead measurement")
    args = parser.parse_args()
    latency: list[tuple[float, float]] = []
    client = docker.from_env(timeout=300)
    bare: list[float] = []
    endpoint: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tar = model_tarball(root / "model.tar.gz")
        model_dir = stage_model_data(tar.as_uri(), root / "bare-model", {})
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "OPTML_"))}
        env.update(OPTML_LOCAL_STATE_DIR=str(root / "state"),
                   OPTML_LOCAL_STOP_GRACE_SECONDS="5")
        settings = Settings.from_environ(env)
        sm = SageMakerClient(settings, backend="docker")
        rt = RuntimeClient(settings)
        try:
            bare_startup(client, args.image, model_dir)  # warm the engine's caches first
            for index in range(args.rounds):
                bare.append(bare_startup(client, args.image, model_dir))
                endpoint.append(endpoint_first_invoke(sm, rt, f"bench-{index}", args.image,
                                                      tar))
            latency = router_overhead(sm, args.image, tar, args.rounds, args.requests)
        finally:
            for item in client.api.containers(all=True, filters={"label": BENCH_LABEL}):
                client.api.remove_container(item["Id"], force=True)
            client.close()
    b, e = statistics.median(bare), statistics.median(endpoint)
    print(f"image {args.image}, {args.rounds} rounds (median; all: bare "
          f"{', '.join(f'{v:.2f}' for v in bare)} / endpoint "
          f"{', '.join(f'{v:.2f}' for v in endpoint)})")
    print(f"bare container create to /ping 200          : {b:.2f} s")
    print(f"create_endpoint (Docker) to first invoke     : {e:.2f} s (+{e - b:.2f} s over the "
          f"bare container; target <= 1.5 s)")
    direct = statistics.median(d for d, _ in latency)
    routed = statistics.median(r for _, r in latency)
    added = statistics.median(r - d for d, r in latency)
    print(f"concurrency 16, {args.requests} CSV requests x {args.rounds} rounds: published port "
          f"{direct * 1000:.2f} ms, router {routed * 1000:.2f} ms mean latency (median); "
          f"router {added * 1000:+.2f} ms (per round: "
          f"{', '.join(f'{(r - d) * 1000:+.2f}' for d, r in latency)})")


if __name__ == "__main__":
    main()
