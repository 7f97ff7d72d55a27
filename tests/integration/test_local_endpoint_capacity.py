"""Capacity changes of a live endpoint (process backend), as the service makes them:
UpdateEndpointWeightsAndCapacities under load with no failed request, the endpoint Updating
until it is done, what is refused meanwhile; what autoscaling registration forbids an update;
and a deleted endpoint's variants deregistered from autoscaling with their alarms, its metrics
kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import local_mode
from tests.integration.test_local_endpoints_support import Local

SCALABLE = {"ServiceNamespace": "sagemaker",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
RESOURCE = "endpoint/cap/variant/AllTraffic"


@pytest.fixture()
def local(tmp_path: Path) -> Iterator[Local]:
    env = Local(tmp_path, {"OPTML_LOCAL_METRIC_PERIOD_SECONDS": "1"})
    try:
        env.model("m")
        env.config("cap-config", ("AllTraffic", "m", 1, 1.0))
        env.endpoint("cap", "cap-config")
        yield env
    finally:
        env.cleanup()


def _variant(local: Local) -> dict[str, object]:
    return dict(local.sm.describe_endpoint(EndpointName="cap")["ProductionVariants"][0])


def _code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


def test_capacity_changes_in_place_under_load_without_a_failed_request(local: Local) -> None:
    failures: list[str] = []
    sent = [0]
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set() and sent[0] < 3000:
            try:
                local.invoke("cap")
                sent[0] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                failures.append(repr(exc))

    threads = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for count, weight in ((3, 1.0), (1, 0.5)):
            local.sm.update_endpoint_weights_and_capacities(
                EndpointName="cap", DesiredWeightsAndCapacities=[
                    {"VariantName": "AllTraffic", "DesiredInstanceCount": count,
                     "DesiredWeight": weight}])
            assert local.sm.describe_endpoint(EndpointName="cap")["EndpointStatus"] in (
                "Updating", "InService")
            with pytest.raises(ClientError) as raised:  # one capacity change at a time
                local.sm.update_endpoint_weights_and_capacities(
                    EndpointName="cap", DesiredWeightsAndCapacities=[
                        {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
            assert _code(raised) == "ValidationException"
            local.wait_status("cap", "InService")
            variant = _variant(local)
            assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"],
                    variant["DesiredWeight"]) == (count, count, weight)
            time.sleep(0.5)  # requests reach the new fleet
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not failures, failures[:3]
    assert sent[0] > 0
    assert len(local.private("cap")["Instances"]) == 1  # the others were stopped


@pytest.mark.parametrize(("change", "message"), [
    ({"VariantName": "Nope", "DesiredInstanceCount": 2}, "not present"),
    ({"VariantName": "AllTraffic", "DesiredInstanceCount": 0}, "at least 1"),
])
def test_bad_capacity_changes_are_refused(local: Local, change: dict[str, object],
                                          message: str) -> None:
    with pytest.raises(ClientError) as raised:
        local.sm.update_endpoint_weights_and_capacities(
            EndpointName="cap", DesiredWeightsAndCapacities=[change])
    assert _code(raised) == "ValidationException" and message in str(raised.value)
    assert local.sm.describe_endpoint(EndpointName="cap")["EndpointStatus"] == "InService"


def test_a_scaled_variant_keeps_its_instance_type_and_goes_with_its_endpoint(
        local: Local) -> None:
    scaling = local_mode.client("application-autoscaling", settings=local.settings)
    cloudwatch = local_mode.client("cloudwatch", settings=local.settings)
    scaling.register_scalable_target(ResourceId=RESOURCE, MinCapacity=1, MaxCapacity=2,
                                     **SCALABLE)
    scaling.put_scaling_policy(
        PolicyName="p", ResourceId=RESOURCE, PolicyType="TargetTrackingScaling", **SCALABLE,
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 100.0, "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    assert len(cloudwatch.describe_alarms()["MetricAlarms"]) == 2

    local.sm.create_endpoint_config(EndpointConfigName="bigger", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.xlarge"}])
    with pytest.raises(ClientError) as raised:
        local.sm.update_endpoint(EndpointName="cap", EndpointConfigName="bigger")
    assert _code(raised) == "ValidationException" and "deregister" in str(raised.value)
    assert local.sm.describe_endpoint(EndpointName="cap")["EndpointStatus"] == "InService"

    local.invoke("cap")
    time.sleep(2.2)  # its period is written
    local.sm.delete_endpoint(EndpointName="cap")
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="sagemaker")[
        "ScalingPolicies"] == []
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []
    # CloudWatch keeps a deleted endpoint's metrics
    listed = cloudwatch.list_metrics(Namespace="AWS/SageMaker", MetricName="Invocations")
    assert [{"Name": "EndpointName", "Value": "cap"},
            {"Name": "VariantName", "Value": "AllTraffic"}] in \
        [m["Dimensions"] for m in listed["Metrics"]]
