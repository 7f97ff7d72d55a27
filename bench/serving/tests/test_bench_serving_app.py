"""The in-process microbenchmark runs, checks optml's answers first, and prints its table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench_serving_app.py"


def test_microbenchmark_prints_one_row_per_request_kind(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    spec = importlib.util.spec_from_file_location("bench_serving_app", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_serving_app"] = module
    try:
        spec.loader.exec_module(module)
        assert module.main(["--requests", "20", "--rounds", "1"]) == 0
    finally:
        sys.modules.pop("bench_serving_app", None)
    out = capsys.readouterr().out
    assert "| POST /invocations |" in out and "| GET /ping |" in out
