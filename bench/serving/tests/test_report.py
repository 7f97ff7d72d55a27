"""Ratios and target verdicts from synthetic measurements."""

from __future__ import annotations

import pytest

from bench.serving.loadgen import LoadResult
from bench.serving.processes import Readiness
from bench.serving.report import (
    ServerResult,
    batching_verdict,
    cpu_ratio_line,
    load_table,
    startup_table,
    verdicts,
)


def _load(c: int, rps: float, p99: float, errors: int = 0) -> LoadResult:
    return LoadResult(concurrency=c, requests=int(rps * 10) + errors, duration_s=10.0,
                      errors=errors, p50_ms=p99 / 2, p90_ms=p99 * 0.8, p99_ms=p99, max_ms=p99,
                      server_cpu_s=1.0)


def _results(optml_rps: float, optml_p99: float) -> list[ServerResult]:
    return [
        ServerResult("optml", loads={1: _load(1, 900, 2), 16: _load(16, optml_rps, optml_p99)}),
        ServerResult("mms", loads={1: _load(1, 300, 9), 16: _load(16, 1000, 40)}),
        ServerResult("nginx+gunicorn", loads={1: _load(1, 500, 5), 16: _load(16, 600, 30)}),
        ServerResult("bare-gunicorn", loads={1: _load(1, 1500, 1), 16: _load(16, 2000, 10)}),
    ]


def test_peer_target_uses_the_fastest_peer_and_requires_p99_no_worse() -> None:
    met = verdicts(_results(1600, 35), [1, 16])
    assert "mms" in met[0].target and met[0].ratio == pytest.approx(1.6) and met[0].met
    slow_tail = verdicts(_results(1600, 41), [1, 16])
    assert not slow_tail[0].met


def test_ceiling_target_is_checked_at_each_concurrency() -> None:
    items = verdicts(_results(900, 35), [1, 16])
    ceiling = [v for v in items if "bare" in v.target]
    assert [round(v.ratio or 0, 2) for v in ceiling] == [0.6, 0.45]
    assert [v.met for v in ceiling] == [True, False]


def test_missing_optml_is_a_missed_target_with_the_reason() -> None:
    items = verdicts([ServerResult("optml", error="ServerStartError: boom")], [16])
    assert len(items) == 1 and not items[0].met and "boom" in items[0].detail


def test_batching_verdict() -> None:
    assert batching_verdict(_load(32, 100, 50), _load(32, 400, 40), 32).met
    assert not batching_verdict(_load(32, 100, 50), _load(32, 250, 40), 32).met
    assert not batching_verdict(None, _load(32, 400, 40), 32).met


def test_tables_render_every_server_and_failures() -> None:
    results = _results(900, 35) + [ServerResult("broken", error="PeerMissingError: no nginx")]
    results[0].startups = [Readiness(0.5, 0.6), Readiness(0.7, 0.8), Readiness(0.6, 0.7)]
    table = load_table(results, [1, 16])
    assert "| optml | 16 | 900 |" in table
    assert "failed: PeerMissingError: no nginx" in table
    assert "| optml | 3 | 0.60 | 0.70 |" in startup_table(results)


def test_cpu_ratio_line_compares_every_server_to_optml() -> None:
    results = _results(500, 35)  # optml: 1.0 s CPU over 5000 requests = 0.2 ms/req
    line = cpu_ratio_line(results, 16)
    assert "optml (0.200 ms)" in line
    assert "mms 0.50x" in line and "bare-gunicorn 0.25x" in line
    assert "not measured" in cpu_ratio_line([ServerResult("mms")], 16)
