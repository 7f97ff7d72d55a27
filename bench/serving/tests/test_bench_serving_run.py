"""A short real run of bench_serving.py (needs wrk: bench-serving-setup.sh): rounds, medians,
the before/after server, and nothing left behind."""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench_serving.py"
REPO = SCRIPT.parents[1]


def _scratch_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("optml-bench-serving-*")}


def test_rounds_are_reported_as_medians_with_the_before_tree(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_serving", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_serving"] = module
    before = _scratch_dirs()
    raw = tmp_path / "raw.json"
    try:
        spec.loader.exec_module(module)
        assert module.main(["--servers", "optml", "--optml-before", str(REPO), "--rounds", "2",
                            "--duration", "1", "--concurrency", "2", "--startup-repeats", "1",
                            "--warmup", "0", "--json", str(raw)]) == 0
    finally:
        sys.modules.pop("bench_serving", None)
    out = capsys.readouterr().out
    assert "medians of 2 rounds" in out and "Load average (1 min):" in out
    assert "| optml | 2 | 2 |" in out and "| optml-before | 2 | 2 |" in out
    data = json.loads(raw.read_text())
    assert [s["name"] for s in data["servers"]] == ["optml", "optml-before"]
    assert all(len(s["loads"]["2"]) == 2 and all(r["errors"] == 0 for r in s["loads"]["2"])
               for s in data["servers"])
    assert len(data["load_average"]["points"]) == 4
    # the master and both workers, each with its own CPU figure
    assert all(len(r["process_cpu_s"]) == 3 for s in data["servers"] for r in s["loads"]["2"])
    assert "CPU s per process, busiest first" in out
    assert _scratch_dirs() <= before  # the scratch dir is gone
