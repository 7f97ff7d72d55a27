"""Cold start of the optml images: ``docker run IMAGE serve`` to the first 200 on /ping.

Peer, measured in the same run and the same image (same layers, same page cache): a bare
``python3 -m http.server`` started the same way. The ratio says what optml's serving start-up
(settings, handler resolution, model load, gunicorn with a preloaded worker) costs on top of
starting a container with a Python process listening on a port. Target (issue 18): <= 2.5x for
the sklearn image.

A third row, the *model-load floor*, splits that ratio: the same container loads the model with
the image's own ``model_fn`` (the framework's imports included) and then runs the bare
``http.server``. What optml adds on top of the floor is the toolkit's own cost; the floor above
the bare server is what the framework's imports cost any server.

Runs are interleaved (optml, bare, floor, optml, ...) so drift in machine load hits all rows
alike; each row prints its median and min-max. For optml the container log timestamps give the
phases: engine (run -> container started), process start -> port bound (/ping answers 503),
-> model loaded (preload), -> gunicorn worker booted, -> first 200 seen by the client.

Usage: .venv/bin/python bench/bench_image_startup.py [--runs 5] [--others onnx,xgboost,pytorch]
                                                      [--other-runs 3] [--json PATH]
Needs a running engine and the images built (scripts/build-images.sh). A full run takes about
1-3 minutes; every container it starts is labelled and removed, also on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import docker
import requests

LABELS = {"org.optml.bench": "image-startup"}
TARGET_RATIO = 2.5
MODEL_DIR = "/opt/ml/model"
SKLEARN_MODEL = (
    "import joblib, numpy as np; from sklearn.tree import DecisionTreeClassifier; "
    "rng = np.random.default_rng(0); x = rng.random((200, 4)); "
    "joblib.dump(DecisionTreeClassifier(max_depth=4).fit(x, x[:, 0] > 0.5), "
    "'/opt/ml/model/model.joblib')")
XGBOOST_MODEL = (
    "import numpy as np, xgboost as xgb; rng = np.random.default_rng(0); "
    "x = rng.random((200, 4)); b = xgb.train({'max_depth': 3}, xgb.DMatrix(x, label=x[:, 0]), 10); "
    "b.save_model('/opt/ml/model/model.json')")
PYTORCH_MODEL = (
    "import torch; torch.manual_seed(0); "
    "m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).eval(); "
    "torch.jit.save(torch.jit.script(m), '/opt/ml/model/model.pt')")
#: the floor: the image's own model_fn loads the model, then the bare server runs
FLOOR = (
    "import os, runpy, sys, importlib.util as u; "
    "p = os.environ['OPTML_DEFAULT_HANDLERS']; "
    "s = u.spec_from_file_location('handlers', p); h = u.module_from_spec(s); "
    "s.loader.exec_module(h); h.model_fn('/opt/ml/model'); "
    "sys.argv = ['http.server', '8080']; runpy.run_module('http.server', run_name='__main__')")


def write_onnx_model(model_dir: Path) -> None:
    """A tiny ONNX regressor (one Gemm), built on the host with the ``onnx`` package."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["features", "w", "b"], ["score"])], "bench",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(rng.random((4, 1), dtype=np.float32), "w"),
         numpy_helper.from_array(np.zeros(1, dtype=np.float32), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by any onnxruntime of the last years
    onnx.save(model, str(model_dir / "model.onnx"))


#: image name -> how its model is made (a Python command run in the image, or a host function)
MODELS: dict[str, str | Callable[[Path], None]] = {
    "sklearn": SKLEARN_MODEL, "xgboost": XGBOOST_MODEL, "pytorch": PYTORCH_MODEL,
    "onnx": write_onnx_model,
}


class Interrupted(Exception):
    """SIGTERM: unwind through every ``finally`` so the containers go."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


def _stamp(text: str) -> float:
    """A docker timestamp (RFC 3339, nanoseconds, UTC) as epoch seconds."""
    head, _, frac = text.rstrip("Z").partition(".")
    moment = dt.datetime.fromisoformat(head).replace(tzinfo=dt.timezone.utc)
    return moment.timestamp() + float(f"0.{frac or '0'}")


@dataclass
class Run:
    seconds: float
    cpu: float | None = None
    """CPU seconds the container's processes used up to the first 200 (None: not visible)."""
    phases: dict[str, float] = field(default_factory=dict)


def tree_cpu_seconds(root: int) -> float | None:
    """user+system CPU of ``root`` and its live descendants (and of children it reaped), from
    the host's /proc: unlike wall time this barely moves with the machine's load."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(pid: int) -> list[str] | None:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        return text.rsplit(")", 1)[1].split()

    fields = stat(root)
    if fields is None:
        return None  # the engine runs elsewhere (a VM): no /proc of the container here
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := stat(int(entry.name))) is not None:
            children.setdefault(int(info[1]), []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        info = stat(pid)
        if info is None:
            continue
        # fields after the name: utime, stime, cutime, cstime are the 12th-15th
        total += sum(int(v) for v in info[11:15]) / tick
        todo.extend(children.get(pid, []))
    return total


OPTML_MARKS = (("port bound (503)", "/ping answers 503"), ("model loaded", "model loaded in"),
               ("worker booted", "Booting worker"))


def _phases(container: Any, started: float, done: float) -> dict[str, float]:
    """Seconds since the previous mark: engine start, the server's log lines, the first 200."""
    container.reload()
    marks = [("engine: container started", _stamp(container.attrs["State"]["StartedAt"]))]
    logs = container.logs(timestamps=True).decode(errors="replace").splitlines()
    for name, needle in OPTML_MARKS:
        for line in logs:
            if needle in line:
                marks.append((name, _stamp(line.split(" ", 1)[0])))
                break
    marks.append(("first 200", done))
    phases, previous = {}, started
    for name, moment in marks:
        phases[name] = moment - previous
        previous = moment
    return phases


def time_to_first_200(client: docker.DockerClient, image: str, command: Sequence[str],
                      path: str, *, timeout: float = 180.0, phases: bool = False,
                      **kwargs: Any) -> Run:
    """Seconds from asking the engine to run the container to the first 200 on ``path``."""
    wall = time.time()
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
                    seconds = time.perf_counter() - started
                    cpu = tree_cpu_seconds(container.attrs["State"]["Pid"])
                    return Run(seconds, cpu, _phases(container, wall, wall + seconds) if phases
                               else {})
            except requests.RequestException:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{image} {list(command)}: no 200 on {path} within {timeout}s:\n"
                           f"{container.logs().decode(errors='replace')[-2000:]}")
    finally:
        container.remove(force=True, v=True)


