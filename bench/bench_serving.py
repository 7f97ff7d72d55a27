"""Serving benchmark: optml ``serve`` vs the reference toolkit on MMS, nginx+gunicorn+Flask, and
bare gunicorn, in one run on this machine (issue "Serving runtime").

    .venv/bin/python bench/bench_serving.py              # full comparison (~5 minutes)
    .venv/bin/python bench/bench_serving.py --setup      # install the peers first
    .venv/bin/python bench/bench_serving.py --duration 3 --servers optml,bare-gunicorn

Every server gets the same no-op model tree, the same worker count and the same load generator
(wrk, keep-alive, POST of a small JSON body) on 127.0.0.1; each point is bounded in time. Then
optml alone serves an ONNX MLP unbatched and with ``batch_predict_fn`` at concurrency 32. Prints
Markdown tables, the ratios and the verdict on the issue's targets; ``--json`` keeps the raw
figures. All servers are stopped and the temp dir removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for bench.serving

from bench.serving import report
from bench.serving.fixtures import (
    NOOP_PAYLOAD,
    MlpShape,
    Payload,
    mlp_payload,
    write_noop_model,
    write_onnx_model,
)
from bench.serving.loadgen import LoadGenError, LoadResult, run_wrk
from bench.serving.processes import ManagedProcess, ServerStartError, free_port, wait_ready
from bench.serving.servers import (
    DEFAULT_MMS_VENV,
    BareGunicorn,
    LaunchContext,
    MmsReference,
    NginxGunicornFlask,
    OptmlServe,
    PeerMissingError,
    Server,
)

SETUP_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench-serving-setup.sh"


def _servers(mms_venv: Path, optml_args: Sequence[str] = ()) -> dict[str, Server]:
    optml = OptmlServe()
    optml.argv = (*optml.argv, *optml_args)
    return {"optml": optml, "mms": MmsReference(venv=mms_venv),
            "nginx+gunicorn": NginxGunicornFlask(), "bare-gunicorn": BareGunicorn()}


def _missing_peers(names: Sequence[str], mms_venv: Path) -> list[str]:
    missing = []
    if shutil.which("wrk") is None:
        missing.append("wrk")
    if "nginx+gunicorn" in names and shutil.which("nginx") is None \
            and not Path("/usr/sbin/nginx").exists():
        missing.append("nginx")
    if "mms" in names and not (mms_venv / "bin" / "multi-model-server").exists():
        missing.append(f"Multi Model Server venv ({mms_venv})")
    if "mms" in names and shutil.which("java") is None:
        missing.append("java")
    return missing


class Runner:
    """Owns the temp dir and every started process, so that one ``close()`` cleans up all."""

    def __init__(self, root: Path, workers: int, log: Callable[[str], None]) -> None:
        self.root = root
        self.workers = workers
        self.log = log
        self._running: list[ManagedProcess] = []
        self._count = 0

    def close(self) -> None:
        while self._running:
            self._running.pop().stop()

    def _stop_all(self, procs: list[ManagedProcess]) -> None:
        for proc in procs:
            proc.stop()
            if proc in self._running:
                self._running.remove(proc)

    def _context(self, server: Server, make_model: Callable[[Path], Path],
                 extra_env: dict[str, str] | None) -> LaunchContext:
        self._count += 1
        workdir = self.root / f"{self._count:02d}-{server.name.replace('+', '-')}"
        workdir.mkdir()
        base = workdir / "ml"
        make_model(base)
        return LaunchContext(base_dir=base, workdir=workdir, port=free_port(),
                             workers=self.workers, extra_env=extra_env or {})

    def measure(self, server: Server, make_model: Callable[[Path], Path], payload: Payload,
                concurrencies: Sequence[int], duration_s: float, warmup_s: float,
                startup_repeats: int, extra_env: dict[str, str] | None = None,
                label: str | None = None) -> report.ServerResult:
        """Cold-start the server ``startup_repeats`` times; load-test the last start."""
        result = report.ServerResult(label or server.name)
        for attempt in range(max(1, startup_repeats)):
            ctx = self._context(server, make_model, extra_env)
            procs: list[ManagedProcess] = []
            try:
                procs = server.launch(ctx)
                self._running.extend(procs)
                leader = procs[-1] if len(procs) > 1 else procs[0]
                # Multi-process peers: time from the first process started.
                leader.started_at = min(p.started_at for p in procs)
                ready = wait_ready(leader, ctx.port, payload.body, payload.content_type,
                                   server.ready_timeout_s)
                result.startups.append(ready)
                self.log(f"  {result.name}: start {attempt + 1}: /ping 200 after "
                         f"{ready.ping_seconds:.2f} s, first invocation "
                         f"{ready.invocation_seconds:.2f} s")
                if attempt == max(1, startup_repeats) - 1:
                    self._load(result, ctx, procs, payload, concurrencies, duration_s,
                               warmup_s)
            except (ServerStartError, PeerMissingError, LoadGenError, OSError) as exc:
                result.error = f"{type(exc).__name__}: {exc}"
                self.log(f"  {result.name}: FAILED: {result.error}")
                return result
            finally:
                self._stop_all(procs)
        return result

    def _load(self, result: report.ServerResult, ctx: LaunchContext,
              procs: Sequence[ManagedProcess], payload: Payload, concurrencies: Sequence[int],
              duration_s: float, warmup_s: float) -> None:
        if warmup_s > 0:
            run_wrk(ctx.port, "/invocations", payload.body, payload.content_type,
                    max(concurrencies), warmup_s, ctx.workdir)
        for concurrency in concurrencies:
            cpu_before = sum(p.cpu_seconds() for p in procs)
            load = run_wrk(ctx.port, "/invocations", payload.body, payload.content_type,
                           concurrency, duration_s, ctx.workdir)
            load = dataclasses.replace(
                load, server_cpu_s=sum(p.cpu_seconds() for p in procs) - cpu_before)
            result.loads[concurrency] = load
            self.log(f"  {result.name}: c={concurrency}: {load.rps:.0f} req/s, p50 "
                     f"{load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms, server CPU "
                     f"{load.cpu_ms_per_request or 0:.3f} ms/req, errors {load.errors}")


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="optml,mms,nginx+gunicorn,bare-gunicorn",
                        help="comma list of: optml, mms, nginx+gunicorn, bare-gunicorn")
    parser.add_argument("--concurrency", default="1,16,64", help="comma list (default 1,16,64)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per point")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unrecorded load")
    parser.add_argument("--workers", type=int, default=2, help="workers for every server")
    parser.add_argument("--startup-repeats", type=int, default=3,
                        help="cold starts per server for the start-up figure (median)")
    parser.add_argument("--batch-concurrency", type=int, default=32)
    parser.add_argument("--no-batching", action="store_true", help="skip the ONNX MLP case")
    parser.add_argument("--mms-venv", type=Path, default=DEFAULT_MMS_VENV)
    parser.add_argument("--optml-args", default="",
                        help="extra arguments for `optml serve`, space-separated "
                             "(e.g. '--worker-class sync'); default: none, as images run it")
    parser.add_argument("--setup", action="store_true",
                        help=f"run {SETUP_SCRIPT.name} first (installs wrk, nginx, MMS venv)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--keep-temp", action="store_true", help="keep logs (debugging)")
    return parser.parse_args(argv)


def _int_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise SystemExit(f"bench_serving: bad concurrency list {text!r}")
    return values


def _onnx_tree(base: Path, *, batched: bool, shape: MlpShape) -> Path:
    return write_onnx_model(base, batched, shape)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    concurrencies = _int_list(args.concurrency)
    catalogue = _servers(args.mms_venv, args.optml_args.split())
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise SystemExit(f"bench_serving: unknown servers {unknown}; known: {list(catalogue)}")
    if args.setup:
        subprocess.run(["bash", str(SETUP_SCRIPT)], check=True)
    missing = _missing_peers(names, args.mms_venv)
    if missing:
        print(f"bench_serving: missing {', '.join(missing)}.\n  Install the peers with: "
              f"bash {SETUP_SCRIPT}\n  (or run this benchmark with --setup)", file=sys.stderr)
        return 2

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    # Ctrl-C, SIGTERM and a closed terminal all end in the same clean-up. SIGINT is set
    # explicitly because a shell starts background jobs with it ignored.
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in stop_signals}
    root = Path(tempfile.mkdtemp(prefix="optml-bench-serving-"))
    runner = Runner(root, args.workers, log)
    results: list[report.ServerResult] = []
    batch: dict[str, LoadResult | None] = {"unbatched": None, "batched": None}
    batch_sizes: tuple[float, int, int] | None = None
    try:
        log(f"bench_serving: {args.workers} workers each, {args.duration:.0f} s per point, "
            f"scratch {root}")
        for name in names:
            log(f"{name}:")
            results.append(runner.measure(catalogue[name], write_noop_model, NOOP_PAYLOAD,
                                          concurrencies, args.duration, args.warmup,
                                          args.startup_repeats))
        if not args.no_batching and "optml" in names:
            shape = MlpShape()
            payload = mlp_payload(shape)
            for variant in ("unbatched", "batched"):
                log(f"optml ONNX MLP, {variant}:")
                batch_log = root / f"batches-{variant}.log"
                measured = runner.measure(
                    catalogue["optml"],
                    functools.partial(_onnx_tree, batched=variant == "batched", shape=shape),
                    payload, [args.batch_concurrency], args.duration, args.warmup, 1,
                    extra_env={"BENCH_BATCH_LOG": str(batch_log)},
                    label=f"optml-onnx-{variant}")
                batch[variant] = measured.loads.get(args.batch_concurrency)
                if batch_log.exists():
                    sizes = [int(x) for x in batch_log.read_text().split()]
                    batch_sizes = (sum(sizes) / len(sizes), max(sizes), len(sizes))
                    log(f"  batches (warm-up and load): {len(sizes)}, mean size "
                        f"{batch_sizes[0]:.2f}, max {batch_sizes[1]}")
    except KeyboardInterrupt:
        log("bench_serving: interrupted; stopping servers")
        return 130
    finally:
        runner.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if args.keep_temp:
            log(f"bench_serving: kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    _print_report(results, concurrencies, batch, batch_sizes, args)
    return 0


def _print_report(results: list[report.ServerResult], concurrencies: Sequence[int],
                  batch: dict[str, LoadResult | None],
                  batch_sizes: tuple[float, int, int] | None, args: argparse.Namespace) -> None:
    print(f"\n## No-op model, {args.workers} workers each, {args.duration:.0f} s per point\n")
    print(report.load_table(results, concurrencies))
    print("\n## Start-up (process start to first 200)\n")
    print(report.startup_table(results))
    verdicts = report.verdicts(results, concurrencies)
    if not args.no_batching and any(r.name == "optml" for r in results):
        print(f"\n## Micro-batching, ONNX MLP, c={args.batch_concurrency}\n")
        rows = [report.ServerResult(f"optml {variant}", loads={args.batch_concurrency: load})
                for variant, load in batch.items() if load is not None]
        print(report.load_table(rows, [args.batch_concurrency]))
        if batch_sizes is not None:
            print(f"\nBatches run by batch_predict_fn (warm-up included): {batch_sizes[2]}, "
                  f"mean size {batch_sizes[0]:.2f}, max {batch_sizes[1]}.")
        verdicts.append(report.batching_verdict(batch["unbatched"], batch["batched"],
                                                args.batch_concurrency))
    print("\n## Targets\n")
    print(report.verdict_lines(verdicts))
    for concurrency in concurrencies:
        print(f"- {report.cpu_ratio_line(results, concurrency)}")
    if args.json:
        args.json.write_text(json.dumps({
            "workers": args.workers, "duration_s": args.duration, "cpus": os.cpu_count(),
            "servers": [r.to_json() for r in results],
            "batching": {k: (None if v is None else v.__dict__ | {"rps": v.rps})
                         for k, v in batch.items()},
            "batch_sizes": batch_sizes,
            "verdicts": [v.__dict__ for v in verdicts]}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
