"""Local endpoints: deploy-to-first-invoke, and the router's added latency per request.

Same run, same instance: N requests at concurrency C (keep-alive connections, one per client
thread) straight to the instance's port, then through the endpoint router; the difference of the
mean latencies is the router's cost. Also: the bare ``optml serve`` start-up (to its first /ping
200) against create_endpoint-to-first-successful-invoke.

    .venv/bin/python bench/bench_local_endpoints.py [--requests 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local_mode.endpoints.instances import ProcessBackend
from local_mode.endpoints.spec import ContainerSpec
from local_mode.endpoints.staging import stage_model_data
from tests.integration.test_local_endpoints_support import Local, make_model_tar

ECHO = """
    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        return body, "application/octet-stream"
"""
ENV = {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "OPTML_INSTALL_REQUIREMENTS": "false"}


def load(port: int, requests: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = requests // concurrency

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        for _ in range(per_thread):
            started = time.perf_counter()
            connection.request("POST", "/invocations", body=b"x" * 100,
                               headers={"Content-Type": "application/octet-stream"})
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            assert response.status == 200, response.status
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def bare_startup(root: Path, tar: Path) -> float:
    backend = ProcessBackend({k: v for k, v in __import__("os").environ.items()})
    spec = ContainerSpec("primary", "bench", tar.as_uri(), ENV)
    model_dir = stage_model_data(tar.as_uri(), root / "bare-model", {})
    started = time.monotonic()
    container = backend.start(spec, model_dir, root / "bare", {}, root / "bare.log")
    try:
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", container.port, timeout=2)
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.01)
    finally:
        container.stop(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        local = Local(root)
        tar = make_model_tar(root / "model.tar.gz", ECHO)
        try:
            bare = bare_startup(root, tar)
            local.sm.create_model(ModelName="m", PrimaryContainer={
                "Image": "bench", "ModelDataUrl": tar.as_uri(), "Environment": ENV})
            local.config("c", ("AllTraffic", "m", 1, 1.0))
            started = time.monotonic()
            local.sm.create_endpoint(EndpointName="e", EndpointConfigName="c")
            while True:
                try:
                    local.invoke("e", b"x")
                    break
                except Exception:  # noqa: BLE001 - not in service yet
                    time.sleep(0.01)
            first = time.monotonic() - started
            private = local.private("e")
            router, instance = private["RouterPort"], private["Instances"][0]["Ports"][0]
            load(instance, 320, args.concurrency)  # warm-up both paths
            load(router, 320, args.concurrency)
            results = {}
            for label, port in (("direct", instance), ("router", router),
                                ("direct2", instance), ("router2", router)):
                began = time.perf_counter()
                latencies = load(port, args.requests, args.concurrency)
                elapsed = time.perf_counter() - began
                results[label] = (statistics.mean(latencies), statistics.median(latencies),
                                  len(latencies) / elapsed)
        finally:
            local.cleanup()
    print(f"bare optml serve start-up to /ping 200 : {bare:.2f} s")
    print(f"create_endpoint to first invoke        : {first:.2f} s "
          f"(+{first - bare:.2f} s over the bare container)")
    for label, (mean, median, rps) in results.items():
        print(f"{label:8s} mean {mean * 1000:7.3f} ms  median {median * 1000:7.3f} ms  "
              f"{rps:8.0f} req/s  (concurrency {args.concurrency})")
    direct = min(results["direct"][0], results["direct2"][0])
    router = min(results["router"][0], results["router2"][0])
    print(f"router overhead (mean latency, best of two): {(router - direct) * 1000:.3f} ms "
          f"per request; ratio router/direct {router / direct:.2f}")


if __name__ == "__main__":
    main()
