"""Endpoint metrics and autoscaling: what counting costs the router, and how soon a scale-out
serves.

1. **Metrics overhead.** Two endpoints of the same model (process backend), one with the
   service's metrics recorded (``OPTML_LOCAL_ENDPOINT_METRICS=true``, the default) and one
   without; N requests at concurrency C through each router, rounds interleaved. Printed: the
   router process's CPU per request for each and their ratio (target: metrics on <= 1.05 x off).
2. **Scale-out to serving.** A 1-instance endpoint with a target-tracking policy (max 2, the
   timeline compressed to 1 s periods) under load: from the scaling decision (the activity's
   StartTime) to the new instance serving (its EndTime: set once it answers /ping), less that
   instance's own cold start (its ModelSetupTime datum), on the process backend and (``--docker``)
   on Docker with ``optml/base``. Target: <= 1 s.

    .venv/bin/python bench/bench_endpoint_metrics.py [--requests 4000] [--concurrency 8] [--docker]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import local_mode
from bench.bench_local_endpoints import ECHO, ENV, load
from local_mode.sagemaker import SageMakerClient
from tests.integration.test_local_endpoints_support import Local

RESOURCE = "endpoint/{}/variant/AllTraffic"
DOCKER_IMAGE = "optml/base:latest"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def cpu_seconds(pid: int) -> float:
    """The CPU time of every thread of ``pid`` so far, at the scheduler's resolution (``/proc``'s
    ``sched`` files; the clock-tick counters of ``stat`` are too coarse for a few percent)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "sched").read_text().splitlines():
                if line.startswith("se.sum_exec_runtime"):
                    total += float(line.split(":")[1]) / 1000.0
                    break
        except OSError:  # a thread that ended meanwhile
            continue
    return total


def router_cpu(port: int, pid: int, requests: int, concurrency: int) -> tuple[float, float]:
    """(runner CPU microseconds per request, requests per second) of one load run."""
    before = cpu_seconds(pid)
    began = time.perf_counter()
    latencies = load(port, requests, concurrency)
    elapsed = time.perf_counter() - began
    return (cpu_seconds(pid) - before) / len(latencies) * 1e6, len(latencies) / elapsed


