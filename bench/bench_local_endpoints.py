"""Local endpoints: deploy-to-first-invoke, and the router's added latency per request.

Same run, same instance: N requests at concurrency C (keep-alive connections, one per client
thread) straight to the instance's port, then through the endpoint router, then through nginx
(the named peer: one worker, keep-alive upstream pool, the same instance behind it) when nginx is
installed; twice each, interleaved. The difference of the mean latencies is a hop's cost; the
router process's own CPU per request is printed beside it. Also: the bare ``optml serve``
start-up (to its first /ping 200) against create_endpoint-to-first-successful-invoke.

    .venv/bin/python bench/bench_local_endpoints.py [--requests 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serving.servers import nginx_main_config
from local_mode.endpoints.backends.process import ProcessBackend
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


def load(port: int, requests: int, concurrency: int, body: bytes = b"x" * 100,
         content_type: str = "application/octet-stream") -> list[float]:
    """Latencies of ``requests`` POSTs to /invocations from ``concurrency`` keep-alive clients."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = requests // concurrency

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        for _ in range(per_thread):
            started = time.perf_counter()
            connection.request("POST", "/invocations", body=body,
                               headers={"Content-Type": content_type})
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


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU of a process so far (clock ticks from /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


NGINX_PROXY = """\
  upstream instance {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 6m;
    keepalive_requests 1000000;
    location / {{
      proxy_pass http://instance;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}"""


def start_nginx(root: Path, upstream: int) -> tuple[subprocess.Popen[bytes], int] | None:
    """nginx reverse-proxying 127.0.0.1:<free port> to the instance, or None when not installed."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                       else None)
    if binary is None:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root.mkdir()
    conf = root / "nginx.conf"
    conf.write_text(nginx_main_config(root, NGINX_PROXY.format(upstream=upstream, port=port),
                                      as_root=os.geteuid() == 0))
    process = subprocess.Popen([binary, "-p", f"{root}/", "-c", str(conf), "-e",
                                str(root / "error.log")])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"nginx did not start: {(root / 'error.log').read_text()}")


def bare_startup(root: Path, tar: Path) -> float:
    backend = ProcessBackend(dict(os.environ))
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


def proxy_pids(pid: int) -> list[int]:
    """``pid`` and its direct children (nginx: master and worker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(c) for c in children.read_text().split())] if children.exists() else [pid]


def measure(port: int, pids: list[int], requests: int, concurrency: int) -> dict[str, float]:
    """Mean latency, throughput and the proxy processes' CPU per request for one load run."""
    before = [cpu_seconds(pid) for pid in pids]
    began = time.perf_counter()
    latencies = load(port, requests, concurrency)
    elapsed = time.perf_counter() - began
    after = [cpu_seconds(pid) for pid in pids]
    user = sum(a[0] - b[0] for a, b in zip(after, before, strict=True)) / len(latencies)
    system = sum(a[1] - b[1] for a, b in zip(after, before, strict=True)) / len(latencies)
    return {"mean": statistics.mean(latencies), "rps": len(latencies) / elapsed,
            "user": user, "system": system}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000, help="per path and round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of every path, in rotating order (medians are reported)")
    args = parser.parse_args()
    nginx = None
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
            runner_pid = local.sm.store.get("endpoints", "e").runner_pid()
            assert runner_pid is not None
            router, instance = private["RouterPort"], private["Instances"][0]["Ports"][0]
            nginx = start_nginx(root / "nginx", instance)
            paths: list[tuple[str, int, list[int]]] = [
                ("direct", instance, []), ("router", router, [runner_pid])]
            if nginx is not None:
                paths.append(("nginx", nginx[1], proxy_pids(nginx[0].pid)))
            for _, port, _ in paths:
                load(port, 320, args.concurrency)  # warm-up
            rounds: list[dict[str, dict[str, float]]] = []
            for index in range(args.rounds):
                order = paths[index % len(paths):] + paths[:index % len(paths)]
                rounds.append({label: measure(port, pids, args.requests, args.concurrency)
                               for label, port, pids in order})
        finally:
            if nginx is not None:
                nginx[0].terminate()
                nginx[0].wait(10)
            local.cleanup()
    print(f"bare optml serve start-up to /ping 200 : {bare:.2f} s")
    print(f"create_endpoint to first invoke        : {first:.2f} s "
          f"(+{first - bare:.2f} s over the bare container)")
    print(f"{args.rounds} rounds x {args.requests} requests per path, concurrency "
          f"{args.concurrency}; medians over rounds (min-max)")

    def spread(values: list[float], scale: float = 1000.0, fmt: str = ".2f") -> str:
        return (f"{statistics.median(values) * scale:{fmt}} "
                f"({min(values) * scale:{fmt}}..{max(values) * scale:{fmt}})")

    for label, _, _ in paths:
        runs = [r[label] for r in rounds]
        line = (f"  {label:7s} mean latency {spread([r['mean'] for r in runs])} ms  "
                f"{statistics.median(r['rps'] for r in runs):6.0f} req/s")
        if label != "direct":
            added = [r[label]["mean"] - r["direct"]["mean"] for r in rounds]
            cpu = [r["user"] + r["system"] for r in runs]
            line += (f"  added {spread(added)} ms  proxy CPU {spread(cpu, 1e6, '.0f')} us/req "
                     f"(user {statistics.median(r['user'] for r in runs) * 1e6:.0f}, "
                     f"sys {statistics.median(r['system'] for r in runs) * 1e6:.0f})")
        print(line)
    overhead = statistics.median(r["router"]["mean"] - r["direct"]["mean"] for r in rounds)
    print(f"router overhead: {overhead * 1000:.3f} ms per request "
          "(target <= 1 ms at concurrency 16)")
    if nginx is None:
        print("nginx peer: not measured (nginx is not installed; "
              "scripts/bench-serving-setup.sh installs it)")
    else:
        peer = statistics.median(r["nginx"]["mean"] - r["direct"]["mean"] for r in rounds)
        cpu_ratio = (statistics.median(r["router"]["user"] + r["router"]["system"]
                                       for r in rounds)
                     / statistics.median(r["nginx"]["user"] + r["nginx"]["system"]
                                         for r in rounds))
        print(f"nginx overhead : {peer * 1000:.3f} ms per request; router CPU per request = "
              f"{cpu_ratio:.1f}x nginx's")


if __name__ == "__main__":
    main()
