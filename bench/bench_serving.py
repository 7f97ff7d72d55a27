"""Serving benchmark: optml ``serve`` vs the reference toolkit on MMS, nginx+gunicorn+Flask, and
bare gunicorn, in one run on this machine (issues "Serving runtime" and 18, "Tail latency").

    .venv/bin/python bench/bench_serving.py              # full comparison (~4 minutes)
    .venv/bin/python bench/bench_serving.py --setup      # install the peers first
    .venv/bin/python bench/bench_serving.py --concurrency 16 --optml-before /tmp/old  # before/after

Every server gets the same no-op model tree, the same worker count and the same load generator
(wrk, keep-alive, POST of a small JSON body) on 127.0.0.1; each point is bounded in time. All
servers are started first (cold starts timed) and stay up; then every point (server x
concurrency) is measured in ``--rounds`` interleaved rounds and reported as medians, with
p50/p90/p99, req/s, server CPU and the load average. Prints Markdown tables, the ratios and the
verdicts on the issue's targets (req/s >= 1.5x the best peer at c=16, p99 no worse than its);
``--json`` keeps every round's raw figures. All servers are stopped and the temp dir removed at
the end, also on Ctrl-C. Micro-batching has its own benchmark: bench/bench_batching.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for bench.serving

from bench.serving import report
from bench.serving.fixtures import NOOP_PAYLOAD, Payload, write_noop_model
from bench.serving.loadgen import LoadGenError, run_wrk
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
DEFAULT_SERVERS = "optml,mms,nginx+gunicorn,bare-gunicorn"


def _servers(mms_venv: Path, optml_args: Sequence[str] = (),
             optml_before: Path | None = None) -> dict[str, Server]:
    optml = OptmlServe()
    optml.argv = (*optml.argv, *optml_args)
    servers: dict[str, Server] = {
        "optml": optml, "mms": MmsReference(venv=mms_venv),
        "nginx+gunicorn": NginxGunicornFlask(), "bare-gunicorn": BareGunicorn()}
    if optml_before is not None:
        before = OptmlServe(name="optml-before", tree=optml_before)
        before.argv = (*before.argv, *optml_args)
        servers["optml-before"] = before
    return servers


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


def load_average() -> float:
    """The 1-minute load average: how much the machine's other tenants were running."""
    return os.getloadavg()[0]


def _cpu_by_pid(procs: Sequence[ManagedProcess]) -> dict[int, float]:
    usage: dict[int, float] = {}
    for proc in procs:
        usage.update(proc.cpu_by_pid())
    return usage


@dataclass
class Running:
    """A started server kept up for the load rounds."""

    server: Server
    result: report.ServerResult
    ctx: LaunchContext
    procs: list[ManagedProcess]


