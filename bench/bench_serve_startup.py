"""Time from process start to the first 200 on /ping: ``optml serve`` vs a bare stdlib server.

    .venv/bin/python bench/bench_serve_startup.py [--repeats 5]

The peer is ``python -m http.server`` (time to its first 200 on ``GET /``): the floor for "a
Python process that answers HTTP". optml also imports Flask, gunicorn and numpy, runs model_fn
and forks workers. Also reported: the time to the first answer of any kind (503 from the
pre-bind responder), which the contract wants within 250 ms. Median of ``--repeats`` cold starts,
on 127.0.0.1, in one run; every process is stopped and the temp dir removed.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = """\
import numpy as np

def model_fn(model_dir):
    weights = np.load(model_dir + "/weights.npy")
    return lambda data: np.asarray(data, dtype=np.float32) @ weights
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_of(port: int, path: str) -> int | None:
    """One raw HTTP/1.0 GET; None while nothing listens."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            head = sock.recv(64)
    except OSError:
        return None
    try:
        return int(head.split()[1])
    except (IndexError, ValueError):
        return None


def measure(argv: list[str], env: dict[str, str], port: int, path: str,
            cwd: Path) -> tuple[float, float]:
    """(seconds to the first answer of any kind, seconds to the first 200)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    first_any = None
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv} exited {proc.returncode}")
            status = status_of(port, path)
            now = time.perf_counter() - start
            if status is not None and first_any is None:
                first_any = now
            if status == 200:
                return first_any or now, now
            if now > 60:
                raise RuntimeError(f"{argv}: no 200 within 60 s")
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="optml-bench-startup-") as tmp:
        root = Path(tmp)
        (root / "model" / "code").mkdir(parents=True)
        (root / "model" / "code" / "inference.py").write_text(MODEL)
        np.save(root / "model" / "weights.npy", np.eye(4, dtype=np.float32))
        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SAGEMAKER_", "OPTML_"))}
        base_env["PYTHONPATH"] = str(REPO)
        results: dict[str, list[tuple[float, float]]] = {"optml serve": [], "http.server": []}
        for _ in range(args.repeats):  # interleaved, so load changes hit both alike
            port = free_port()
            env = dict(base_env, SAGEMAKER_BASE_DIR=str(root), SAGEMAKER_BIND_TO_PORT=str(port),
                       SAGEMAKER_MODEL_SERVER_WORKERS="2", OPTML_INSTALL_REQUIREMENTS="false")
            results["optml serve"].append(measure(
                [sys.executable, "-m", "toolkit.cli", "serve"], env, port, "/ping", root))
            port = free_port()
            results["http.server"].append(measure(
                [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                base_env, port, "/", root))
    print(f"cold start to first 200, median of {args.repeats} (load avg "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print("| server | first answer (s) | first 200 (s) |")
    print("|---|---|---|")
    medians = {}
    for name, runs in results.items():
        first_any = statistics.median(r[0] for r in runs)
        first_ok = statistics.median(r[1] for r in runs)
        medians[name] = first_ok
        print(f"| {name} | {first_any:.3f} | {first_ok:.3f} |")
    ratio = medians["optml serve"] / medians["http.server"]
    print(f"\noptml serve / http.server (first 200): {ratio:.1f}x; "
          f"target <= 1 s: {'met' if medians['optml serve'] <= 1.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