def sweep(client: docker.DockerClient) -> None:
    for leftover in client.containers.list(all=True, filters={"label": "org.optml.bench"}):
        if leftover.labels.get("org.optml.bench") == LABELS["org.optml.bench"]:
            leftover.remove(force=True)


@contextmanager
def model_volume(client: docker.DockerClient, image: str, name: str) -> Iterator[dict]:
    """A temporary model directory holding a small model of the framework, mounted rw."""
    with tempfile.TemporaryDirectory(prefix="optml-bench-startup-") as tmp:
        model_dir = Path(tmp, "model")
        model_dir.mkdir()
        model_dir.chmod(0o777)  # the container writes as root or as its own user
        volumes = {str(model_dir): {"bind": MODEL_DIR, "mode": "rw"}}
        make = MODELS[name]
        if callable(make):
            make(model_dir)
        else:
            client.containers.run(image, ["python", "-c", make], volumes=volumes, labels=LABELS,
                                  remove=True)
        yield volumes


def measure(client: docker.DockerClient, name: str, runs: int) -> dict[str, list[Run]]:
    image = f"optml/{name}:latest"
    rows: dict[str, list[Run]] = {"optml": [], "bare": [], "floor": []}
    with model_volume(client, image, name) as volumes:
        for _ in range(runs):  # interleaved, so drift in machine load hits every row alike
            rows["optml"].append(time_to_first_200(
                client, image, ["serve"], "/ping", volumes=volumes, phases=True,
                environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}))
            rows["bare"].append(time_to_first_200(
                client, image, ["-m", "http.server", "8080"], "/", entrypoint=["python3"]))
            rows["floor"].append(time_to_first_200(
                client, image, ["-c", FLOOR], "/", entrypoint=["python3"], volumes=volumes))
    return rows


