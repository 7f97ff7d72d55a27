"""The scaling timeline end to end, without Docker: the API registers a variant and puts a target
tracking policy, the local CloudWatch alarms it made are evaluated over InvocationsPerInstance
datapoints as the endpoint runner records them (one period = 1 s, so 60x compressed), decide()
scales out then in after the cooldown, and DescribeScalingActivities reads as the service's."""

from __future__ import annotations

from pathlib import Path

from local_mode.autoscaling.client import ApplicationAutoScalingClient
from local_mode.autoscaling.decide import ScalingHistory, decide
from local_mode.autoscaling.store import ScalingStore
from local_mode.autoscaling.wording import fulfilled
from local_mode.cloudwatch.alarms import AlarmStore, evaluate
from local_mode.cloudwatch.datums import SAGEMAKER_NAMESPACE, Datum, dimensions_of
from local_mode.shapes import response_errors
from local_mode.state import StateStore, now
from tests.unit.test_autoscaling_client import NS, make_endpoint

RID = "endpoint/ep/variant/AllTraffic"
PERIOD = 1.0
TIME_SCALE = PERIOD / 60
DIMS = dimensions_of({"EndpointName": "ep", "VariantName": "AllTraffic"})


def per_instance(start: float, requests: int, serving: int) -> Datum:
    """One period of InvocationsPerInstance as the router records it: 1/n per request."""
    return Datum.of_values(SAGEMAKER_NAMESPACE, "InvocationsPerInstance", DIMS, start, PERIOD,
                           [1 / serving] * requests)


def test_scale_out_under_load_and_back_in_after_the_cooldown(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    make_endpoint(store, "ep", [{"VariantName": "AllTraffic"}])
    aas = ApplicationAutoScalingClient(state_dir=store.root)
    aas.register_scalable_target(ResourceId=RID, MinCapacity=1, MaxCapacity=3, **NS)
    aas.put_scaling_policy(PolicyName="ipi", ResourceId=RID, PolicyType="TargetTrackingScaling",
                           TargetTrackingScalingPolicyConfiguration={
                               "TargetValue": 10.0, "ScaleInCooldown": 300,
                               "PredefinedMetricSpecification": {
                                   "PredefinedMetricType":
                                       "SageMakerVariantInvocationsPerInstance"}}, **NS)
    scaling, alarms = ScalingStore(store.root), AlarmStore(store.root)
    (target,) = scaling.targets_for_endpoint("ep")
    policies = scaling.policies(RID)
    desired, history, datums = 1, ScalingHistory(), []
    t0 = float(int(now().timestamp())) - 120  # whole seconds: periods align
    timeline = []
    for second in range(60):
        load = 28 if second < 20 else 2  # 28 requests a second, then 2
        datums.append(per_instance(t0 + second, load, desired))
        clock = t0 + second + 1  # the period just ended
        states = {a.name: (a, evaluate(a, datums, clock, TIME_SCALE)) for a in alarms.list()}
        for name, (_, state) in states.items():
            alarms.set_state(name, state)
        decision = decide(target, policies, states, desired, history, clock, TIME_SCALE,
                          current=desired)
        if decision is None:
            continue
        activity = scaling.start_activity(target, decision, clock)
        scaling.finish_activity(RID, activity, "Successful", fulfilled(decision.desired), clock)
        history = history.after(decision, desired, clock)
        desired = decision.desired
        timeline.append((second, decision.direction, desired))
    # out after 3 breaching periods (28 per instance > 10: ceil(1 x 28 / 10) = 3), then 9.33
    # per instance: neither alarm; in once 15 periods have been below 9 (2 / 3 per instance:
    # ceil(3 x 0.67 / 10) = 1)
    assert timeline[0] == (2, "out", 3)
    assert [step[1:] for step in timeline] == [("out", 3), ("in", 1)]
    assert 20 + 15 - 1 <= timeline[1][0] <= 20 + 15 + 1
    response = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=RID)
    assert response_errors("DescribeScalingActivities", response,
                           service="application-autoscaling") == []
    newest, oldest = response["ScalingActivities"]
    assert oldest["Description"] == "Setting desired instance count to 3."
    assert oldest["Cause"].startswith(f"monitor alarm TargetTracking-{RID}-AlarmHigh-")
    assert oldest["Cause"].endswith(" in state ALARM triggered policy ipi")
    assert newest["Description"] == "Setting desired instance count to 1."
    assert "-AlarmLow-" in newest["Cause"]
    assert newest["StatusMessage"] == ("Successfully set desired instance count to 1. Change "
                                       "successfully fulfilled by sagemaker.")
