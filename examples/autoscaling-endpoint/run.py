#!/usr/bin/env python3
"""Example: an endpoint that scales itself -- target tracking on invocations per instance.

Deploy a small scoring network on one ml.m5.large instance, register the variant as a scalable
target (1 to 3 instances) with a target-tracking policy on SageMakerVariantInvocationsPerInstance,
written exactly as for the cloud, and send it a bounded step load from a few threads on
127.0.0.1. The endpoint scales out to 3; once the load stops it scales back in to 1 after the low
alarm's 15 idle periods. Then the scaling activities, the alarms, the CloudWatch sums checked
against the requests sent, and what the endpoint would have cost. The timeline is compressed:
OPTML_LOCAL_METRIC_PERIOD_SECONDS=1, a service minute per second.

    python examples/autoscaling-endpoint/run.py [--backend auto|docker|process] [--output DIR]
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.settings import Settings

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "code"))
import common  # noqa: E402 -- examples/common.py, the examples' shared glue
import inference  # noqa: E402 -- code/inference.py: the host computes what the endpoint answers

IMAGE = "optml-examples/autoscaling-endpoint:latest"
ENDPOINT = "autoscaling-endpoint"
VARIANT = "main"  # common.deployed's variant name
RESOURCE = f"endpoint/{ENDPOINT}/variant/{VARIANT}"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
MIN_CAPACITY, MAX_CAPACITY = 1, 3

METRIC_PERIOD_SECONDS = 1
"""OPTML_LOCAL_METRIC_PERIOD_SECONDS: one datapoint a second, every service duration (alarm
periods, cooldowns) 60x shorter. A policy written for the cloud runs unchanged."""

TARGET_INVOCATIONS = 30.0
"""The policy's TargetValue: invocations per instance per (service) minute -- a second here."""

THREADS = 4
RATE = 120.0
"""Requests per second the step load sends (THREADS threads, paced): 120 a period on one
instance, 4x the target, so the policy asks for ceil(1 x 120 / 30) = 4, capped at 3."""
MAX_REQUESTS = 6000
LOAD_LIMIT_SECONDS = 45.0
"""The load's bounds: it stops HOLD_SECONDS after the endpoint serves on 3 instances, and in
any case after MAX_REQUESTS requests or LOAD_LIMIT_SECONDS."""
HOLD_SECONDS = 5.0
SCALE_IN_LIMIT_SECONDS = 60.0
"""Liveness bound on the wait for the scale-in (15 idle periods + a few: about 17 s)."""

ROWS = 16
"""Rows per request: about a millisecond of numpy on the endpoint."""


# -- the model -----------------------------------------------------------------------------------
def write_model(directory: Path) -> Path:
    """``model.tar.gz`` holding ``weights.npz``: a 16 -> 512 -> 512 -> 512 -> 1 tanh network
    with fixed random weights (what a training job would have produced; this example is about
    operating the endpoint, so it skips training)."""
    rng = np.random.default_rng(17)
    sizes = [inference.FEATURES, 512, 512, 512]
    weights: dict[str, Any] = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:], strict=False), start=1):
        weights[f"W{i}"] = rng.normal(0.0, 1.0 / math.sqrt(fan_in), (fan_in, fan_out))
        weights[f"b{i}"] = rng.normal(0.0, 0.1, fan_out)
    weights["w4"] = rng.normal(0.0, 1.0 / math.sqrt(sizes[-1]), sizes[-1])
    weights["b4"] = np.float64(0.5)
    directory.mkdir(parents=True)
    np.savez(directory / "weights.npz", **weights)
    tarball = directory / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(directory / "weights.npz", arcname="weights.npz")
    return tarball


