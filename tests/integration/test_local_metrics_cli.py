"""``optml local metrics NAME`` as a user runs it (real ``optml`` processes) on a state directory
holding an endpoint's stored datapoints (written here as its router writes them) and a training
job's MetricDefinitions series."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from local_mode.cloudwatch.datums import (
    ENDPOINT_INSTANCE_NAMESPACE,
    SAGEMAKER_NAMESPACE,
    Datum,
    DatumWriter,
    dimensions_of,
    endpoint_metrics_file,
)
from local_mode.state import StateStore
from tests.integration.test_cli_bad_input import assert_refused

SECONDS = 6
"""Seconds of traffic written, one datum per metric, variant and second."""

def metrics_file(store: StateStore, endpoint: str) -> Path:
    """Where the endpoint's runner writes its datums."""
    path = endpoint_metrics_file(store.root, endpoint)
    assert path is not None
    return path


def optml(state: Path, *args: str, extra_env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "toolkit.cli", "local", "metrics", *args,
                           "--state-dir", str(state)], capture_output=True, text=True,
                          env={**os.environ, "OPTML_LOCAL_METRIC_PERIOD_SECONDS": "1",
                               **(extra_env or {})},
                          timeout=120, check=False)


@pytest.fixture
def state(tmp_path: Path) -> tuple[Path, float]:
    """An endpoint ``ep`` with two variants and six seconds of traffic ending a second ago, and
    a training job ``job`` with three loss points; returns the state directory and the first
    second written."""
    store = StateStore(tmp_path / "state")
    store.create("endpoints", "ep", {"EndpointName": "ep"}, {})
    first = math.floor(time.time()) - SECONDS - 1
    writer = DatumWriter(metrics_file(store, "ep"))
    for second in range(SECONDS):
        at = float(first + second)
        for variant, calls in (("AllTraffic", 2), ("Canary", 1)):
            dims = dimensions_of({"EndpointName": "ep", "VariantName": variant})
            writer.write([
                Datum.of_values(SAGEMAKER_NAMESPACE, "Invocations", dims, at, 1, [1.0] * calls),
                Datum.of_values(SAGEMAKER_NAMESPACE, "ModelLatency", dims, at, 1,
                                [1000.0 * (second + 1)] * calls, "Microseconds"),
                Datum.of_values(SAGEMAKER_NAMESPACE, "Invocation4XXErrors", dims, at, 1,
                                [1.0 if second == 0 else 0.0] * calls),
                Datum.of_values(ENDPOINT_INSTANCE_NAMESPACE, "CPUUtilization", dims, at, 1,
                                [25.0, 75.0], "Percent")])
    writer.close()
    job = store.create("training-jobs", "job", {"TrainingJobName": "job"}, {})
    base = datetime.fromtimestamp(first, timezone.utc)
    job.metrics_file.write_text("".join(
        json.dumps({"MetricName": "loss", "Value": v,
                    "Timestamp": (base + timedelta(seconds=i)).isoformat()})
        + "\n" for i, v in enumerate([0.8, 0.4, 0.2])))
    return store.root, float(first)


def test_an_endpoints_metrics_per_period_and_variant(state: tuple[Path, float]) -> None:
    root, first = state
    run = optml(root, "ep")
    assert run.returncode == 0, run.stderr
    header, *rows = run.stdout.splitlines()
    assert header.split() == ["TIME", "VARIANT", "METRIC", "STAT", "VALUE", "UNIT"]
    cells = [row.split() for row in rows]  # TIME is two words: date and time
    assert len(cells) == SECONDS * 2 * 4
    calls = [(c[2], float(c[5])) for c in cells if c[3] == "Invocations"]
    assert sorted({v for v, _ in calls}) == ["AllTraffic", "Canary"]
    assert sum(n for v, n in calls if v == "AllTraffic") == 2 * SECONDS
    latency = [c for c in cells if c[3] == "ModelLatency" and c[2] == "Canary"]
    assert [(c[4], float(c[5]), c[6]) for c in latency] == \
        [("Average", 1000.0 * (s + 1), "Microseconds") for s in range(SECONDS)]
    assert {(c[4], float(c[5]), c[6]) for c in cells if c[3] == "CPUUtilization"} == \
        {("Average", 50.0, "Percent")}
    # display order within a period: variant, then the service's metric order
    assert [c[3] for c in cells[:4]] == ["Invocations", "Invocation4XXErrors", "ModelLatency",
                                         "CPUUtilization"]


