"""The autoscaling example (examples/autoscaling-endpoint) run as a user runs it, on the process
backend (``optml serve`` processes, no Docker); tests/docker/test_examples_autoscaling.py runs
it on Docker with the same checks (:func:`check_run`).

Checked from its summary.json, not only exit 0: DescribeEndpoint went 1 -> 3 (desired before
current) -> 1; the scale-in came after the low alarm's 15 idle periods; no request failed and
every answer equals the network computed on the host; the CloudWatch sums equal the requests
sent (no 4XX, no 5XX, one ModelSetupTime per instance started); the activities and the alarms
read as the service's; the cost estimate is the packaged price times the instance-seconds; and
the endpoint, its scalable target, its alarms and its processes are gone. A fast test of the
example's handlers comes first.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import local_mode
from tests.integration.local_training_support import processes_using
from toolkit.serving import HTTPError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "autoscaling-endpoint"
RUN = [sys.executable, str(EXAMPLE / "run.py")]
RUN_LIMIT_SECONDS = 300
"""A liveness bound (a hung run fails instead of hanging CI); the run takes about 30 s."""
ENDPOINT = "autoscaling-endpoint"
RESOURCE = f"endpoint/{ENDPOINT}/variant/main"
POLICY = "invocations-per-instance"


def run_example(backend: str, output: Path) -> tuple[str, Path, dict[str, Any]]:
    """Run the example (its environment without local mode's or the platform's variables, as
    a user's shell); its stdout, run directory and summary."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SAGEMAKER_", "OPTML_", "SM_"))}
    result = subprocess.run([*RUN, "--backend", backend, "--output", str(output)], cwd=output,
                            env=env, capture_output=True, text=True, timeout=RUN_LIMIT_SECONDS,
                            check=False)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n" \
                                   f"{result.stderr[-4000:]}"
    (root,) = [p for p in output.rglob("run-*") if p.is_dir()]
    return result.stdout, root, json.loads((root / "summary.json").read_text())


def check_run(root: Path, out: str, summary: dict[str, Any]) -> None:
    """What either backend's run must show (see the module docstring)."""
    assert summary["checks"] and all(summary["checks"].values()), summary["checks"]

    # DescribeEndpoint: 1, desired 3 before current 3, then back to (1, 1)
    timeline = [(c["current"], c["desired"]) for c in summary["timeline"]]
    assert timeline[0] == (1, 1), timeline
    assert (1, 3) in timeline and timeline.index((1, 3)) < timeline.index((3, 3)), timeline
    assert timeline[-1] == (1, 1) and timeline.index((3, 3)) < len(timeline) - 1, timeline
    assert "CurrentInstanceCount 3  DesiredInstanceCount 3" in out
    # the low alarm needs 15 periods of 1 s with (almost) no invocations after the load
    assert summary["scaled_in_after_seconds"] - summary["load_stopped_at_seconds"] >= 14.0
    assert summary["scaled_out_after_seconds"] < summary["load_stopped_at_seconds"]

    load = summary["load"]
    assert load["sent"] > 300 and load["ok"] == load["sent"] and load["failed"] == 0, load

    metrics = summary["metrics"]
    assert metrics["Invocations"] == metrics["ModelLatencySampleCount"] == load["sent"]
    assert metrics["Invocation4XXErrors"] == metrics["Invocation5XXErrors"] == 0
    assert load["sent"] / 3 - 1e-6 <= metrics["InvocationsPerInstance"] < load["sent"]
    assert metrics["ModelSetupTimeSampleCount"] == 3  # one per instance started
    assert 0 < metrics["ModelLatencyAverageMicroseconds"] < load["client_latency_ms_average"] * 1e3
    assert metrics["CPUUtilizationMaximum"] > 0

    high, low = summary["alarm_names"]
    assert high == f"TargetTracking-{RESOURCE}-AlarmHigh-" + high.rsplit("AlarmHigh-", 1)[1]
    assert low == f"TargetTracking-{RESOURCE}-AlarmLow-" + low.rsplit("AlarmLow-", 1)[1]
    assert [(a["StatusCode"], a["Description"], a["Cause"]) for a in summary["activities"]] == [
        ("Successful", "Setting desired instance count to 3.",
         f"monitor alarm {high} in state ALARM triggered policy {POLICY}"),
        ("Successful", "Setting desired instance count to 1.",
         f"monitor alarm {low} in state ALARM triggered policy {POLICY}")]
    assert summary["activities"][1]["StatusMessage"] == (
        "Successfully set desired instance count to 1. Change successfully fulfilled by "
        "sagemaker.")
    assert summary["alarms"] == {high: "OK", low: "ALARM"}

    cost = summary["cost"]
    (charge,) = cost["Charges"]
    assert (charge["InstanceType"], charge["Usage"]) == ("ml.m5.large", "hosting")
    assert charge["InstanceSeconds"] == cost["InstanceSeconds"]
    assert cost["Cost"] == pytest.approx(charge["Price"] * cost["InstanceSeconds"] / 3600,
                                         rel=1e-9)
    # one instance from creation, three for a while: more instance-seconds than seconds
    assert cost["InstanceSeconds"] > summary["scaled_in_after_seconds"]
    assert cost["CostPerHour"] == pytest.approx(charge["Price"])  # one instance again
    assert cost["PriceTable"]["Version"] and cost["PriceTable"]["Date"]
    assert "packaged table" in out and "not checked against the live pricing page" in out

    # deleted, with its scalable target, policy and alarms (asked as a user would)
    state = root / "state"
    assert local_mode.client("sagemaker", state_dir=state).list_endpoints()["Endpoints"] == []
    scaling = local_mode.client("application-autoscaling", state_dir=state)
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="sagemaker")[
        "ScalingPolicies"] == []
    assert local_mode.client("cloudwatch", state_dir=state).describe_alarms()[
        "MetricAlarms"] == []
    assert (root / "logs" / "main-3.log").is_file()  # the third instance served


