"""The endpoint runner's scaling step over real stores: alarms evaluated and recorded, the
policies' decision applied as a scaling activity, one change at a time per variant."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from local_mode.autoscaling.client import ApplicationAutoScalingClient
from local_mode.autoscaling.store import ScalingStore
from local_mode.cloudwatch.alarms import Alarm, AlarmStore
from local_mode.cloudwatch.datums import SAGEMAKER_NAMESPACE, Datum
from local_mode.cloudwatch.sources import write_custom
from local_mode.endpoints.autoscaler import Autoscaler
from local_mode.endpoints.router import Instance, Router, Variant
from local_mode.endpoints.spec import ContainerSpec, ModelSpec, VariantSpec
from local_mode.state import StateStore
from tests.unit.test_autoscaling_client import make_endpoint

RID = "endpoint/ep/variant/AllTraffic"
NS = {"ServiceNamespace": "sagemaker", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
NOW = 1_800_000_100.0
TIME_SCALE = 1 / 60
"""A metric period of 1 s: a service minute per second."""


class Runner:
    """The runner's side of scaling: a real router and variant; scale_to records the call."""

    def __init__(self, succeed: bool = True) -> None:
        self.router = Router("ep", Path("/nonexistent"))
        model = ModelSpec("m", (ContainerSpec("primary", None, None),))
        self.variant = Variant(VariantSpec("AllTraffic", "m", 1, "local", 1.0, 600.0), model)
        self.variant.instances.append(Instance("AllTraffic-1", [], [], healthy=True))
        self.router.variants = [self.variant]
        self.calls: list[int] = []
        self.succeed = succeed
        self.update_under_way = False
        self.release = asyncio.Event()

    def updating(self) -> bool:
        return self.update_under_way

    async def scale_to(self, variant: Variant, desired: int) -> str | None:
        self.calls.append(desired)
        variant.desired_count = desired
        await self.release.wait()
        return None if self.succeed else "a new instance did not pass its ping health check"


def invocations(value: float, periods: int = 3, endpoint: str = "ep") -> list[Datum]:
    """InvocationsPerInstance of ``value`` in each of the 1 s periods before NOW."""
    dims = (("EndpointName", endpoint), ("VariantName", "AllTraffic"))
    start = int(NOW) - periods
    return [Datum(SAGEMAKER_NAMESPACE, "InvocationsPerInstance", dims, float(start + i), 1.0,
                  value, value, 1.0, 1.0) for i in range(periods)]


