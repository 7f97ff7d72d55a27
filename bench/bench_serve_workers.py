"""Which gunicorn worker class ``optml serve`` should use: sync vs gthread vs gthread with
threads reserved for /ping, measured with wrk at concurrency 16 on 127.0.0.1.

    .venv/bin/python bench/bench_serve_workers.py [--duration 5] [--rounds 3]

Two models: ``noop`` (server overhead only) and ``sleep10`` (10 ms that release the GIL, like
numpy/torch/onnxruntime inference or a GPU call). 2 workers each; runs are interleaved round
by round so background load hits every class alike; medians are printed. The figures and the
decision are in docs/serving.md. Every server is stopped and the temp dir removed.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = {
    "noop": "def model_fn(model_dir):\n    return lambda data: data\n",
    "sleep10": "import time\n\ndef model_fn(model_dir):\n"
               "    def model(data):\n        time.sleep(0.01)\n        return data\n"
               "    return model\n",
}
CLASSES = {"sync": ["--worker-class", "sync"],
           "gthread (4 threads)": ["--worker-class", "gthread-plain", "--threads", "4"],
           "gthread + reserved /ping (4 threads)": ["--worker-class", "gthread", "--threads",
                                                    "4"]}
LUA = """wrk.method = "POST"
wrk.body = "[[1.0, 2.0, 3.0, 4.0]]"
wrk.headers["Content-Type"] = "application/json"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
                if b" 200 " in sock.recv(64):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server never ready")


def _seconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(port: int, duration: int, script: Path) -> tuple[float, float, int]:
    """(requests/s, p99 latency s, non-2xx + socket errors)."""
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{duration}s", "--latency", "-s",
                          str(script), f"http://127.0.0.1:{port}/invocations"],
                         capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = _seconds(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return rps, p99, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="optml-bench-workers-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA)
        for model, code in MODELS.items():
            root = Path(tmp) / model
            (root / "model" / "code").mkdir(parents=True)
            (root / "model" / "code" / "inference.py").write_text(code)
        for _ in range(args.rounds):
            for model in MODELS:
                for name, argv in CLASSES.items():
                    port = free_port()
                    env = {k: v for k, v in os.environ.items()
                           if not k.startswith(("SAGEMAKER_", "OPTML_"))}
                    env.update(PYTHONPATH=str(REPO), SAGEMAKER_BASE_DIR=str(Path(tmp) / model),
                               SAGEMAKER_BIND_TO_PORT=str(port),
                               SAGEMAKER_MODEL_SERVER_WORKERS="2",
                               OPTML_INSTALL_REQUIREMENTS="false")
                    proc = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "serve", *argv],
                                            env=env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True)
                    try:
                        wait_ready(port, proc)
                        results.setdefault((model, name), []).append(
                            run_wrk(port, args.duration, script))
                    finally:
                        proc.send_signal(signal.SIGTERM)
                        try:
                            proc.wait(timeout=40)
                        except subprocess.TimeoutExpired:
                            os.killpg(proc.pid, signal.SIGKILL)
                            proc.wait()
    print(f"wrk -c16, 2 workers, {args.duration} s x {args.rounds} rounds (median), load avg "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| model | worker class | req/s | p99 latency (ms) | errors |")
    print("|---|---|---|---|---|")
    for (model, name), runs in results.items():
        print(f"| {model} | {name} | {statistics.median(r[0] for r in runs):.0f} | "
              f"{statistics.median(r[1] for r in runs) * 1000:.1f} | "
              f"{sum(r[2] for r in runs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