# -- the step load -------------------------------------------------------------------------------
@dataclass
class StepLoad:
    """THREADS threads sending RATE requests a second in all (each its own client), from the
    moment :meth:`start` is called until :meth:`stop`, MAX_REQUESTS or LOAD_LIMIT_SECONDS.
    Every answer is compared with ``expected``; every outcome is counted."""

    run: common.Run
    settings: Settings
    body: str
    expected: np.ndarray
    sent: int = 0
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    stopped: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.started = time.monotonic()
        self._threads = [threading.Thread(target=self._send, args=(i,), daemon=True)
                         for i in range(THREADS)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.stopped = time.monotonic()

    def _take(self) -> bool:
        """Count one more request, unless a bound is reached."""
        with self._lock:
            if self.sent >= MAX_REQUESTS or time.monotonic() - self.started > LOAD_LIMIT_SECONDS:
                return False
            self.sent += 1
            return True

    def _send(self, index: int) -> None:
        rt = common.local_client("sagemaker-runtime", settings=self.settings,
                                 state_dir=self.run.state)
        interval = THREADS / RATE
        due = self.started + index * interval / THREADS
        while not self._stop.is_set():
            pause = due - time.monotonic()
            if pause > 0 and self._stop.wait(pause):
                return
            due += interval
            if not self._take():
                return
            began = time.perf_counter()
            try:
                answer = rt.invoke_endpoint(EndpointName=ENDPOINT, Body=self.body,
                                            ContentType="application/json",
                                            Accept="application/json")
                scores = json.loads(answer["Body"].read())["scores"]
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                with self._lock:
                    self.failures.append(repr(exc))
                continue
            took = time.perf_counter() - began
            right = np.allclose(scores, self.expected, rtol=1e-9, atol=1e-12)
            with self._lock:
                if right:
                    self.ok += 1
                    self.latencies.append(took)
                else:
                    self.failures.append(f"wrong answer {scores[:3]}...")


# -- watching DescribeEndpoint -------------------------------------------------------------------
class Watcher:
    """Polls DescribeEndpoint ten times a second and prints each change of the variant's
    (EndpointStatus, CurrentInstanceCount, DesiredInstanceCount), with the seconds since
    ``origin`` (the start of the load)."""

    def __init__(self, sm: Any, origin: float) -> None:
        self.sm, self.origin = sm, origin
        self.changes: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def now(self) -> tuple[int, int]:
        """The latest (CurrentInstanceCount, DesiredInstanceCount) seen."""
        with self._lock:
            last = self.changes[-1] if self.changes else {"current": 0, "desired": 0}
            return last["current"], last["desired"]

    def _watch(self) -> None:
        while True:
            described = self.sm.describe_endpoint(EndpointName=ENDPOINT)
            variant = described["ProductionVariants"][0]
            seen = {"status": described["EndpointStatus"],
                    "current": variant["CurrentInstanceCount"],
                    "desired": variant["DesiredInstanceCount"]}
            with self._lock:
                last = self.changes[-1] if self.changes else None
                changed = last is None or any(last[k] != seen[k] for k in seen)
                if changed:
                    self.changes.append(
                        {"elapsed": round(time.monotonic() - self.origin, 2), **seen})
            if changed:
                print(f"[{time.monotonic() - self.origin:6.1f} s] {seen['status']:<10} "
                      f"CurrentInstanceCount {seen['current']}  "
                      f"DesiredInstanceCount {seen['desired']}", flush=True)
            if self._stop.wait(0.1):
                return


def wait_for(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


# -- scaling, metrics, cost ----------------------------------------------------------------------
def put_policy(aas: Any) -> dict[str, Any]:
    """Register the variant (1 to 3 instances) and its target-tracking policy, as in the cloud;
    returns PutScalingPolicy's answer (the policy's ARN and the two alarms it made)."""
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=RESOURCE,
                                 ScalableDimension=DIMENSION, MinCapacity=MIN_CAPACITY,
                                 MaxCapacity=MAX_CAPACITY)
    answer: dict[str, Any] = aas.put_scaling_policy(
        PolicyName="invocations-per-instance", ServiceNamespace="sagemaker",
        ResourceId=RESOURCE, ScalableDimension=DIMENSION, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": TARGET_INVOCATIONS,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleOutCooldown": 300, "ScaleInCooldown": 300})
    return answer


def activities(aas: Any) -> list[dict[str, Any]]:
    """The scaling activities, oldest first."""
    found = aas.describe_scaling_activities(ServiceNamespace="sagemaker",
                                            ResourceId=RESOURCE)["ScalingActivities"]
    return [{k: a.get(k) for k in ("StatusCode", "StatusMessage", "Description", "Cause",
                                   "StartTime", "EndTime")} for a in reversed(found)]


def scaled_in(aas: Any, watcher: Watcher) -> bool:
    done = activities(aas)
    return watcher.now() == (MIN_CAPACITY, MIN_CAPACITY) and bool(done) and \
        done[-1]["Description"] == f"Setting desired instance count to {MIN_CAPACITY}." and \
        done[-1]["StatusCode"] == "Successful"


