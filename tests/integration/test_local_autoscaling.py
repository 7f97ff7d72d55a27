"""Autoscaling a local endpoint under a generated step load, as the service would.

A one-instance endpoint (process backend) with a target-tracking policy on
SageMakerVariantInvocationsPerInstance, its timeline compressed 60-fold
(``OPTML_LOCAL_METRIC_PERIOD_SECONDS=1``: a service minute per second). A bounded load on
127.0.0.1 (at most :data:`MAX_REQUESTS` requests, :data:`LOAD_SECONDS` seconds) drives it to its
maximum; once the load stops, the idle periods drive it back to its minimum after the low alarm's
15 periods and the scale-in cooldown. Checked: no request fails but those meant to (a 4xx and a
5xx from the model, counted apart), the scaling activities and alarms read as the service's,
DescribeEndpoint follows, and the CloudWatch sums equal the requests sent.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import local_mode
from tests.integration.test_local_endpoints_support import Local

MAX_REQUESTS = 4000
LOAD_SECONDS = 40.0
SETTLE_SECONDS = 60.0
"""Liveness bound on waiting for the scale-in (15 low periods + cooldown take about 18 s)."""
RESOURCE = "endpoint/busy/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"

MODEL = """
    from toolkit.serving import HTTPError

    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        if isinstance(body, str):
            body = body.encode()
        if body == b"bad":
            raise HTTPError(400, "the model refuses this input")
        if body == b"crash":
            raise RuntimeError("the model broke")
        return body, "text/plain"