def idle_cpu(pid: int, seconds: float = 5.0) -> float:
    """CPU seconds per second the runner spends with no request (health checks, and with
    metrics on, the once-a-period work)."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def recording_cost(calls: int = 200_000) -> float:
    """Microseconds one answered invocation's counting costs the router: the hot-path call
    itself (``_count`` into a real variant's meter), timed in this process."""
    from local_mode.cloudwatch.recorder import EndpointMetrics
    from local_mode.endpoints.router import Instance, Plan, Variant, _count
    from local_mode.endpoints.spec import ContainerSpec, ModelSpec, VariantSpec

    model = ModelSpec("m", (ContainerSpec("primary", None, None),))
    variant = Variant(VariantSpec("AllTraffic", "m", 1, "local", 1.0, 600.0), model,
                      meter=EndpointMetrics("e").meter("AllTraffic"))
    instance = Instance("AllTraffic-1", [], [], healthy=True)
    variant.instances.append(instance)
    variant.serving = 1
    plan = Plan(variant, instance, None, time.monotonic() + 60)
    sent = time.monotonic()
    began = time.process_time()
    for _ in range(calls):
        _count(plan, 200, sent)
    return (time.process_time() - began) / calls * 1e6


def deploy(root: Path, name: str, metrics: bool) -> tuple[Local, int, int]:
    """An endpoint on its own state directory: its Local, router port and runner pid."""
    local = Local(root / name, {"OPTML_LOCAL_ENDPOINT_METRICS": str(metrics).lower(),
                                "OPTML_LOCAL_METRIC_PERIOD_SECONDS": "1"})
    local.model("m", ECHO, env=ENV)
    local.config("c", ("AllTraffic", "m", 1, 1.0))
    local.endpoint(name, "c")
    pid = local.sm.store.get("endpoints", name).runner_pid()
    assert pid is not None
    return local, int(local.private(name)["RouterPort"]), pid


def overhead(root: Path, requests: int, concurrency: int, rounds: int) -> None:
    on, on_port, on_pid = deploy(root, "metered", True)
    off, off_port, off_pid = deploy(root, "unmetered", False)
    try:
        for port in (on_port, off_port):  # warm both: connections, code paths
            load(port, min(requests, 500), concurrency)
        cpu: dict[str, list[float]] = {"on": [], "off": []}
        rps: dict[str, list[float]] = {"on": [], "off": []}
        for _ in range(rounds):
            for key, port, pid in (("on", on_port, on_pid), ("off", off_port, off_pid)):
                per_request, rate = router_cpu(port, pid, requests, concurrency)
                cpu[key].append(per_request)
                rps[key].append(rate)
        on_cpu, off_cpu = statistics.median(cpu["on"]), statistics.median(cpu["off"])
        print(f"runner (router) CPU per request, {rounds} interleaved rounds of {requests} "
              f"requests at c={concurrency} (median; every round: on "
              f"{', '.join(f'{c:.1f}' for c in cpu['on'])}, off "
              f"{', '.join(f'{c:.1f}' for c in cpu['off'])}):")
        print(f"  metrics on   {on_cpu:7.1f} us/request  {statistics.median(rps['on']):7.0f} req/s")
        print(f"  metrics off  {off_cpu:7.1f} us/request  "
              f"{statistics.median(rps['off']):7.0f} req/s")
        ratio = on_cpu / off_cpu
        print(f"  ratio on/off {ratio:.3f}  (target <= 1.05: "
              f"{'met' if ratio <= 1.05 else 'MISSED'}; rounds of the same endpoint vary "
              "by more than 5 %, so the share is also measured apart:)")
        counting = recording_cost()
        idle_on = idle_cpu(on_pid)
        idle_off = idle_cpu(off_pid)
        per_period = max(0.0, idle_on - idle_off)  # per second: the period is 1 s here
        rate = statistics.median(rps["on"])
        added = counting + per_period / rate * 1e6
        print(f"  measured apart: counting one invocation {counting:.2f} us (the hot-path "
              f"call timed alone), the once-a-second work {per_period * 1e3:.2f} ms of CPU "
              f"per second (idle runners: {idle_on * 1e3:.2f} against {idle_off * 1e3:.2f} "
              f"ms/s), i.e. {per_period / rate * 1e6:.2f} us per request at {rate:.0f} req/s")
        print(f"  metrics' share of the router's CPU per request: {added:.2f} us of "
              f"{off_cpu:.1f} = {added / off_cpu * 100:.1f} % (target <= 5 %: "
              f"{'met' if added / off_cpu <= 0.05 else 'MISSED'})")
    finally:
        on.cleanup()
        off.cleanup()


def scale_out(root: Path, backend: str) -> None:
    local = Local(root / f"scaled-{backend}", {"OPTML_LOCAL_METRIC_PERIOD_SECONDS": "1"})
    container: dict[str, str] = {}
    if backend == "docker":  # the model's code in the artifact, served by the base image
        local.sm = SageMakerClient(local.settings, backend="docker")
        container["Image"] = DOCKER_IMAGE
    scaling = local_mode.client("application-autoscaling", settings=local.settings)
    cloudwatch = local_mode.client("cloudwatch", settings=local.settings)
    try:
        local.model("m", ECHO, env=ENV, **container)
        local.config("c", ("AllTraffic", "m", 1, 1.0))
        local.endpoint("scaled", "c")
        began = datetime.now(timezone.utc) - timedelta(seconds=5)
        resource = RESOURCE.format("scaled")
        scaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                         ScalableDimension=DIMENSION, MinCapacity=1,
                                         MaxCapacity=2)
        scaling.put_scaling_policy(
            PolicyName="p", ServiceNamespace="sagemaker", ResourceId=resource,
            ScalableDimension=DIMENSION, PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 20.0, "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
        port = int(local.private("scaled")["RouterPort"])
        stop = threading.Event()

        def pound() -> None:
            while not stop.is_set():
                load(port, 40, 2)
        driver = threading.Thread(target=pound, daemon=True)
        driver.start()
        deadline = time.monotonic() + 60
        activity = None
        while time.monotonic() < deadline:
            activities = scaling.describe_scaling_activities(
                ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]
            if activities and activities[0]["StatusCode"] == "Successful":
                activity = activities[0]
                break
            time.sleep(0.1)
        stop.set()
        driver.join()
        assert activity is not None, "no scale-out within 60 s"
        time.sleep(1.5)  # the period holding the new instance's ModelSetupTime is written
        setup = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName="ModelSetupTime",
            Dimensions=[{"Name": "EndpointName", "Value": "scaled"},
                        {"Name": "VariantName", "Value": "AllTraffic"}],
            StartTime=activity["StartTime"] - timedelta(seconds=1),
            EndTime=datetime.now(timezone.utc) + timedelta(seconds=2), Period=1,
            Statistics=["Maximum"])["Datapoints"]
        cold = max(p["Maximum"] for p in setup) / 1e6
        took = (activity["EndTime"] - activity["StartTime"]).total_seconds()
        print(f"scale-out ({backend} backend): decision to serving {took:.2f} s, the new "
              f"instance's cold start {cold:.2f} s, above it {took - cold:.2f} s (target <= 1 s: "
              f"{'met' if took - cold <= 1.0 else 'MISSED'}); load began "
              f"{(activity['StartTime'] - began).total_seconds() - 5:.1f} s before the decision")
    finally:
        local.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--docker", action="store_true",
                        help=f"Also measure the scale-out on Docker ({DOCKER_IMAGE}).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="optml-bench-metrics-") as tmp:
        overhead(Path(tmp), args.requests, args.concurrency, args.rounds)
        scale_out(Path(tmp), "process")
        if args.docker:
            scale_out(Path(tmp), "docker")


if __name__ == "__main__":
    main()