class Runner:
    """Owns the temp dir and every started process, so that one ``close()`` cleans up all."""

    def __init__(self, root: Path, workers: int, log: Callable[[str], None]) -> None:
        self.root = root
        self.workers = workers
        self.log = log
        self._running: list[ManagedProcess] = []
        self._count = 0
        self.load_averages: list[float] = []

    def close(self) -> None:
        while self._running:
            self._running.pop().stop()

    def stop(self, procs: list[ManagedProcess]) -> None:
        for proc in procs:
            proc.stop()
            if proc in self._running:
                self._running.remove(proc)

    def _context(self, server: Server, make_model: Callable[[Path], Path]) -> LaunchContext:
        self._count += 1
        workdir = self.root / f"{self._count:02d}-{server.name.replace('+', '-')}"
        workdir.mkdir()
        base = workdir / "ml"
        make_model(base)
        return LaunchContext(base_dir=base, workdir=workdir, port=free_port(),
                             workers=self.workers)

    def start(self, server: Server, make_model: Callable[[Path], Path], payload: Payload,
              startup_repeats: int, warmup: tuple[int, float]) -> Running:
        """Cold-start ``startup_repeats`` times (the start-up figure); keep the last start up,
        warmed with ``warmup`` = (concurrency, seconds) of unrecorded load. A server that fails
        comes back with no processes and ``result.error`` set."""
        result = report.ServerResult(server.name)
        repeats = max(1, startup_repeats)
        for attempt in range(repeats):
            ctx = self._context(server, make_model)
            procs: list[ManagedProcess] = []
            keep = False
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
                if attempt == repeats - 1:
                    if warmup[1] > 0:
                        run_wrk(ctx.port, "/invocations", payload.body, payload.content_type,
                                warmup[0], warmup[1], ctx.workdir)
                    keep = True
                    return Running(server, result, ctx, procs)
            except (ServerStartError, PeerMissingError, LoadGenError, OSError) as exc:
                result.error = f"{type(exc).__name__}: {exc}"
                self.log(f"  {result.name}: FAILED: {result.error}")
                return Running(server, result, ctx, [])
            finally:
                if not keep:
                    self.stop(procs)
        raise AssertionError("unreachable: the last attempt returns")

    def point(self, running: Running, payload: Payload, concurrency: int,
              duration_s: float) -> None:
        """One recorded load point on a running server; a failure marks the server failed."""
        ctx, procs, result = running.ctx, running.procs, running.result
        try:
            before = _cpu_by_pid(procs)
            load = run_wrk(ctx.port, "/invocations", payload.body, payload.content_type,
                           concurrency, duration_s, ctx.workdir)
        except (LoadGenError, OSError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            self.log(f"  {result.name}: c={concurrency}: FAILED: {result.error}")
            return
        after = _cpu_by_pid(procs)
        # processes that exited during the run are lost to both figures alike
        used = sorted((max(0.0, seconds - before.get(pid, 0.0)) for pid, seconds in after.items()),
                      reverse=True)
        load = dataclasses.replace(load, server_cpu_s=sum(used), process_cpu_s=tuple(used))
        result.add(load)
        average = load_average()
        self.load_averages.append(average)
        self.log(f"  {result.name}: c={concurrency}: {load.rps:.0f} req/s, p50 "
                 f"{load.p50_ms:.2f} p90 {load.p90_ms:.2f} p99 {load.p99_ms:.2f} ms, server CPU "
                 f"{load.cpu_ms_per_request or 0:.3f} ms/req (CPU s per process: "
                 f"{report.process_split(load)}), errors {load.errors}, load average "
                 f"{average:.2f}")


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default=DEFAULT_SERVERS,
                        help="comma list of: optml, mms, nginx+gunicorn, bare-gunicorn "
                             "(and optml-before with --optml-before)")
    parser.add_argument("--concurrency", default="1,16,64", help="comma list (default 1,16,64)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of every point, servers interleaved; figures are medians")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per point")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unrecorded load")
    parser.add_argument("--workers", type=int, default=2, help="workers for every server")
    parser.add_argument("--startup-repeats", type=int, default=3,
                        help="cold starts per server for the start-up figure (median)")
    parser.add_argument("--mms-venv", type=Path, default=DEFAULT_MMS_VENV)
    parser.add_argument("--optml-args", default="",
                        help="extra arguments for `optml serve`, space-separated "
                             "(e.g. '--worker-class sync'); default: none, as images run it")
    parser.add_argument("--optml-before", type=Path, metavar="DIR",
                        help="also run `optml serve` from DIR as server optml-before (an export "
                             "of an older commit: git archive REV toolkit | tar -x -C DIR), "
                             "interleaved with the current tree, never counted as a peer")
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


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    concurrencies = _int_list(args.concurrency)
    if args.rounds < 1:
        raise SystemExit(f"bench_serving: --rounds must be >= 1, got {args.rounds}")
    if args.optml_before is not None and not (args.optml_before / "toolkit").is_dir():
        raise SystemExit(f"bench_serving: --optml-before {args.optml_before} holds no toolkit/")
    catalogue = _servers(args.mms_venv, args.optml_args.split(), args.optml_before)
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    if args.optml_before is not None and "optml-before" not in names:
        names.insert(names.index("optml") + 1 if "optml" in names else 0, "optml-before")
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
    load_before = load_average()
    try:
        log(f"bench_serving: {args.workers} workers each, {args.rounds} rounds of "
            f"{args.duration:.0f} s per point, load average {load_before:.2f}, scratch {root}")
        running: list[Running] = []
        for name in names:
            log(f"{name}: starting")
            started = runner.start(catalogue[name], write_noop_model, NOOP_PAYLOAD,
                                   args.startup_repeats, (max(concurrencies), args.warmup))
            results.append(started.result)
            if started.procs:
                running.append(started)
        # Every server stays up; each round visits every point of every server, the servers'
        # order rotating from round to round, so a disturbance of the machine (other tenants)
        # falls on one round of each, not on all rounds of one.
        for number in range(args.rounds):
            log(f"round {number + 1} of {args.rounds}:")
            order = running[number % len(running):] + running[:number % len(running)] \
                if running else []
            for concurrency in concurrencies:
                for server in order:
                    if server.result.error is None:
                        runner.point(server, NOOP_PAYLOAD, concurrency, args.duration)
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

    _print_report(results, concurrencies, args, (load_before, runner.load_averages,
                                                 load_average()))
    return 0


def _print_report(results: list[report.ServerResult], concurrencies: Sequence[int],
                  args: argparse.Namespace,
                  loads: tuple[float, Sequence[float], float]) -> None:
    before, during, after = loads
    spread = f", {min(during):.2f}-{max(during):.2f} during the points" if during else ""
    print(f"\n## No-op model, {args.workers} workers each, medians of {args.rounds} rounds of "
          f"{args.duration:.0f} s per point\n")
    print(f"Load average (1 min): {before:.2f} at the start{spread}, {after:.2f} at the end; "
          f"{os.cpu_count()} CPUs.\n")
    print(report.load_table(results, concurrencies))
    for concurrency in concurrencies:
        print(f"\n### Every round at c={concurrency}\n")
        print(report.rounds_table(results, concurrency))
    print("\n## Start-up (process start to first 200)\n")
    print(report.startup_table(results))
    verdicts = report.verdicts(results, concurrencies)
    print("\n## Targets\n")
    print(report.verdict_lines(verdicts))
    for concurrency in concurrencies:
        print(f"- {report.cpu_ratio_line(results, concurrency)}")
    if args.json:
        args.json.write_text(json.dumps({
            "workers": args.workers, "duration_s": args.duration, "rounds": args.rounds,
            "cpus": os.cpu_count(),
            "load_average": {"start": before, "points": list(during), "end": after},
            "servers": [r.to_json() for r in results],
            "verdicts": [v.__dict__ for v in verdicts]}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