def load_handlers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("autoscaling_example_inference",
                                                  EXAMPLE / "code" / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def test_handlers_score_rows_and_refuse_bad_shapes(tmp_path: Path) -> None:
    inference = load_handlers()
    rng = np.random.default_rng(0)
    weights: dict[str, Any] = {f"W{i}": rng.normal(size=(a, b)) for i, (a, b) in
               enumerate([(16, 8), (8, 8), (8, 8)], start=1)}
    weights.update({f"b{i}": rng.normal(size=8) for i in (1, 2, 3)},
                   w4=rng.normal(size=8), b4=np.float64(0.5))
    np.savez(tmp_path / "weights.npz", **weights)
    model = inference.model_fn(str(tmp_path))
    rows = rng.normal(size=(3, 16))
    hidden = rows
    for i in (1, 2, 3):
        hidden = np.tanh(hidden @ weights[f"W{i}"] + weights[f"b{i}"])
    np.testing.assert_allclose(inference.predict_fn(rows.tolist(), model),
                               hidden @ weights["w4"] + 0.5, rtol=1e-12)
    body, content_type = inference.output_fn(np.array([1.5, 2.0]), "application/json")
    assert (json.loads(body), content_type) == ({"scores": [1.5, 2.0]}, "application/json")
    with pytest.raises(HTTPError) as wrong:
        inference.predict_fn([[1.0, 2.0]], model)
    assert wrong.value.status_code == 400
    with pytest.raises(HTTPError) as text:
        inference.output_fn(np.array([1.0]), "text/csv")
    assert text.value.status_code == 406


def test_autoscaling_example_on_the_process_backend(tmp_path: Path) -> None:
    out, root, summary = run_example("process", tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "process"
    check_run(root, out, summary)
    # no image: the handlers come from the example's code/ as the submit directory
    log = (root / "logs" / "main-1.log").read_text()
    assert f"model_fn from {EXAMPLE / 'code' / 'inference.py'}" in log
    assert processes_using(root) == []