"""


@pytest.fixture()
def scaled(tmp_path: Path) -> Iterator[Local]:
    env = Local(tmp_path, {"OPTML_LOCAL_METRIC_PERIOD_SECONDS": "1"})
    try:
        yield env
    finally:
        env.cleanup()


class StepLoad:
    """Two client threads sending as fast as the endpoint answers, until told to stop or a
    bound is reached; every outcome is kept."""

    def __init__(self, local: Local) -> None:
        self.local = local
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self._send, daemon=True) for _ in range(2)]

    def __enter__(self) -> StepLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _send(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                if self.ok + len(self.failures) >= MAX_REQUESTS or \
                        time.monotonic() - self.started > LOAD_SECONDS:
                    return
            try:
                self.local.invoke("busy", b"x" * 64)
            except Exception as exc:  # noqa: BLE001 - every failure is reported by the test
                with self.lock:
                    self.failures.append(repr(exc))
            else:
                with self.lock:
                    self.ok += 1


def _variant(local: Local) -> dict[str, Any]:
    described = local.sm.describe_endpoint(EndpointName="busy")
    return dict(described["ProductionVariants"][0])


def _until(check: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _model_error(local: Local, body: bytes) -> int:
    with pytest.raises(ClientError) as raised:
        local.invoke("busy", body)
    return int(raised.value.response["OriginalStatusCode"])


def test_step_load_scales_out_to_max_and_back_in(scaled: Local) -> None:
    local = scaled
    scaling = local_mode.client("application-autoscaling", settings=local.settings)
    cloudwatch = local_mode.client("cloudwatch", settings=local.settings)
    local.model("echo", MODEL)
    local.config("busy-config", ("AllTraffic", "echo", 1, 1.0))
    local.endpoint("busy", "busy-config")
    began = datetime.now(timezone.utc) - timedelta(seconds=5)

    scaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=RESOURCE,
                                     ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=3)
    policy = scaling.put_scaling_policy(
        PolicyName="invocations", ServiceNamespace="sagemaker", ResourceId=RESOURCE,
        ScalableDimension=DIMENSION, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 10.0, "ScaleOutCooldown": 60, "ScaleInCooldown": 120,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    high, low = (a["AlarmName"] for a in policy["Alarms"])
    assert re.fullmatch(rf"TargetTracking-{RESOURCE}-AlarmHigh-[0-9a-f-]{{36}}", high)
    assert re.fullmatch(rf"TargetTracking-{RESOURCE}-AlarmLow-[0-9a-f-]{{36}}", low)

    # the model's own errors: counted as 4XX and 5XX, apart from each other
    assert _model_error(local, b"bad") == 400
    assert _model_error(local, b"crash") == 500

    with StepLoad(local) as load:
        grown = _until(lambda: (v := _variant(local))["CurrentInstanceCount"] == 3 and v,
                       "the endpoint to scale out to its maximum", LOAD_SECONDS)
        assert grown["DesiredInstanceCount"] == 3
        # the new instances take traffic: keep the load on a little longer
        time.sleep(2.0)
    assert not load.failures, load.failures[:5]
    sent = load.ok
    assert sent > 0

    def scaled_in() -> bool:
        activities = scaling.describe_scaling_activities(
            ServiceNamespace="sagemaker", ResourceId=RESOURCE)["ScalingActivities"]
        return bool(activities) and activities[0]["Description"] == \
            "Setting desired instance count to 1." and \
            activities[0]["StatusCode"] == "Successful"

    _until(scaled_in, "the endpoint to scale back in once the load stopped", SETTLE_SECONDS)
    variant = _variant(local)
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (1, 1)

    activities = scaling.describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=RESOURCE)["ScalingActivities"]
    out = [a for a in activities if a["Description"] == "Setting desired instance count to 3."]
    assert len(out) == 1, activities
    assert out[0]["Cause"] == f"monitor alarm {high} in state ALARM triggered policy invocations"
    assert out[0]["StatusCode"] == "Successful"
    assert out[0]["StatusMessage"] == ("Successfully set desired instance count to 3. Change "
                                       "successfully fulfilled by sagemaker.")
    scale_in = activities[0]
    assert scale_in["Cause"] == f"monitor alarm {low} in state ALARM triggered policy invocations"
    assert scale_in["StartTime"] > out[0]["EndTime"]
    for activity in activities:
        assert activity["ServiceNamespace"] == "sagemaker"
        assert activity["ResourceId"] == RESOURCE
        assert activity["ScalableDimension"] == DIMENSION

    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(
        AlarmNamePrefix=f"TargetTracking-{RESOURCE}")["MetricAlarms"]}
    assert alarms[low]["StateValue"] == "ALARM"
    assert alarms[high]["StateValue"] == "OK"
    (action,) = alarms[high]["AlarmActions"]  # the policy's ARN, marked as made by it
    assert re.fullmatch(re.escape(policy["PolicyARN"]) + r":createdBy/[0-9a-f-]{36}", action)

    # every request is in the metrics once its period is written
    time.sleep(2.5)
    ended = datetime.now(timezone.utc) + timedelta(seconds=5)
    dims = [{"Name": "EndpointName", "Value": "busy"},
            {"Name": "VariantName", "Value": "AllTraffic"}]

    def total(metric: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=metric, Dimensions=dims, StartTime=began,
            EndTime=ended, Period=60, Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in points)

    assert total("Invocations") == sent + 2
    assert total("Invocation4XXErrors") == 1
    assert total("Invocation5XXErrors") == 1
    per_instance = total("InvocationsPerInstance")
    assert sent / 3 < per_instance <= sent + 2  # 1/n per request, n from 1 to 3
    setup = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="ModelSetupTime", Dimensions=dims,
        StartTime=began, EndTime=ended, Period=60, Statistics=["SampleCount", "Maximum"])
    assert sum(p["SampleCount"] for p in setup["Datapoints"]) == 3  # one per instance started
    cpu = cloudwatch.get_metric_statistics(
        Namespace="/aws/sagemaker/Endpoints", MetricName="CPUUtilization", Dimensions=dims,
        StartTime=began, EndTime=ended, Period=60, Statistics=["Maximum"])
    assert cpu["Datapoints"] and max(p["Maximum"] for p in cpu["Datapoints"]) > 0