@pytest.fixture()
def store(tmp_path: Path) -> StateStore:
    state = StateStore(tmp_path / "state")
    make_endpoint(state, "ep", [{"VariantName": "AllTraffic"}])
    make_endpoint(state, "other", [{"VariantName": "AllTraffic"}])
    client = ApplicationAutoScalingClient(state_dir=state.root)
    client.register_scalable_target(ResourceId=RID, MinCapacity=1, MaxCapacity=3, **NS)
    client.put_scaling_policy(
        PolicyName="track", ResourceId=RID, PolicyType="TargetTrackingScaling", **NS,
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 10.0, "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    return state


def high_alarm(store: StateStore) -> Alarm:
    (alarm,) = [a for a in AlarmStore(store.root).list() if "AlarmHigh" in a.name]
    return alarm


async def run_step(scaler: Autoscaler, runner: Runner, datums: list[Datum]) -> None:
    await scaler.step(NOW, datums)
    runner.release.set()
    await scaler.close()


def test_a_breach_scales_out_to_the_maximum_as_an_activity(store: StateStore) -> None:
    runner = Runner()
    scaler = Autoscaler(runner, "ep", store.root, TIME_SCALE, clock=lambda: NOW + 0.5)
    asyncio.run(run_step(scaler, runner, invocations(50.0)))
    assert runner.calls == [3]  # ceil(1 x 50 / 10) = 5, capped at MaxCapacity
    (activity,) = ScalingStore(store.root).activities(RID)
    assert activity.status_code == "Successful"
    assert activity.description == "Setting desired instance count to 3."
    assert activity.cause == f"monitor alarm {high_alarm(store).name} in state ALARM " \
                             "triggered policy track"
    assert (activity.start, activity.end) == (NOW, NOW + 0.5)
    assert AlarmStore(store.root).state(high_alarm(store).name).value == "ALARM"


def test_a_change_that_fails_is_a_failed_activity(store: StateStore) -> None:
    runner = Runner(succeed=False)
    scaler = Autoscaler(runner, "ep", store.root, TIME_SCALE, clock=lambda: NOW)
    asyncio.run(run_step(scaler, runner, invocations(50.0)))
    (activity,) = ScalingStore(store.root).activities(RID)
    assert activity.status_code == "Failed"
    assert "did not pass its ping health check" in activity.status_message


def test_no_scaling_while_the_endpoint_is_updated(store: StateStore) -> None:
    runner = Runner()
    runner.update_under_way = True
    scaler = Autoscaler(runner, "ep", store.root, TIME_SCALE, clock=lambda: NOW)
    asyncio.run(run_step(scaler, runner, invocations(50.0)))
    assert runner.calls == [] and ScalingStore(store.root).activities(RID) == []


def test_no_second_decision_while_a_change_is_under_way(store: StateStore) -> None:
    runner = Runner()
    scaler = Autoscaler(runner, "ep", store.root, TIME_SCALE, clock=lambda: NOW)

    async def two_steps() -> None:
        await scaler.step(NOW, invocations(50.0))
        runner.variant.desired_count = 1  # as if it had not moved yet
        await scaler.step(NOW + 1, invocations(50.0))
        runner.release.set()
        await scaler.close()
    asyncio.run(two_steps())
    assert runner.calls == [3]


def test_quiet_metrics_change_nothing_and_other_endpoints_alarms_are_left_alone(
        store: StateStore) -> None:
    runner = Runner()
    scaler = Autoscaler(runner, "ep", store.root, TIME_SCALE, clock=lambda: NOW)
    alarms = AlarmStore(store.root)
    foreign = Alarm.from_request({
        "AlarmName": "other-busy", "Namespace": SAGEMAKER_NAMESPACE,
        "MetricName": "Invocations", "Statistic": "Sum", "Period": 60,
        "EvaluationPeriods": 1, "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "Dimensions": [{"Name": "EndpointName", "Value": "other"}]})
    alarms.put(foreign)
    asyncio.run(run_step(scaler, runner, invocations(5.0) + invocations(99.0, endpoint="other")))
    assert runner.calls == []
    assert ScalingStore(store.root).activities(RID) == []
    assert alarms.state(high_alarm(store).name).value == "OK"
    assert alarms.state("other-busy").value == "INSUFFICIENT_DATA"  # not this runner's


def test_an_alarm_put_again_meanwhile_keeps_its_fresh_state(store: StateStore) -> None:
    """A state worked out from an alarm's old definition is not written onto its new one."""
    alarms = AlarmStore(store.root)
    old = high_alarm(store)
    changed = replace(old, threshold=1000.0)
    state = alarms.state(old.name)
    alarms.put(changed)
    assert not alarms.set_state(old.name, replace(state, value="ALARM"), evaluated=old)
    assert alarms.state(old.name).value == "INSUFFICIENT_DATA"
    assert alarms.set_state(old.name, replace(state, value="OK"), evaluated=changed)
    assert alarms.state(old.name).value == "OK"


def test_an_alarm_on_a_custom_metric_of_the_endpoint_is_evaluated(store: StateStore) -> None:
    """A metric about the endpoint that the user sends with PutMetricData (queue depth, say)
    drives its alarms as the router's own metrics do."""
    dims = (("EndpointName", "ep"),)
    write_custom(store.root, [Datum("Custom/App", "QueueDepth", dims, float(int(NOW) - 1 - i),
                                    1.0, 1.0, 500.0, 500.0, 500.0) for i in range(2)])
    alarms = AlarmStore(store.root)
    alarms.put(Alarm.from_request({
        "AlarmName": "deep-queue", "Namespace": "Custom/App", "MetricName": "QueueDepth",
        "Statistic": "Maximum", "Period": 60, "EvaluationPeriods": 2, "Threshold": 100.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "Dimensions": [{"Name": "EndpointName", "Value": "ep"}]}))
    runner = Runner()
    scaler = Autoscaler(runner, "ep", store.root, TIME_SCALE, clock=lambda: NOW)
    asyncio.run(run_step(scaler, runner, []))
    assert alarms.state("deep-queue").value == "ALARM"