def _median(runs: Sequence[Run]) -> float:
    return statistics.median(r.seconds for r in runs)


def report(name: str, rows: dict[str, list[Run]], target: bool) -> dict[str, Any]:
    optml, bare, floor = (_median(rows[k]) for k in ("optml", "bare", "floor"))
    print(f"\noptml/{name}: {len(rows['optml'])} interleaved runs (median; min-max)")
    labels = {"optml": "optml serve -> first 200 /ping",
              "bare": "python3 -m http.server -> 200 /",
              "floor": "model_fn + http.server -> 200 /"}
    for key, label in labels.items():
        times = [r.seconds for r in rows[key]]
        cpus = [r.cpu for r in rows[key] if r.cpu is not None]
        cpu = f"  CPU {statistics.median(cpus):5.2f} s" if cpus else ""
        print(f"  {label:34s} {statistics.median(times):6.2f} s "
              f"({min(times):.2f}-{max(times):.2f}){cpu}")
    print("  optml phases (median s):  " + ", ".join(
        f"{phase} {statistics.median(r.phases[phase] for r in rows['optml']):.3f}"
        for phase in rows["optml"][0].phases
        if all(phase in r.phases for r in rows["optml"])))
    ratio = optml / bare
    verdict = ""
    if target:
        verdict = (f" -> target <= {TARGET_RATIO}x: "
                   f"{'met' if ratio <= TARGET_RATIO else 'MISSED'}")
    print(f"  ratio optml / http.server: {ratio:.2f}x{verdict}")
    print(f"  floor / http.server: {floor / bare:.2f}x (the framework's imports and model "
          f"load); optml above the floor: {optml - floor:+.2f} s")
    cpu = {k: statistics.median(c) if (c := [r.cpu for r in v if r.cpu is not None]) else None
           for k, v in rows.items()}
    if cpu["optml"] and cpu["bare"] and cpu["floor"]:
        print(f"  CPU in the container (load-independent): optml {cpu['optml']:.2f} s, floor "
              f"{cpu['floor']:.2f} s, bare {cpu['bare']:.2f} s")
    return {"image": f"optml/{name}", "optml_s": optml, "bare_s": bare, "floor_s": floor,
            "ratio": ratio, "cpu_s": cpu,
            "raw": {k: [(r.seconds, r.cpu, r.phases) for r in v] for k, v in rows.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="sklearn",
                        help="the image the target applies to (optml/NAME:latest; sklearn)")
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs of it (5)")
    parser.add_argument("--others", default="onnx,xgboost,pytorch",
                        help="other images, comma-separated, measured the same way; '' for none")
    parser.add_argument("--other-runs", type=int, default=3, help="runs for the others (3)")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()
    name = args.image.removeprefix("optml/").split(":")[0]
    others = [o for o in args.others.split(",") if o and o != name]
    for each in (name, *others):
        if each not in MODELS:
            parser.error(f"no model recipe for {each!r} (known: {', '.join(MODELS)})")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in background
    client = docker.from_env(timeout=300)
    load_before = os.getloadavg()
    results = []
    sweep(client)
    try:
        results.append(report(name, measure(client, name, args.runs), target=True))
        for other in others:
            results.append(report(other, measure(client, other, args.other_runs), target=False))
    except (KeyboardInterrupt, Interrupted):
        print("\ninterrupted: containers removed", file=sys.stderr)
        return 130
    finally:
        sweep(client)
    load_after = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"(1 min; {os.cpu_count()} CPUs)")
    if args.json:
        args.json.write_text(json.dumps({"load": [load_before, load_after],
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
