"""Turn measurements into the printed table, the ratios and the verdict on the issue's targets.

Ratios are only ever taken between servers measured in the same run on the same machine; the
absolute figures are noisy on a shared 2-core host, the ratios much less so.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.serving.loadgen import LoadResult
from bench.serving.processes import Readiness

OPTML = "optml"
CEILING = "bare-gunicorn"
PEER_TARGET_CONCURRENCY = 16
PEER_TARGET_RATIO = 1.5
CEILING_TARGET_RATIO = 0.5


@dataclass(frozen=True)
class Point:
    """One server at one concurrency over all rounds: each figure is the median of the rounds'
    (so one round disturbed by another tenant of the machine does not decide), errors summed."""

    rounds: tuple[LoadResult, ...]

    @staticmethod
    def _median(values: Sequence[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    @property
    def rps(self) -> float:
        return statistics.median(r.rps for r in self.rounds)

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.p50_ms for r in self.rounds)

    @property
    def p90_ms(self) -> float:
        return statistics.median(r.p90_ms for r in self.rounds)

    @property
    def p99_ms(self) -> float:
        return statistics.median(r.p99_ms for r in self.rounds)

    @property
    def max_ms(self) -> float:
        return max(r.max_ms for r in self.rounds)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)

    @property
    def cpu_ms_per_request(self) -> float | None:
        return self._median([r.cpu_ms_per_request for r in self.rounds])

    @property
    def server_cores(self) -> float | None:
        return self._median([r.server_cores for r in self.rounds])


@dataclass
class ServerResult:
    """One server's run: its start-up samples and, per concurrency, one load result per round."""

    name: str
    startups: list[Readiness] = field(default_factory=list)
    loads: dict[int, list[LoadResult]] = field(default_factory=dict)
    error: str | None = None

    def add(self, load: LoadResult) -> None:
        self.loads.setdefault(load.concurrency, []).append(load)

    def point(self, concurrency: int) -> Point | None:
        rounds = self.loads.get(concurrency)
        return Point(tuple(rounds)) if rounds else None

    def startup_median(self) -> Readiness | None:
        if not self.startups:
            return None
        return Readiness(
            ping_seconds=statistics.median(s.ping_seconds for s in self.startups),
            invocation_seconds=statistics.median(s.invocation_seconds for s in self.startups))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "error": self.error,
                "startups": [asdict(s) for s in self.startups],
                "loads": {str(c): [asdict(r) | {"rps": r.rps,
                                                "cpu_ms_per_request": r.cpu_ms_per_request}
                                   for r in rounds]
                          for c, rounds in self.loads.items()}}


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
    """Server x concurrency -> medians over the rounds of req/s, p50/p90/p99 (ms), server CPU
    per request and cores; the slowest response of all rounds; errors of all rounds."""
    lines = ["| server | c | rounds | req/s | p50 ms | p90 ms | p99 ms | max ms | "
             "server CPU ms/req | server cores | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        if result.error and not result.loads:
            lines.append(f"| {result.name} | - | - | failed: "
                         f"{result.error.splitlines()[0][:80]} | | | | | | | |")
            continue
        for concurrency in concurrencies:
            point = result.point(concurrency)
            if point is None:
                lines.append(f"| {result.name} | {concurrency} | 0 | - | - | - | - | - | - | - "
                             f"| - |")
                continue
            lines.append(f"| {result.name} | {concurrency} | {len(point.rounds)} | "
                         f"{point.rps:.0f} | {point.p50_ms:.2f} | {point.p90_ms:.2f} | "
                         f"{point.p99_ms:.2f} | {point.max_ms:.1f} | "
                         f"{_fmt(point.cpu_ms_per_request, 3)} | {_fmt(point.server_cores, 2)} | "
                         f"{point.errors} |")
    return "\n".join(lines)


def process_split(load: LoadResult, top: int = 4) -> str:
    """The busiest ``top`` server processes' CPU seconds in one run, e.g. ``2.41/2.30/0.01``."""
    if not load.process_cpu_s:
        return "-"
    shown = "/".join(f"{seconds:.2f}" for seconds in load.process_cpu_s[:top])
    rest = len(load.process_cpu_s) - top
    return shown + (f" (+{rest})" if rest > 0 else "")


def rounds_table(results: Sequence[ServerResult], concurrency: int) -> str:
    """Every round's req/s and p99 at ``concurrency``: the spread behind the medians, and how the
    server's processes shared the CPU (an idle worker shows as ~0)."""
    lines = ["| server | req/s per round | p99 ms per round | CPU s per process, busiest first |",
             "|---|---|---|---|"]
    for result in results:
        rounds = result.loads.get(concurrency)
        if not rounds:
            continue
        lines.append(f"| {result.name} | {', '.join(f'{r.rps:.0f}' for r in rounds)} | "
                     f"{', '.join(f'{r.p99_ms:.2f}' for r in rounds)} | "
                     f"{'; '.join(process_split(r) for r in rounds)} |")
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


def is_optml(name: str) -> bool:
    """optml itself and its variants (e.g. ``optml-unbalanced``) are never peers."""
    return name == OPTML or name.startswith(OPTML + "-")


def _best_peer(by_name: Mapping[str, ServerResult], concurrency: int) -> ServerResult | None:
    """The peer with the highest median req/s at ``concurrency``."""
    peers = [(r, point) for name, r in by_name.items()
             if not is_optml(name) and name != CEILING
             and (point := r.point(concurrency)) is not None]
    best = max(peers, key=lambda pair: pair[1].rps, default=None)
    return None if best is None else best[0]


def _rounds_met(mine: Sequence[LoadResult], theirs: Sequence[LoadResult],
                check: Callable[[LoadResult, LoadResult], bool]) -> str:
    pairs = list(zip(mine, theirs, strict=False))
    return f"met in {sum(check(a, b) for a, b in pairs)} of {len(pairs)} rounds"


def peer_verdicts(by_name: Mapping[str, ServerResult], optml: ServerResult,
                  concurrency: int = PEER_TARGET_CONCURRENCY) -> list[Verdict]:
    """The two peer targets at ``concurrency``, on medians: req/s >= 1.5x the best peer's, and
    p99 no worse than the best peer's (best = highest median req/s); each also per round."""
    best = _best_peer(by_name, concurrency)
    mine = optml.point(concurrency)
    if best is None or mine is None:
        return []
    theirs = best.point(concurrency)
    assert theirs is not None
    ratio = mine.rps / theirs.rps if theirs.rps else None
    peers_p99 = sorted((point.p99_ms, name) for name, r in by_name.items()
                       if not is_optml(name) and name != CEILING
                       and (point := r.point(concurrency)) is not None)
    lowest = f"; lowest peer p99 {peers_p99[0][0]:.2f} ms ({peers_p99[0][1]})" if peers_p99 else ""
    throughput = _rounds_met(mine.rounds, theirs.rounds,
                             lambda a, b: b.rps > 0 and a.rps / b.rps >= PEER_TARGET_RATIO)
    tail = _rounds_met(mine.rounds, theirs.rounds, lambda a, b: a.p99_ms <= b.p99_ms)
    return [
        Verdict(f"optml / best peer ({best.name}) req/s at c={concurrency} >= "
                f"{PEER_TARGET_RATIO} (medians)", ratio,
                ratio is not None and ratio >= PEER_TARGET_RATIO and mine.errors == 0,
                f"{mine.rps:.0f} vs {theirs.rps:.0f} req/s; {throughput}"),
        Verdict(f"optml p99 at c={concurrency} no worse than the best peer's ({best.name}, "
                f"medians)", mine.p99_ms / theirs.p99_ms if theirs.p99_ms else None,
                mine.p99_ms <= theirs.p99_ms and mine.errors == 0,
                f"p99 {mine.p99_ms:.2f} vs {theirs.p99_ms:.2f} ms, p90 {mine.p90_ms:.2f} vs "
                f"{theirs.p90_ms:.2f}, p50 {mine.p50_ms:.2f} vs {theirs.p50_ms:.2f}; {tail}"
                f"{lowest}"),
    ]


def verdicts(results: Sequence[ServerResult], concurrencies: Sequence[int]) -> list[Verdict]:
    """The issue's no-op-model targets, each as a ratio of medians measured in this run."""
    by_name = {r.name: r for r in results}
    optml = by_name.get(OPTML)
    if optml is None or not optml.loads:
        return [Verdict("optml measured", None, False,
                        (optml.error if optml and optml.error else "optml was not measured"))]
    out = peer_verdicts(by_name, optml)
    ceiling = by_name.get(CEILING)
    if ceiling is not None:
        for conc in concurrencies:
            mine, top = optml.point(conc), ceiling.point(conc)
            if mine is None or top is None:
                continue
            ratio = mine.rps / top.rps if top.rps else None
            out.append(Verdict(
                f"optml / bare gunicorn req/s at c={conc} >= {CEILING_TARGET_RATIO}",
                ratio, ratio is not None and ratio >= CEILING_TARGET_RATIO,
                f"{mine.rps:.0f} vs {top.rps:.0f} req/s"))
    return out


def cpu_ratio_line(results: Sequence[ServerResult], concurrency: int) -> str:
    """Each server's CPU per request divided by optml's, at ``concurrency`` (medians).

    Above 1 means the server burns more CPU than optml for the same request. On a shared host
    this ratio moves much less between runs than requests/s does.
    """
    by_name = {r.name: r for r in results}
    optml = by_name.get(OPTML)
    mine = optml.point(concurrency) if optml else None
    if mine is None or not mine.cpu_ms_per_request:
        return f"server CPU per request vs optml at c={concurrency}: not measured"
    parts = []
    for result in results:
        point = result.point(concurrency)
        if result.name == OPTML or point is None or point.cpu_ms_per_request is None:
            continue
        parts.append(f"{result.name} {point.cpu_ms_per_request / mine.cpu_ms_per_request:.2f}x")
    return (f"server CPU per request vs optml ({mine.cpu_ms_per_request:.3f} ms) at "
            f"c={concurrency}: " + (", ".join(parts) or "no peer measured"))


def verdict_lines(items: Sequence[Verdict]) -> str:
    return "\n".join(f"- [{'met' if v.met else 'MISSED'}] {v.target}: {_fmt(v.ratio, 3)}x "
                     f"({v.detail})" for v in items)