def totals(cloudwatch: Any, namespace: str, metric: str, since: datetime) -> dict[str, float]:
    """A metric's statistics over the whole run (per-minute datapoints added up): Sum,
    SampleCount, Maximum and Average = Sum / SampleCount."""
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName=metric, StartTime=since,
        EndTime=datetime.now(timezone.utc) + timedelta(minutes=1), Period=60,
        Statistics=["Sum", "SampleCount", "Maximum"],
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT},
                    {"Name": "VariantName", "Value": VARIANT}])["Datapoints"]
    count = sum(p["SampleCount"] for p in points)
    total = sum(p["Sum"] for p in points)
    return {"Sum": total, "SampleCount": count,
            "Maximum": max((p["Maximum"] for p in points), default=0.0),
            "Average": total / count if count else 0.0}


def endpoint_cost(state: Path) -> dict[str, Any]:
    """``optml local cost ENDPOINT -o json`` on the run's state directory (the same Python)."""
    command = [sys.executable, "-m", "toolkit.cli", "local", "cost", ENDPOINT, "--kind",
               "endpoints", "-o", "json", "--state-dir", str(state)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    report = json.loads(result.stdout)
    (resource,) = [r for r in report["Resources"] if r["Name"] == ENDPOINT]
    table = report["PriceTable"]
    charges = [c for c in resource["Charges"] if c["Item"] == "instances"]
    return {"Cost": resource["Cost"], "CostPerHour": resource["CostPerHour"],
            "Running": resource["Running"], "Unknown": resource["Unknown"],
            "InstanceSeconds": sum(c["InstanceSeconds"] for c in charges),
            "Charges": resource["Charges"], "Notes": resource["Notes"],
            "PriceTable": {k: table.get(k) for k in ("Version", "Date", "Source")}}


# -- the run -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = common.example_parser(__doc__).parse_args(argv)
    run = common.start(HERE.name, args.output, args.backend, "optml/base:latest")
    if run.backend == "docker":
        common.build_image(HERE, IMAGE)
    # What `export OPTML_LOCAL_METRIC_PERIOD_SECONDS=1` does, for this script's clients only: the
    # endpoint's runner takes its settings from the client that creates the endpoint.
    settings = Settings.from_environ(
        {**os.environ, "OPTML_LOCAL_METRIC_PERIOD_SECONDS": str(METRIC_PERIOD_SECONDS)})
    sm = common.local_client("sagemaker", settings=settings, state_dir=run.state,
                             backend=run.serving)
    aas = common.local_client("application-autoscaling", settings=settings,
                              state_dir=run.state)
    cloudwatch = common.local_client("cloudwatch", settings=settings, state_dir=run.state)

    tarball = write_model(run.root / "model")
    rows = np.random.default_rng(3).normal(size=(ROWS, inference.FEATURES))
    expected = inference.load_network(run.root / "model").score(rows)
    container = run.serving_container({
        "Image": IMAGE, "ModelDataUrl": tarball.as_uri(),
        # one worker and one BLAS thread per instance: an instance's CPU is what its load costs
        "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "OPENBLAS_NUM_THREADS": "1"}},
        HERE / "code")
    summary: dict[str, Any] = {"backend": run.backend, "serving_backend": run.serving,
                               "metric_period_seconds": METRIC_PERIOD_SECONDS,
                               "target_value": TARGET_INVOCATIONS, "rate": RATE}
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    with common.deployed(sm, ENDPOINT, container) as endpoint:
        print(f"[deploy] {endpoint}: 1 x ml.m5.large InService")
        try:
            policy = put_policy(aas)
            alarm_names = [a["AlarmName"] for a in policy["Alarms"]]
            print(f"[scaling] {RESOURCE}: {MIN_CAPACITY}..{MAX_CAPACITY} instances, target "
                  f"{TARGET_INVOCATIONS:g} invocations per instance per minute (a second here)")
            for name in alarm_names:
                print(f"[scaling] alarm {name}")
            summary.update(policy_arn=policy["PolicyARN"], alarm_names=alarm_names)
            summary.update(scale(run, settings, aas, json.dumps(rows.tolist()), expected))
            summary["activities"] = activities(aas)
            print("[activities]")
            for activity in summary["activities"]:
                print(f"  {activity['StatusCode']}: {activity['Description']}\n"
                      f"    cause: {activity['Cause']}")
            alarms = cloudwatch.describe_alarms(AlarmNames=alarm_names)["MetricAlarms"]
            summary["alarms"] = {a["AlarmName"]: a["StateValue"] for a in alarms}
            print("[alarms]")
            for alarm in alarms:
                print(f"  {alarm['StateValue']:<17} {alarm['AlarmName']}\n"
                      f"    {alarm['StateReason']}")
            summary["metrics"] = metrics(cloudwatch, since, summary["load"]["sent"])
            summary["cost"] = cost(run.state)
        finally:
            # as in the cloud: deregister the target (and its policy's alarms) before deleting
            with contextlib.suppress(aas.exceptions.ObjectNotFoundException):
                aas.deregister_scalable_target(ServiceNamespace="sagemaker",
                                               ResourceId=RESOURCE, ScalableDimension=DIMENSION)
            common.keep_endpoint_logs(run.state, endpoint, run.root / "logs")
    print(f"[cleanup] {ENDPOINT} deleted")
    summary["checks"] = checks(summary)
    (run.root / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"[done] summary {run.root / 'summary.json'}")
    failed = [name for name, passed in summary["checks"].items() if not passed]
    if failed:
        print(f"[done] checks failed: {failed}", file=sys.stderr)
        return 1
    return 0


def scale(run: common.Run, settings: Settings, aas: Any, body: str,
          expected: np.ndarray) -> dict[str, Any]:
    """The step load and the scaling it causes, watched through DescribeEndpoint."""
    load = StepLoad(run, settings, body, expected)
    watch_sm = common.local_client("sagemaker", settings=settings, state_dir=run.state,
                                   backend=run.serving)  # a client of its own for the thread
    print(f"[load] {RATE:g} requests/s from {THREADS} threads on 127.0.0.1 (at most "
          f"{MAX_REQUESTS} requests, {LOAD_LIMIT_SECONDS:g} s); t = 0 is the step")
    origin = time.monotonic()
    with Watcher(watch_sm, origin) as watcher:
        load.start()
        reached = wait_for(lambda: watcher.now()[0] == MAX_CAPACITY, LOAD_LIMIT_SECONDS)
        scaled_out_at = time.monotonic() - origin if reached else None
        if reached:
            time.sleep(HOLD_SECONDS)  # the new instances take their share of the load
        load.stop()
        stopped_at = load.stopped - origin
        print(f"[load] stopped at {stopped_at:.1f} s: {load.sent} sent, {load.ok} answered "
              f"right, {len(load.failures)} failed; waiting for the scale-in (the low alarm "
              f"needs 15 idle periods)", flush=True)
        back = wait_for(lambda: scaled_in(aas, watcher), SCALE_IN_LIMIT_SECONDS)
        scaled_in_at = time.monotonic() - origin if back else None
        time.sleep(0.3)  # let the watcher print the last change
    if scaled_in_at is not None:
        print(f"[scaling] back to {MIN_CAPACITY} at {scaled_in_at:.1f} s, "
              f"{scaled_in_at - stopped_at:.1f} s after the load stopped")
    latency = sum(load.latencies) / len(load.latencies) if load.latencies else 0.0
    return {"timeline": watcher.changes,
            "counts_seen": [c["current"] for c in watcher.changes],
            "max_current": max((c["current"] for c in watcher.changes), default=0),
            "final": {"current": watcher.now()[0], "desired": watcher.now()[1]},
            "scaled_out_after_seconds": scaled_out_at, "load_stopped_at_seconds": stopped_at,
            "scaled_in_after_seconds": scaled_in_at,
            "load": {"sent": load.sent, "ok": load.ok, "failed": len(load.failures),
                     "failures": load.failures[:10],
                     "seconds": round(load.stopped - load.started, 2),
                     "client_latency_ms_average": round(latency * 1e3, 3)}}


def metrics(cloudwatch: Any, since: datetime, sent: int) -> dict[str, Any]:
    """The CloudWatch sums over the run, once every request's period is written."""
    wait_for(lambda: totals(cloudwatch, "AWS/SageMaker", "Invocations", since)["Sum"] >= sent,
             10 * METRIC_PERIOD_SECONDS + 5)
    found = {
        "Invocations": totals(cloudwatch, "AWS/SageMaker", "Invocations", since)["Sum"],
        "Invocation4XXErrors": totals(cloudwatch, "AWS/SageMaker", "Invocation4XXErrors",
                                      since)["Sum"],
        "Invocation5XXErrors": totals(cloudwatch, "AWS/SageMaker", "Invocation5XXErrors",
                                      since)["Sum"],
        "InvocationsPerInstance": totals(cloudwatch, "AWS/SageMaker", "InvocationsPerInstance",
                                         since)["Sum"]}
    latency = totals(cloudwatch, "AWS/SageMaker", "ModelLatency", since)
    overhead = totals(cloudwatch, "AWS/SageMaker", "OverheadLatency", since)
    setup = totals(cloudwatch, "AWS/SageMaker", "ModelSetupTime", since)
    cpu = totals(cloudwatch, "/aws/sagemaker/Endpoints", "CPUUtilization", since)
    found.update(ModelLatencySampleCount=latency["SampleCount"],
                 ModelLatencyAverageMicroseconds=round(latency["Average"], 1),
                 OverheadLatencyAverageMicroseconds=round(overhead["Average"], 1),
                 ModelSetupTimeSampleCount=setup["SampleCount"],
                 CPUUtilizationMaximum=round(cpu["Maximum"], 1))
    print(f"[metrics] AWS/SageMaker over the run: Invocations {found['Invocations']:g} "
          f"(sent {sent}), 4XX {found['Invocation4XXErrors']:g}, "
          f"5XX {found['Invocation5XXErrors']:g}, InvocationsPerInstance "
          f"{found['InvocationsPerInstance']:.1f}; ModelLatency average "
          f"{found['ModelLatencyAverageMicroseconds']:g} us over {latency['SampleCount']:g} "
          f"requests, OverheadLatency average {found['OverheadLatencyAverageMicroseconds']:g} us;"
          f" ModelSetupTime {setup['SampleCount']:g} instance start(s)\n[metrics] "
          f"/aws/sagemaker/Endpoints CPUUtilization maximum {found['CPUUtilizationMaximum']:g} %"
          f" (of one instance, 100 % a core)")
    return found


def cost(state: Path) -> dict[str, Any]:
    estimate = endpoint_cost(state)
    table = estimate["PriceTable"]
    rates = sorted({(c.get("InstanceType"), c.get("Price")) for c in estimate["Charges"]
                    if c["Item"] == "instances"}, key=str)
    shown = "unknown" if estimate["Cost"] is None else f"${estimate['Cost']:.6f}"
    print(f"[cost] {ENDPOINT}: {shown} so far for {estimate['InstanceSeconds']:.1f} "
          f"instance-seconds ({', '.join(f'{t} at ${p}/hour' for t, p in rates)}); now "
          f"${estimate['CostPerHour']}/hour\n[cost] prices are optml's packaged table "
          f"{table['Version']} of {table['Date']} -- an estimate, not checked against the live "
          f"pricing page (docs/cost.md); OPTML_LOCAL_PRICES_FILE supplies your own")
    return estimate


def checks(summary: dict[str, Any]) -> dict[str, bool]:
    """What the run must show; written to summary.json and failing the command if not met."""
    load, found = summary.get("load", {}), summary.get("metrics", {})
    counts = summary.get("counts_seen", [])
    peak = counts.index(MAX_CAPACITY) if MAX_CAPACITY in counts else None
    estimate = summary.get("cost", {})
    return {
        "scaled_out_to_max": summary.get("max_current") == MAX_CAPACITY,
        "scaled_back_to_min": summary.get("final") == {"current": MIN_CAPACITY,
                                                       "desired": MIN_CAPACITY}
        and peak is not None and MIN_CAPACITY in counts[peak:],
        "no_failed_request": load.get("sent", 0) > 0 and load.get("failed") == 0
        and load.get("ok") == load.get("sent"),
        "invocations_equal_sent": found.get("Invocations") == load.get("sent")
        and found.get("ModelLatencySampleCount") == load.get("sent"),
        # 1/n per request, n the serving instances then (1 to 3)
        "invocations_per_instance_between": load.get("sent", 0) / MAX_CAPACITY - 1e-6
        <= found.get("InvocationsPerInstance", -1) <= load.get("sent", 0) + 1e-6,
        "no_errors_counted": found.get("Invocation4XXErrors") == 0
        and found.get("Invocation5XXErrors") == 0,
        "cost_estimated": estimate.get("Cost") is not None and estimate["Cost"] > 0,
    }


if __name__ == "__main__":
    sys.exit(main())
