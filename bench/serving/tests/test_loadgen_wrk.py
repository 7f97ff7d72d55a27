"""One short real wrk run against a tiny loopback server (needs wrk: bench-serving-setup.sh)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.serving.loadgen import run_wrk
from bench.serving.processes import ManagedProcess, free_port, wait_ready
from bench.serving.tests.test_processes import _SERVER


def test_run_wrk_counts_requests_and_latency(tmp_path: Path) -> None:
    port = free_port()
    proc = ManagedProcess(name="tiny", argv=[sys.executable, "-c", _SERVER, str(port)],
                          env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                          log_path=tmp_path / "tiny.log").start()
    try:
        wait_ready(proc, port, b"{}", "application/json", timeout_seconds=30)
        result = run_wrk(port, "/invocations", b'{"a": "\\"quoted\\""}', "application/json",
                         concurrency=2, duration_s=1, workdir=tmp_path, max_requests=50)
    finally:
        proc.stop()
    assert result.errors == 0
    assert 0 < result.requests <= 2 * 50 + 2  # the per-thread cap bounds the count
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
