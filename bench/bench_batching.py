"""Micro-batching benchmark: optml ``serve`` with and without ``batch_predict_fn``, for a heavy
model where batching must pay and a trivial one where it must not cost, in one run.

    .venv/bin/python bench/bench_batching.py              # both models (~3 minutes)
    .venv/bin/python bench/bench_batching.py --setup      # install wrk first if missing
    .venv/bin/python bench/bench_batching.py --models trivial --rounds 5 --duration 5

Each model is served twice by the real server (``optml serve``: gunicorn, the images' defaults,
the same worker count), once plain and once with ``batch_predict_fn``; both servers run side by
side and wrk (keep-alive POST, concurrency 32) loads them in turn, unbatched then batched, for
``--rounds`` rounds, so a change in the machine's other load hits both variants alike. The
figure per variant is the median over rounds; each ratio is the median of the rounds' own
batched / unbatched ratios. Targets (issue 18): the heavy model (an ONNX MLP
whose single row costs milliseconds, a batch of 8 little more) batched >= 3x unbatched req/s;
the trivial model (a JSON echo) batched >= 0.95x. Prints both ratios, req/s, p50/p99, server
CPU per request, the batch sizes the server reached and the load average; ``--json`` keeps the
raw figures. Servers are stopped and the temp dir removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for bench.serving

from bench.serving.fixtures import (
    BATCH_STATS_ENV,
    HEAVY_MLP,
    NOOP_PAYLOAD,
    MlpShape,
    Payload,
    build_mlp_onnx,
    mlp_payload,
    read_batch_stats,
    write_heavy_model,
    write_trivial_model,
)
from bench.serving.loadgen import LoadGenError, LoadResult, run_wrk
from bench.serving.processes import ManagedProcess, ServerStartError, free_port, wait_ready
from bench.serving.servers import LaunchContext, OptmlServe

SETUP_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench-serving-setup.sh"
VARIANTS = ("unbatched", "batched")
TARGETS = {"heavy": 3.0, "trivial": 0.95}
"""Batched / unbatched req/s each model must reach at :data:`TARGET_CONCURRENCY` (issue 18)."""
TARGET_CONCURRENCY = 32
# One BLAS/OpenMP thread per process: workers x threads = cores, as in the model's own session.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class Model:
    name: str
    description: str
    payload: Payload
    write: Callable[[Path, bool], Path]


@dataclass
class Variant:
    """One server (a model, batched or not) and the load runs it got."""

    model: str
    variant: str
    loads: list[LoadResult] = field(default_factory=list)
    load_averages: list[float] = field(default_factory=list)
    batch_stats: tuple[int, int, int] | None = None
    error: str | None = None

    def median(self, attribute: str) -> float | None:
        values = [getattr(load, attribute) for load in self.loads]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_average() -> float:
    return os.getloadavg()[0]


def calibrate(shape: MlpShape, root: Path, repeats: int = 20) -> dict[str, float]:
    """Time one row and a batch of 8 through the heavy model in this process (one thread).

    Shows that the model fits the premise (a single row costs >= 1 ms, a batch of 8 far less
    than 8 rows) on the machine at hand, before any server is involved.
    """
    import numpy as np
    import onnxruntime as ort

    path = root / "calibrate.onnx"
    build_mlp_onnx(path, shape)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    figures = {}
    for rows in (1, 8):
        x = np.random.default_rng(0).standard_normal((rows, shape.inputs)).astype(np.float32)
        session.run(None, {"x": x})
        best = float("inf")
        for _ in range(3):  # best of three: the other tenants only ever add time
            started = time.process_time()
            for _ in range(repeats):
                session.run(None, {"x": x})
            best = min(best, (time.process_time() - started) / repeats)
        figures[f"batch_{rows}_cpu_ms"] = best * 1e3
    path.unlink()
    return figures


def in_process_cost(root: Path, requests: int = 5000, rounds: int = 7) -> dict[str, float]:
    """CPU µs per request of the trivial model through optml's WSGI app, unbatched and batched,
    on one thread (no sockets, no gunicorn; measured interleaved, median of ``rounds``).

    One thread means no request ever queues: this is exactly what the batcher adds to a request
    that has nothing to gain, measured in this thread's CPU time so the other tenants of a shared
    machine inflate it far less than they do req/s.
    """
    import io

    from toolkit.serving.app import create_app
    from toolkit.serving.codecs import default_registry
    from toolkit.serving.handlers import load_handlers
    from toolkit.serving.runtime import ExecutionDefaults, ServingRuntime

    def status_of(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        statuses.append(status)

    statuses: list[str] = []
    apps = {}
    for variant in VARIANTS:
        model_dir = write_trivial_model(root / f"in-process-{variant}", variant == "batched")
        codecs = default_registry()
        handlers = load_handlers(program=str(model_dir / "code" / "inference.py"), search=[],
                                 default_handlers=None, codecs=codecs)
        runtime = ServingRuntime(handlers=handlers, codecs=codecs, model_dir=model_dir,
                                 default_accept=None, max_payload_mb=6, debug_errors=False,
                                 execution=ExecutionDefaults(2, "MULTI_RECORD", 6))
        runtime.load_model()
        if (handlers.batch_predict_fn is not None) != (variant == "batched"):
            raise RuntimeError(f"the {variant} trivial model did not load as {variant}")
        apps[variant] = create_app(runtime)
    body = NOOP_PAYLOAD.body
    template = {"REQUEST_METHOD": "POST", "PATH_INFO": "/invocations", "QUERY_STRING": "",
                "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080",
                "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_TYPE": NOOP_PAYLOAD.content_type,
                "CONTENT_LENGTH": str(len(body)), "wsgi.url_scheme": "http",
                "wsgi.errors": sys.stderr, "wsgi.multithread": True,
                "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0)}
    samples: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(rounds):
        for variant, app in apps.items():
            started = time.thread_time()
            for _ in range(requests):
                environ = dict(template)
                environ["wsgi.input"] = io.BytesIO(body)
                result = app(environ, status_of)
                b"".join(result)
                getattr(result, "close", lambda: None)()
            samples[variant].append((time.thread_time() - started) / requests * 1e6)
    if any(not status.startswith("200") for status in statuses):
        raise RuntimeError(f"in-process requests failed: {sorted(set(statuses))}")
    return {f"{variant}_cpu_us": statistics.median(values) for variant, values in samples.items()}


class Bench:
    """Owns the temp dir and every started server, so that one ``close()`` cleans up all."""

    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        self.root = root
        self.args = args
        self._running: list[ManagedProcess] = []

    def close(self) -> None:
        while self._running:
            self._running.pop().stop()

    def _start(self, model: Model, variant: str) -> tuple[ManagedProcess, LaunchContext]:
        workdir = self.root / f"{model.name}-{variant}"
        workdir.mkdir()
        base = workdir / "ml"
        model.write(base, variant == "batched")
        env = dict(SINGLE_THREAD_ENV)
        env[BATCH_STATS_ENV] = str(workdir / "batch-stats")
        ctx = LaunchContext(base_dir=base, workdir=workdir, port=free_port(),
                            workers=self.args.workers, extra_env=env)
        argv: tuple[str, ...] = OptmlServe().argv
        threads = getattr(self.args, f"{variant}_threads")
        if threads:
            argv = (*argv, "--threads", str(threads))
        if self.args.optml_tree is None:
            procs = OptmlServe(argv=argv).launch(ctx)
        else:  # the same server from another checkout (before/after comparisons)
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SAGEMAKER_", "OPTML_", "PYTHONPATH"))}
            env.update({"PYTHONUNBUFFERED": "1", "SAGEMAKER_BASE_DIR": str(ctx.base_dir),
                        "SAGEMAKER_BIND_TO_PORT": str(ctx.port),
                        "SAGEMAKER_MODEL_SERVER_WORKERS": str(ctx.workers), **ctx.extra_env})
            procs = [ManagedProcess(name="optml", argv=list(argv), env=env,
                                    cwd=self.args.optml_tree,
                                    log_path=workdir / "optml.log").start()]
        self._running.extend(procs)
        return procs[0], ctx

    def run_model(self, model: Model) -> list[Variant]:
        args = self.args
        results = [Variant(model.name, v) for v in VARIANTS]
        started: list[tuple[ManagedProcess, LaunchContext] | None] = []
        for result in results:
            try:
                proc, ctx = self._start(model, result.variant)
                ready = wait_ready(proc, ctx.port, model.payload.body, model.payload.content_type,
                                   60.0)
                _log(f"  {model.name} {result.variant}: ready after "
                     f"{ready.invocation_seconds:.2f} s")
                started.append((proc, ctx))
            except (ServerStartError, OSError) as exc:
                result.error = f"{type(exc).__name__}: {exc}"
                _log(f"  {model.name} {result.variant}: FAILED: {result.error}")
                started.append(None)
        for round_index in range(args.rounds):
            for result, server in zip(results, started):
                if server is None or result.error is not None:
                    continue
                proc, ctx = server
                try:
                    if args.warmup > 0:
                        run_wrk(ctx.port, "/invocations", model.payload.body,
                                model.payload.content_type, args.concurrency, args.warmup,
                                ctx.workdir)
                    cpu_before = proc.cpu_seconds()
                    load = run_wrk(ctx.port, "/invocations", model.payload.body,
                                   model.payload.content_type, args.concurrency, args.duration,
                                   ctx.workdir)
                    load = _with_cpu(load, proc.cpu_seconds() - cpu_before)
                except LoadGenError as exc:
                    result.error = f"{type(exc).__name__}: {exc}"
                    _log(f"  {model.name} {result.variant}: FAILED: {result.error}")
                    continue
                result.loads.append(load)
                result.load_averages.append(load_average())
                _log(f"  {model.name} {result.variant} round {round_index + 1}: "
                     f"{load.rps:.0f} req/s, p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms, "
                     f"server CPU {load.cpu_ms_per_request or 0:.3f} ms/req, errors "
                     f"{load.errors}, load average {result.load_averages[-1]:.2f}")
        time.sleep(0.3)  # let the workers' stats files catch up with the last batches
        for result, server in zip(results, started):
            if server is not None:
                result.batch_stats = read_batch_stats(server[1].workdir / "batch-stats")
                server[0].stop()
                self._running.remove(server[0])
        return results


def _with_cpu(load: LoadResult, cpu_seconds: float) -> LoadResult:
    return dataclasses.replace(load, server_cpu_s=cpu_seconds)


def _ratio(results: list[Variant], attribute: str) -> float | None:
    """Batched / unbatched, paired by round (each round measures both back to back, so a change
    in the machine's other load between rounds cancels out); the median over rounds."""
    unbatched, batched = results
    ratios = [getattr(b, attribute) / getattr(u, attribute)
              for u, b in zip(unbatched.loads, batched.loads)
              if getattr(u, attribute) and getattr(b, attribute) is not None]
    return statistics.median(ratios) if ratios else None


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="heavy,trivial", help="comma list of: heavy, trivial")
    parser.add_argument("--concurrency", type=int, default=TARGET_CONCURRENCY,
                        help="wrk connections (the targets apply at %(default)s)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of unrecorded load before each measurement")
    parser.add_argument("--rounds", type=int, default=3,
                        help="unbatched/batched alternations per model (the median is reported)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--hidden", type=int, default=HEAVY_MLP.hidden,
                        help="hidden width of the heavy MLP (default %(default)s)")
    parser.add_argument("--unbatched-threads", type=int, default=0,
                        help="request threads of the unbatched servers (default: optml's own "
                             "default; set it to the batched servers' count to compare at equal "
                             "threads)")
    parser.add_argument("--optml-tree", type=Path,
                        help="serve with the toolkit of this directory instead of this checkout "
                             "(e.g. `git archive` of an older commit, for before/after figures)")
    parser.add_argument("--batched-threads", type=int, default=0,
                        help="request threads of the batched servers (default: optml's own "
                             "default, batch_max_size)")
    parser.add_argument("--setup", action="store_true",
                        help=f"run {SETUP_SCRIPT.name} first (installs wrk and the other peers)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--keep-temp", action="store_true", help="keep logs (debugging)")
    args = parser.parse_args(argv)
    args.model_names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in args.model_names if n not in TARGETS]
    if unknown or not args.model_names:
        parser.error(f"unknown models {unknown}; known: {list(TARGETS)}")
    if args.concurrency < 1 or args.rounds < 1 or args.workers < 1 or args.duration < 1:
        parser.error("--concurrency, --rounds, --workers and --duration must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if args.setup and shutil.which("wrk") is None:
        subprocess.run(["bash", str(SETUP_SCRIPT)], check=True)
    if shutil.which("wrk") is None:
        print(f"bench_batching: wrk is missing.\n  Install it with: bash {SETUP_SCRIPT}\n"
              "  (or run this benchmark with --setup)", file=sys.stderr)
        return 2
    shape = MlpShape(hidden=args.hidden)
    models = {
        "heavy": Model("heavy", f"ONNX MLP {shape.inputs}-{shape.hidden}x"
                       f"{shape.hidden_layers + 1}-{shape.outputs}, one row per request",
                       mlp_payload(shape),
                       lambda base, batched: write_heavy_model(base, batched, shape)),
        "trivial": Model("trivial", "JSON echo (the serving benchmark's no-op model)",
                         NOOP_PAYLOAD, write_trivial_model),
    }
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in stop_signals}
    root = Path(tempfile.mkdtemp(prefix="optml-bench-batching-"))
    bench = Bench(root, args)
    results: dict[str, list[Variant]] = {}
    calibration: dict[str, float] = {}
    load_before = load_average()
    try:
        _log(f"bench_batching: {args.workers} workers per server, c={args.concurrency}, "
             f"{args.rounds} rounds of {args.duration:.0f} s, load average {load_before:.2f}, "
             f"scratch {root}")
        if "heavy" in args.model_names:
            calibration = calibrate(shape, root)
            _log(f"  heavy model in-process CPU: 1 row {calibration['batch_1_cpu_ms']:.2f} ms, "
                 f"8 rows {calibration['batch_8_cpu_ms']:.2f} ms")
        if "trivial" in args.model_names and args.optml_tree is None:  # this checkout's code
            calibration.update(in_process_cost(root))
            _log(f"  trivial model in-process CPU per request (one thread, nothing queues): "
                 f"unbatched {calibration['unbatched_cpu_us']:.1f} µs, batched "
                 f"{calibration['batched_cpu_us']:.1f} µs")
        for name in args.model_names:
            _log(f"{name}: {models[name].description}")
            results[name] = bench.run_model(models[name])
    except KeyboardInterrupt:
        _log("bench_batching: interrupted; stopping servers")
        return 130
    finally:
        bench.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if args.keep_temp:
            _log(f"bench_batching: kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return _report(args, models, results, calibration, load_before)


def _report(args: argparse.Namespace, models: dict[str, Model], results: dict[str, list[Variant]],
            calibration: dict[str, float], load_before: float) -> int:
    print(f"\n## Micro-batching: optml serve, {args.workers} workers, c={args.concurrency}, "
          f"median of {args.rounds} x {args.duration:.0f} s\n")
    print(f"Load average: {load_before:.2f} at the start, {load_average():.2f} at the end "
          f"({os.cpu_count()} CPUs).")
    if "batch_1_cpu_ms" in calibration:
        print(f"Heavy model, in-process CPU per call: 1 row {calibration['batch_1_cpu_ms']:.2f} "
              f"ms, 8 rows {calibration['batch_8_cpu_ms']:.2f} ms.")
    if "batched_cpu_us" in calibration:
        added = calibration["batched_cpu_us"] - calibration["unbatched_cpu_us"]
        print(f"Trivial model through optml's WSGI app in-process, one thread (what the batcher "
              f"adds when nothing queues): unbatched {calibration['unbatched_cpu_us']:.1f} µs, "
              f"batched {calibration['batched_cpu_us']:.1f} µs CPU per request "
              f"({added:+.1f} µs).")
    print("\n| model | variant | req/s | p50 ms | p99 ms | server CPU ms/req | mean batch "
          "| max batch | errors | load avg |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, variants in results.items():
        for v in variants:
            if v.error is not None and not v.loads:
                print(f"| {name} | {v.variant} | failed: {v.error.splitlines()[0]} "
                      "| | | | | | | |")
                continue
            stats = v.batch_stats
            mean_batch = f"{stats[1] / stats[0]:.2f}" if stats else "-"
            max_batch = str(stats[2]) if stats else "-"
            cpu = v.median("cpu_ms_per_request")
            print(f"| {name} | {v.variant} | {v.median('rps') or 0:.0f} | "
                  f"{v.median('p50_ms') or 0:.2f} | {v.median('p99_ms') or 0:.2f} | "
                  f"{'-' if cpu is None else f'{cpu:.3f}'} | {mean_batch} | {max_batch} | "
                  f"{sum(load.errors for load in v.loads)} | "
                  f"{statistics.median(v.load_averages):.2f} |")
    print("\nBatch sizes include the warm-up runs. Request threads per worker: unbatched "
          f"{args.unbatched_threads or 'optml default (4)'}, batched "
          f"{args.batched_threads or 'optml default (batch_max_size = 8)'}.")
    print("\n## Targets\n")
    failed = False
    for name, variants in results.items():
        ratio = _ratio(variants, "rps")
        cpu_ratio = _ratio(variants, "cpu_ms_per_request")
        target = TARGETS[name]
        if ratio is None:
            print(f"- [not measured] {name}: batched / unbatched req/s >= {target}")
            failed = True
            continue
        met = ratio >= target
        if args.concurrency != TARGET_CONCURRENCY:  # the targets are defined at c=32 only
            verdict = f"c={args.concurrency}, target defined at c={TARGET_CONCURRENCY}"
        else:
            verdict = "met" if met else "MISSED"
            failed = failed or not met
        per_round = ", ".join(f"{b.rps / u.rps:.2f}" for u, b in
                              zip(variants[0].loads, variants[1].loads) if u.rps > 0)
        cpu_text = (f"; server CPU per request batched / unbatched {cpu_ratio:.2f}"
                    if cpu_ratio is not None else "")
        print(f"- [{verdict}] {name} ({models[name].description}): batched /"
              f" unbatched req/s = {ratio:.2f}x (median of rounds: {per_round}), target >= "
              f"{target}x"
              f"{cpu_text}")
    if args.json:
        args.json.write_text(json.dumps(_raw(args, results, calibration, load_before), indent=2))
    return 1 if failed else 0


def _raw(args: argparse.Namespace, results: dict[str, list[Variant]],
         calibration: dict[str, float], load_before: float) -> dict[str, Any]:
    return {
        "workers": args.workers, "concurrency": args.concurrency, "rounds": args.rounds,
        "duration_s": args.duration, "cpus": os.cpu_count(), "load_average_start": load_before,
        "calibration": calibration,
        "models": {name: [{"variant": v.variant, "error": v.error, "batch_stats": v.batch_stats,
                           "load_averages": v.load_averages,
                           "loads": [load.__dict__ | {"rps": load.rps} for load in v.loads]}
                          for v in variants] for name, variants in results.items()},
        "ratios": {name: _ratio(variants, "rps") for name, variants in results.items()},
    }


if __name__ == "__main__":
    sys.exit(main())
