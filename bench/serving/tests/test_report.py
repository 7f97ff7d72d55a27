"""Ratios and target verdicts from synthetic measurements."""

from __future__ import annotations

import dataclasses

import pytest

from bench.serving.loadgen import LoadResult
from bench.serving.processes import Readiness
from bench.serving.report import (
    ServerResult,
    cpu_ratio_line,
    load_table,
    process_split,
    rounds_table,
    startup_table,
    verdicts,
)


def _load(c: int, rps: float, p99: float, errors: int = 0) -> LoadResult:
    return LoadResult(concurrency=c, requests=int(rps * 10) + errors, duration_s=10.0,
                      errors=errors, p50_ms=p99 / 2, p90_ms=p99 * 0.8, p99_ms=p99, max_ms=p99,
                      server_cpu_s=1.0)


def _results(optml_rps: float, optml_p99: float) -> list[ServerResult]:
    return [
        ServerResult("optml", loads={1: [_load(1, 900, 2)], 16: [_load(16, optml_rps, optml_p99)]}),
        ServerResult("mms", loads={1: [_load(1, 300, 9)], 16: [_load(16, 1000, 40)]}),
        ServerResult("nginx+gunicorn", loads={1: [_load(1, 500, 5)], 16: [_load(16, 600, 30)]}),
        ServerResult("bare-gunicorn", loads={1: [_load(1, 1500, 1)], 16: [_load(16, 2000, 10)]}),
    ]


def test_peer_target_uses_the_fastest_peer_and_requires_p99_no_worse() -> None:
    met = verdicts(_results(1600, 35), [1, 16])
    assert "mms" in met[0].target and met[0].ratio == pytest.approx(1.6) and met[0].met
    assert "p99" in met[1].target and met[1].met
    assert "lowest peer p99 30.00 ms (nginx+gunicorn)" in met[1].detail
    slow_tail = verdicts(_results(1600, 41), [1, 16])
    assert slow_tail[0].met and not slow_tail[1].met


def test_verdicts_take_medians_of_rounds_so_one_bad_round_does_not_decide() -> None:
    results = _results(1600, 35)
    results[0].add(_load(16, 400, 200))  # one disturbed round of optml ...
    results[0].add(_load(16, 1700, 30))
    for _ in range(2):
        results[1].add(_load(16, 1000, 40))
    point = results[0].point(16)
    assert point is not None and len(point.rounds) == 3
    assert point.rps == pytest.approx(1600) and point.p99_ms == 35 and point.max_ms == 200
    throughput, tail = verdicts(results, [16])[:2]
    assert throughput.met and tail.met  # ... is outvoted by the other two
    assert "met in 2 of 3 rounds" in throughput.detail and "met in 2 of 3 rounds" in tail.detail


def test_optml_variants_are_not_peers() -> None:
    results = _results(1600, 35) + [
        ServerResult("optml-unbalanced", loads={16: [_load(16, 5000, 1)]})]
    assert "mms" in verdicts(results, [16])[0].target


def test_ceiling_target_is_checked_at_each_concurrency() -> None:
    items = verdicts(_results(900, 35), [1, 16])
    ceiling = [v for v in items if "bare" in v.target]
    assert [round(v.ratio or 0, 2) for v in ceiling] == [0.6, 0.45]
    assert [v.met for v in ceiling] == [True, False]


def test_missing_optml_is_a_missed_target_with_the_reason() -> None:
    items = verdicts([ServerResult("optml", error="ServerStartError: boom")], [16])
    assert len(items) == 1 and not items[0].met and "boom" in items[0].detail


def test_tables_render_every_server_and_failures() -> None:
    results = _results(900, 35) + [ServerResult("broken", error="PeerMissingError: no nginx")]
    results[0].startups = [Readiness(0.5, 0.6), Readiness(0.7, 0.8), Readiness(0.6, 0.7)]
    table = load_table(results, [1, 16])
    assert "| optml | 16 | 1 | 900 | 17.50 | 28.00 | 35.00 |" in table
    assert "| mms | 1000 | 40.00 | - |" in rounds_table(results, 16)
    assert "failed: PeerMissingError: no nginx" in table
    assert "| optml | 3 | 0.60 | 0.70 |" in startup_table(results)


def test_process_split_lists_the_busiest_processes_first() -> None:
    load = dataclasses.replace(_load(16, 100, 10), process_cpu_s=(2.5, 2.25, 0.1, 0.0, 0.0))
    assert process_split(load) == "2.50/2.25/0.10/0.00 (+1)"
    assert process_split(_load(16, 100, 10)) == "-"


def test_cpu_ratio_line_compares_every_server_to_optml() -> None:
    results = _results(500, 35)  # optml: 1.0 s CPU over 5000 requests = 0.2 ms/req
    line = cpu_ratio_line(results, 16)
    assert "optml (0.200 ms)" in line
    assert "mms 0.50x" in line and "bare-gunicorn 0.25x" in line
    assert "not measured" in cpu_ratio_line([ServerResult("mms")], 16)
