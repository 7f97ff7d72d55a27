"""Turn measurements into the printed table, the ratios and the verdict on the issue's targets.

Ratios are only ever taken between servers measured in the same run on the same machine; the
absolute figures are noisy on a shared 2-core host, the ratios much less so.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.serving.loadgen import LoadResult
from bench.serving.processes import Readiness

OPTML = "optml"
CEILING = "bare-gunicorn"
PEER_TARGET_CONCURRENCY = 16
PEER_TARGET_RATIO = 1.5
CEILING_TARGET_RATIO = 0.5
BATCH_TARGET_RATIO = 3.0


@dataclass
class ServerResult:
    """One server's run: its start-up samples and one load result per concurrency."""

    name: str
    startups: list[Readiness] = field(default_factory=list)
    loads: dict[int, LoadResult] = field(default_factory=dict)
    error: str | None = None

    def startup_median(self) -> Readiness | None:
        if not self.startups:
            return None
        return Readiness(
            ping_seconds=statistics.median(s.ping_seconds for s in self.startups),
            invocation_seconds=statistics.median(s.invocation_seconds for s in self.startups))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "error": self.error,
                "startups": [asdict(s) for s in self.startups],
                "loads": {str(c): asdict(r) | {"rps": r.rps, "cpu_ms_per_request": r.cpu_ms_per_request}
                          for c, r in self.loads.items()}}


@dataclass(frozen=True)
class Verdict:
    """One target of the issue: what was compared, the measured ratio, and whether it is met."""

    target: str
    ratio: float | None
    met: bool
    detail: str


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def load_table(results: Sequence[ServerResult], concurrencies: Sequence[int]) -> str:
    """Server x concurrency -> req/s, p50, p99 (ms) and errors, as a Markdown table."""
    lines = ["| server | c | req/s | p50 ms | p99 ms | server CPU ms/req | server cores | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        if result.error and not result.loads:
            lines.append(f"| {result.name} | - | failed: {result.error.splitlines()[0][:80]} "
                         f"| | | | | |")
            continue
        for concurrency in concurrencies:
            load = result.loads.get(concurrency)
            if load is None:
                lines.append(f"| {result.name} | {concurrency} | - | - | - | - | - | - |")
                continue
            lines.append(f"| {result.name} | {concurrency} | {load.rps:.0f} | "
                         f"{load.p50_ms:.2f} | {load.p99_ms:.2f} | "
                         f"{_fmt(load.cpu_ms_per_request, 3)} | {_fmt(load.server_cores, 2)} | "
                         f"{load.errors} |")
    return "\n".join(lines)


def startup_table(results: Sequence[ServerResult]) -> str:
    """Median seconds from process start to the first 200 on /ping and on /invocations."""
    lines = ["| server | samples | first 200 /ping s | first 200 /invocations s |",
             "|---|---:|---:|---:|"]
    for result in results:
        median = result.startup_median()
        if median is None:
            continue
        lines.append(f"| {result.name} | {len(result.startups)} | "
                     f"{median.ping_seconds:.2f} | {median.invocation_seconds:.2f} |")
    return "\n".join(lines)


def _best_peer(by_name: Mapping[str, ServerResult], concurrency: int) -> ServerResult | None:
    peers = [r for name, r in by_name.items()
             if name not in {OPTML, CEILING} and concurrency in r.loads]
    return max(peers, key=lambda r: r.loads[concurrency].rps, default=None)


def verdicts(results: Sequence[ServerResult], concurrencies: Sequence[int]) -> list[Verdict]:
    """The issue's no-op-model targets, each as a ratio measured in this run."""
    by_name = {r.name: r for r in results}
    optml = by_name.get(OPTML)
    out: list[Verdict] = []
    if optml is None or not optml.loads:
        return [Verdict("optml measured", None, False,
                        (optml.error if optml and optml.error else "optml was not measured"))]
    c = PEER_TARGET_CONCURRENCY
    best = _best_peer(by_name, c)
    if c in optml.loads and best is not None:
        mine, theirs = optml.loads[c], best.loads[c]
        ratio = mine.rps / theirs.rps if theirs.rps else None
        p99_ok = mine.p99_ms <= theirs.p99_ms
        met = ratio is not None and ratio >= PEER_TARGET_RATIO and p99_ok and mine.errors == 0
        out.append(Verdict(
            f"optml / best peer ({best.name}) req/s at c={c} >= {PEER_TARGET_RATIO}, p99 no worse",
            ratio, met, f"{mine.rps:.0f} vs {theirs.rps:.0f} req/s; p99 {mine.p99_ms:.2f} vs "
                        f"{theirs.p99_ms:.2f} ms"))
    ceiling = by_name.get(CEILING)
    if ceiling is not None:
        for conc in concurrencies:
            if conc not in optml.loads or conc not in ceiling.loads:
                continue
            mine, top = optml.loads[conc], ceiling.loads[conc]
            ratio = mine.rps / top.rps if top.rps else None
            out.append(Verdict(
                f"optml / bare gunicorn req/s at c={conc} >= {CEILING_TARGET_RATIO}",
                ratio, ratio is not None and ratio >= CEILING_TARGET_RATIO,
                f"{mine.rps:.0f} vs {top.rps:.0f} req/s"))
    return out


def batching_verdict(unbatched: LoadResult | None, batched: LoadResult | None,
                     concurrency: int) -> Verdict:
    """Micro-batching on the ONNX MLP: batched / unbatched req/s at ``concurrency``."""
    if unbatched is None or batched is None:
        return Verdict(f"batched / unbatched req/s at c={concurrency} >= {BATCH_TARGET_RATIO}",
                       None, False, "not measured")
    ratio = batched.rps / unbatched.rps if unbatched.rps else None
    return Verdict(
        f"batched / unbatched req/s at c={concurrency} >= {BATCH_TARGET_RATIO}", ratio,
        ratio is not None and ratio >= BATCH_TARGET_RATIO and batched.errors == 0,
        f"{batched.rps:.0f} vs {unbatched.rps:.0f} req/s; p99 {batched.p99_ms:.2f} vs "
        f"{unbatched.p99_ms:.2f} ms")


def cpu_ratio_line(results: Sequence[ServerResult], concurrency: int) -> str:
    """Each server's CPU per request divided by optml's, at ``concurrency``.

    Above 1 means the server burns more CPU than optml for the same request. On a shared host
    this ratio moves much less between runs than requests/s does.
    """
    by_name = {r.name: r for r in results}
    optml = by_name.get(OPTML)
    mine = optml.loads.get(concurrency) if optml else None
    if mine is None or not mine.cpu_ms_per_request:
        return f"server CPU per request vs optml at c={concurrency}: not measured"
    parts = []
    for result in results:
        load = result.loads.get(concurrency)
        if result.name == OPTML or load is None or load.cpu_ms_per_request is None:
            continue
        parts.append(f"{result.name} {load.cpu_ms_per_request / mine.cpu_ms_per_request:.2f}x")
    return (f"server CPU per request vs optml ({mine.cpu_ms_per_request:.3f} ms) at "
            f"c={concurrency}: " + (", ".join(parts) or "no peer measured"))


def verdict_lines(items: Sequence[Verdict]) -> str:
    return "\n".join(f"- [{'met' if v.met else 'MISSED'}] {v.target}: {_fmt(v.ratio, 3)}x "
                     f"({v.detail})" for v in items)