def test_json_is_get_metric_data_and_period_aggregates(state: tuple[Path, float]) -> None:
    root, first = state
    run = optml(root, "ep", "-o", "json", "--period", "60")
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    assert body["Messages"] == []
    results = {r["Label"]: r for r in body["MetricDataResults"]}
    assert set(results) == {f"{v} {m}" for v in ("AllTraffic", "Canary") for m in (
        "Invocations", "ModelLatency", "Invocation4XXErrors", "CPUUtilization")}
    assert sum(results["AllTraffic Invocations"]["Values"]) == 2 * SECONDS
    assert sum(results["Canary Invocation4XXErrors"]["Values"]) == 1
    stamps = [datetime.fromisoformat(t).timestamp()
              for t in results["Canary Invocations"]["Timestamps"]]
    assert stamps == sorted(stamps, reverse=True) and all(t % 60 == 0 for t in stamps)
    assert all(r["StatusCode"] == "Complete" and r["Id"].startswith("m")
               for r in results.values())


def test_since_and_plot(state: tuple[Path, float], tmp_path: Path) -> None:
    root, first = state
    since = datetime.fromtimestamp(first + SECONDS - 2, timezone.utc).isoformat()
    run = optml(root, "ep", "-o", "json", "--since", since)
    assert run.returncode == 0, run.stderr
    results = {r["Label"]: r for r in json.loads(run.stdout)["MetricDataResults"]}
    assert results["AllTraffic Invocations"]["Values"] == [2.0, 2.0]
    missing = tmp_path / "plots" / "ep.png"  # a mistyped directory is refused, not made
    refused = optml(root, "ep", "--plot", str(missing))
    assert refused.returncode == 2 and "does not exist" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1 and not missing.parent.exists()
    png = tmp_path / "ep.png"
    plotted = optml(root, "ep", "--plot", str(png))
    assert plotted.returncode == 0, plotted.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {png}" in plotted.stderr


def test_the_period_is_the_stored_one_unless_a_valid_one_is_given(
        state: tuple[Path, float]) -> None:
    root, _ = state
    env_period = {"OPTML_LOCAL_METRIC_PERIOD_SECONDS": "60"}  # this shell's: not the stored 1 s
    run = optml(root, "ep", "-o", "json", extra_env=env_period)
    assert run.returncode == 0, run.stderr
    results = {r["Label"]: r for r in json.loads(run.stdout)["MetricDataResults"]}
    assert len(results["AllTraffic Invocations"]["Values"]) == SECONDS  # one per stored second
    for bad in ("7", "90"):
        refused = optml(root, "ep", "--period", bad)
        assert refused.returncode == 2 and "1, 5, 10, 30 or a multiple of 60" in refused.stderr


def test_an_endpoint_without_datapoints(state: tuple[Path, float]) -> None:
    root, _ = state
    StateStore(root).create("endpoints", "idle", {"EndpointName": "idle"}, {})
    run = optml(root, "idle")
    assert (run.returncode, run.stdout) == (0, "")
    assert "no datapoints for endpoint idle since" in run.stderr
    assert json.loads(optml(root, "idle", "-o", "json").stdout) == \
        {"MetricDataResults": [], "Messages": []}
    assert_refused(optml(root, "idle", "--plot", str(root.parent / "idle.png")),
                   "no metric points to plot", status=1)


def test_a_training_jobs_points_as_before(state: tuple[Path, float]) -> None:
    root, first = state
    table = optml(root, "job")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["TIMESTAMP", "METRIC", "VALUE"]
    assert [line.split()[-1] for line in table.stdout.splitlines()[1:]] == ["0.8", "0.4", "0.2"]
    for flag in (("--json",), ("-o", "json")):
        lines = optml(root, "job", *flag).stdout.splitlines()
        assert [json.loads(line)["Value"] for line in lines] == [0.8, 0.4, 0.2]
    since = datetime.fromtimestamp(first + 1, timezone.utc).isoformat()
    recent = optml(root, "job", "-o", "json", "--since", since).stdout.splitlines()
    assert [json.loads(line)["Value"] for line in recent] == [0.4, 0.2]
    with (root / "training-jobs" / "job" / "metrics.jsonl").open("a") as series:
        series.write('{"MetricName": "loss", "Val')  # the job is writing its next point
    running = optml(root, "job", "-o", "json")
    assert running.returncode == 0, running.stderr
    assert [json.loads(line)["Value"] for line in running.stdout.splitlines()] == [0.8, 0.4, 0.2]


def test_names_that_are_nothing_or_both(state: tuple[Path, float]) -> None:
    root, _ = state
    assert_refused(optml(root, "ghost"), "Error: no local training job named 'ghost'",
                   "nor an endpoint", status=1)
    store = StateStore(root)
    store.create("endpoints", "job", {"EndpointName": "job"}, {})
    assert_refused(optml(root, "job"), "both a training job and an endpoint are named 'job'",
                   "--kind")
    run = optml(root, "job", "--kind", "endpoint")
    assert run.returncode == 0 and "no datapoints for endpoint job" in run.stderr
    assert_refused(optml(root, "ep", "--kind", "training-job"),
                   "no local training job named 'ep'", status=1)
    assert_refused(optml(root, "ep", "--period", "0"), "Invalid value for '--period'")
    assert_refused(optml(root, "ep", "--since", "yesterday"), "Invalid value for --since: 'yesterday'")
