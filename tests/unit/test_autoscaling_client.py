"""The local application-autoscaling client over a real state directory: every response checked
against botocore's output shape, botocore's paginators, the alarms target tracking makes, and
the service's errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from local_mode.autoscaling.client import ApplicationAutoScalingClient
from local_mode.autoscaling.decide import Decision
from local_mode.autoscaling.store import ScalingStore
from local_mode.cloudwatch.alarms import AlarmStore
from local_mode.shapes import response_errors
from local_mode.state import StateStore, now

SERVICE = "application-autoscaling"
NS = {"ServiceNamespace": "sagemaker", "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
RID = "endpoint/ep/variant/AllTraffic"
INVOCATIONS = {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}


def make_endpoint(store: StateStore, name: str, variants: list[dict[str, Any]]) -> None:
    config = f"{name}-config"
    store.create("models", f"{name}-model", {"ModelName": f"{name}-model"},
                 {"ModelName": f"{name}-model"})
    store.create("endpoint-configs", config, {"EndpointConfigName": config},
                 {"EndpointConfigName": config, "ProductionVariants": [
                     {"ModelName": f"{name}-model", "InitialInstanceCount": 1,
                      "InstanceType": "local", **variant} for variant in variants]})
    created = now()
    store.create("endpoints", name, {"EndpointName": name, "EndpointConfigName": config,
                                     "EndpointStatus": "InService", "CreationTime": created,
                                     "LastModifiedTime": created},
                 {"EndpointName": name, "EndpointConfigName": config})


@pytest.fixture()
def store(tmp_path: Path) -> StateStore:
    state = StateStore(tmp_path / "state")
    make_endpoint(state, "ep", [{"VariantName": "AllTraffic"}, {"VariantName": "Canary"}])
    return state


@pytest.fixture()
def aas(store: StateStore) -> ApplicationAutoScalingClient:
    return ApplicationAutoScalingClient(state_dir=store.root, region_name="us-west-2",
                                        aws_account_id="123456789012")


def call(client: ApplicationAutoScalingClient, method: str, **request: Any) -> dict[str, Any]:
    """The call, its response checked against botocore's output shape."""
    response: dict[str, Any] = getattr(client, method)(**request)
    assert response_errors(client.OPERATIONS[method], response, service=SERVICE) == []
    return response


def error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


def register(client: ApplicationAutoScalingClient, resource: str = RID, **request: Any
             ) -> dict[str, Any]:
    return call(client, "register_scalable_target", ResourceId=resource,
                **{"MinCapacity": 1, "MaxCapacity": 4, **NS, **request})


def tracking(client: ApplicationAutoScalingClient, name: str = "track", **config: Any
             ) -> dict[str, Any]:
    return call(client, "put_scaling_policy", PolicyName=name, ResourceId=RID,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": 70.0, "PredefinedMetricSpecification": INVOCATIONS, **config},
                **NS)


# -- scalable targets ------------------------------------------------------------------------
def test_register_describe_and_update_a_target(aas: ApplicationAutoScalingClient) -> None:
    arn = register(aas)["ScalableTargetARN"]
    assert re.fullmatch(r"arn:aws:application-autoscaling:us-west-2:123456789012:"
                        r"scalable-target/[0-9a-f]{36}", arn)
    (described,) = call(aas, "describe_scalable_targets",
                        ServiceNamespace="sagemaker")["ScalableTargets"]
    assert described["ResourceId"] == RID and described["ScalableTargetARN"] == arn
    assert (described["MinCapacity"], described["MaxCapacity"]) == (1, 4)
    assert described["RoleARN"].endswith(
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")
    assert described["SuspendedState"] == {"DynamicScalingInSuspended": False,
                                           "DynamicScalingOutSuspended": False,
                                           "ScheduledScalingSuspended": False}
    # registering again updates what is given and keeps the rest, the ARN and creation time
    assert call(aas, "register_scalable_target", ResourceId=RID, MaxCapacity=6,
                SuspendedState={"DynamicScalingInSuspended": True},
                **NS)["ScalableTargetARN"] == arn
    (updated,) = call(aas, "describe_scalable_targets",
                      ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (updated["MinCapacity"], updated["MaxCapacity"]) == (1, 6)
    assert updated["SuspendedState"]["DynamicScalingInSuspended"] is True
    assert updated["CreationTime"] == described["CreationTime"]
    target = ScalingStore(aas.store.root).targets_for_endpoint("ep")[0]
    assert (target.endpoint_name, target.variant_name) == ("ep", "AllTraffic")


def test_describe_filters_by_resource_id(aas: ApplicationAutoScalingClient) -> None:
    register(aas)
    register(aas, "endpoint/ep/variant/Canary")
    found = call(aas, "describe_scalable_targets", ServiceNamespace="sagemaker",
                 ResourceIds=["endpoint/ep/variant/Canary"])["ScalableTargets"]
    assert [t["ResourceId"] for t in found] == ["endpoint/ep/variant/Canary"]


@pytest.mark.parametrize(("request_", "message"), [
    ({"ResourceId": "endpoint/nope/variant/AllTraffic"}, 'Could not find endpoint "nope"'),
    ({"ResourceId": "endpoint/ep/variant/Missing"},
     'variant "Missing" does not exist in endpoint "ep" (its variants: AllTraffic, Canary)'),
    ({"ResourceId": "service/cluster/web"}, "local mode scales SageMaker endpoint variants only"),
    ({"MinCapacity": 3, "MaxCapacity": 2}, "Maximum capacity (2) cannot be less than minimum"),
    ({"MinCapacity": 0}, "minimum instance count must be at least 1"),
    ({"ScalableDimension": "sagemaker:inference-component:DesiredCopyCount"},
     "Unsupported scalable dimension 'sagemaker:inference-component:DesiredCopyCount'"),
    ({"ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount"},
     "Unsupported service namespace 'ecs': local mode scales SageMaker endpoint variants only"),
])
def test_register_refuses_as_the_service(aas: ApplicationAutoScalingClient,
                                         request_: dict[str, Any], message: str) -> None:
    with pytest.raises(aas.exceptions.ValidationException) as excinfo:
        aas.register_scalable_target(**{"ResourceId": RID, "MinCapacity": 1, "MaxCapacity": 4,
                                        **NS, **request_})
    code, text = error(excinfo)
    assert code == "ValidationException" and message in text
    assert excinfo.value.operation_name == "RegisterScalableTarget"


def test_a_new_target_needs_both_bounds(aas: ApplicationAutoScalingClient) -> None:
    with pytest.raises(aas.exceptions.ValidationException, match="MinCapacity and MaxCapacity"):
        aas.register_scalable_target(ResourceId=RID, MaxCapacity=3, **NS)


def test_a_serverless_variant_has_no_count_to_scale(store: StateStore) -> None:
    make_endpoint(store, "sls", [{"VariantName": "v", "ServerlessConfig": {
        "MemorySizeInMB": 2048, "MaxConcurrency": 5}}])
    client = ApplicationAutoScalingClient(state_dir=store.root)
    with pytest.raises(client.exceptions.ValidationException, match="serverless"):
        register(client, "endpoint/sls/variant/v")


def test_botocore_checks_the_request_first(aas: ApplicationAutoScalingClient) -> None:
    with pytest.raises(ParamValidationError):
        aas.register_scalable_target(ResourceId=RID, **NS, MinCapacity="1")
    with pytest.raises(aas.exceptions.ValidationException, match="must be one of"):
        aas.register_scalable_target(ResourceId=RID, ServiceNamespace="sagemaker",
                                     ScalableDimension="nope")


def test_deregister_removes_the_policies_and_their_alarms(
        aas: ApplicationAutoScalingClient) -> None:
    register(aas)
    alarms = [a["AlarmName"] for a in tracking(aas)["Alarms"]]
    assert set(call(aas, "deregister_scalable_target", ResourceId=RID, **NS)) == \
        {"ResponseMetadata"}
    assert call(aas, "describe_scalable_targets", ServiceNamespace="sagemaker")[
        "ScalableTargets"] == []
    assert call(aas, "describe_scaling_policies", ServiceNamespace="sagemaker")[
        "ScalingPolicies"] == []
    store = AlarmStore(aas.store.root)
    assert [store.get(name) for name in alarms] == [None, None]
    with pytest.raises(aas.exceptions.ObjectNotFoundException) as excinfo:
        aas.deregister_scalable_target(ResourceId=RID, **NS)
    assert error(excinfo) == (
        "ObjectNotFoundException",
        f"No scalable target registered for service namespace: sagemaker, resource ID: {RID}, "
        "scalable dimension: sagemaker:variant:DesiredInstanceCount")


# -- target tracking -------------------------------------------------------------------------
def test_target_tracking_makes_the_services_two_alarms(aas: ApplicationAutoScalingClient) -> None:
    register(aas)
    response = tracking(aas)
    assert re.fullmatch(r"arn:aws:autoscaling:us-west-2:123456789012:scalingPolicy:[0-9a-f-]{36}:"
                        rf"resource/sagemaker/{RID}:policyName/track", response["PolicyARN"])
    high_ref, low_ref = response["Alarms"]
    assert re.fullmatch(rf"TargetTracking-{RID}-AlarmHigh-[0-9a-f-]{{36}}", high_ref["AlarmName"])
    assert re.fullmatch(rf"TargetTracking-{RID}-AlarmLow-[0-9a-f-]{{36}}", low_ref["AlarmName"])
    assert high_ref["AlarmARN"] == ("arn:aws:cloudwatch:us-west-2:123456789012:alarm:"
                                    + high_ref["AlarmName"])
    store = AlarmStore(aas.store.root)
    high, low = store.get(high_ref["AlarmName"]), store.get(low_ref["AlarmName"])
    assert high is not None and low is not None
    dims = (("EndpointName", "ep"), ("VariantName", "AllTraffic"))
    for alarm in (high, low):
        assert (alarm.namespace, alarm.metric_name, alarm.dimensions, alarm.statistic,
                alarm.period) == ("AWS/SageMaker", "InvocationsPerInstance", dims, "Sum", 60)
        (action,) = alarm.alarm_actions
        assert action.startswith(response["PolicyARN"] + ":createdBy/")
        assert alarm.description == f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {action}."
    assert (high.comparison_operator, high.threshold, high.evaluation_periods,
            high.datapoints_to_alarm) == ("GreaterThanThreshold", 70.0, 3, 3)
    assert (low.comparison_operator, low.threshold, low.evaluation_periods,
            low.datapoints_to_alarm) == ("LessThanThreshold", pytest.approx(63.0), 15, 15)


def test_describe_echoes_the_policy_as_put(aas: ApplicationAutoScalingClient) -> None:
    register(aas)
    put = tracking(aas, ScaleInCooldown=600, DisableScaleIn=True)
    (policy,) = call(aas, "describe_scaling_policies", ServiceNamespace="sagemaker",
                     ResourceId=RID, **{"ScalableDimension": NS["ScalableDimension"]})[
        "ScalingPolicies"]
    assert policy["PolicyARN"] == put["PolicyARN"] and policy["PolicyType"] == \
        "TargetTrackingScaling"
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 70.0, "PredefinedMetricSpecification": INVOCATIONS,
        "ScaleInCooldown": 600, "DisableScaleIn": True}
    assert policy["Alarms"] == put["Alarms"] and len(put["Alarms"]) == 1  # no AlarmLow


def test_putting_a_policy_again_replaces_its_alarms_and_keeps_its_arn(
        aas: ApplicationAutoScalingClient) -> None:
    register(aas)
    first = tracking(aas)
    second = tracking(aas, TargetValue=10.0)
    assert second["PolicyARN"] == first["PolicyARN"]
    store = AlarmStore(aas.store.root)
    assert [store.get(a["AlarmName"]) for a in first["Alarms"]] == [None, None]
    high = store.get(second["Alarms"][0]["AlarmName"])
    assert high is not None and high.threshold == 10.0
    assert sorted(a.name for a in store.list()) == sorted(a["AlarmName"] for a in second["Alarms"])


def test_a_customized_metric_of_the_endpoint(aas: ApplicationAutoScalingClient) -> None:
    register(aas)
    response = call(
        aas, "put_scaling_policy", PolicyName="latency", ResourceId=RID,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 200000.0, "CustomizedMetricSpecification": {
                "Metrics": [{"Id": "m1", "ReturnData": True, "MetricStat": {
                    "Stat": "Average", "Metric": {
                        "Namespace": "AWS/SageMaker", "MetricName": "ModelLatency",
                        "Dimensions": [{"Name": "EndpointName", "Value": "ep"},
                                       {"Name": "VariantName", "Value": "AllTraffic"}]}}}]}},
        **NS)
    high = AlarmStore(aas.store.root).get(response["Alarms"][0]["AlarmName"])
    assert high is not None and (high.metric_name, high.statistic) == ("ModelLatency", "Average")


@pytest.mark.parametrize(("config", "message"), [
    ({"TargetValue": 5.0, "CustomizedMetricSpecification": {
        "MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "Statistic": "Average"}},
     "is not one a local endpoint publishes"),
    ({"TargetValue": 5.0, "CustomizedMetricSpecification": {
        "MetricName": "CPUUtilization", "Namespace": "/aws/sagemaker/Endpoints",
        "Statistic": "Average", "Dimensions": [{"Name": "EndpointName", "Value": "other"}]}},
     "must include EndpointName=ep"),
    ({"TargetValue": 5.0, "CustomizedMetricSpecification": {"Metrics": [
        {"Id": "e", "Expression": "m1 * 2"}]}}, "metric math is not emulated"),
    ({"TargetValue": 5.0, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}},
     "does not apply to sagemaker:variant:DesiredInstanceCount"),
    ({"TargetValue": 5.0}, "needs exactly one of PredefinedMetricSpecification"),
    ({"TargetValue": 0.0, "PredefinedMetricSpecification": INVOCATIONS},
     "TargetValue must be a positive number"),
])
def test_target_tracking_refusals(aas: ApplicationAutoScalingClient, config: dict[str, Any],
                                  message: str) -> None:
    register(aas)
    with pytest.raises(aas.exceptions.ValidationException, match=re.escape(message)):
        aas.put_scaling_policy(PolicyName="p", ResourceId=RID, PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration=config, **NS)
    assert AlarmStore(aas.store.root).list() == []


def test_policy_type_refusals(aas: ApplicationAutoScalingClient) -> None:
    register(aas)
    with pytest.raises(aas.exceptions.ValidationException, match="PredictiveScaling is not "
                                                                  "emulated"):
        aas.put_scaling_policy(PolicyName="p", ResourceId=RID, PolicyType="PredictiveScaling",
                               PredictiveScalingPolicyConfiguration={"MetricSpecifications": [
                                   {"TargetValue": 1.0}]}, **NS)
    with pytest.raises(aas.exceptions.ValidationException, match="PolicyType is required"):
        aas.put_scaling_policy(PolicyName="p", ResourceId=RID, **NS)
    with pytest.raises(aas.exceptions.ValidationException,
                       match="StepScalingPolicyConfiguration is required"):
        aas.put_scaling_policy(PolicyName="p", ResourceId=RID, PolicyType="StepScaling", **NS)


def test_a_policy_needs_a_registered_target(aas: ApplicationAutoScalingClient) -> None:
    with pytest.raises(aas.exceptions.ObjectNotFoundException, match="No scalable target"):
        tracking(aas)


# -- step scaling ----------------------------------------------------------------------------
STEPS = {"AdjustmentType": "ChangeInCapacity", "Cooldown": 120,
         "MetricAggregationType": "Maximum", "StepAdjustments": [
             {"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 10.0,
              "ScalingAdjustment": 1},
             {"MetricIntervalLowerBound": 10.0, "ScalingAdjustment": 2}]}


def test_a_step_policy_has_no_alarms_of_its_own(aas: ApplicationAutoScalingClient) -> None:
    register(aas)
    response = call(aas, "put_scaling_policy", PolicyName="steps", ResourceId=RID,
                    PolicyType="StepScaling", StepScalingPolicyConfiguration=STEPS, **NS)
    assert "Alarms" not in response
    (policy,) = call(aas, "describe_scaling_policies", ServiceNamespace="sagemaker",
                     PolicyNames=["steps"])["ScalingPolicies"]
    assert policy["StepScalingPolicyConfiguration"] == STEPS


@pytest.mark.parametrize(("steps", "message"), [
    ([{"ScalingAdjustment": 1}], "cannot have both"),
    ([{"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 5.0, "ScalingAdjustment": 1},
      {"MetricIntervalLowerBound": 6.0, "ScalingAdjustment": 2}], "overlap or leave a gap"),
    ([{"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 5.0, "ScalingAdjustment": 1},
      {"MetricIntervalLowerBound": 4.0, "ScalingAdjustment": 2}], "overlap or leave a gap"),
    ([{"MetricIntervalUpperBound": 0.0, "ScalingAdjustment": -1},
      {"MetricIntervalUpperBound": 5.0, "ScalingAdjustment": 1}], "Only one step adjustment"),
    ([{"MetricIntervalLowerBound": 5.0, "MetricIntervalUpperBound": 1.0,
       "ScalingAdjustment": 1}], "must be greater than"),
    ([{"MetricIntervalLowerBound": -5.0, "ScalingAdjustment": 1}],
     "negative MetricIntervalLowerBound needs"),
    ([{"MetricIntervalUpperBound": 5.0, "ScalingAdjustment": 1}],
     "positive MetricIntervalUpperBound needs"),
    ([], "at least one step adjustment"),
])
def test_step_adjustment_rules(aas: ApplicationAutoScalingClient, steps: list[dict[str, Any]],
                               message: str) -> None:
    register(aas)
    with pytest.raises(aas.exceptions.ValidationException, match=re.escape(message)):
        aas.put_scaling_policy(PolicyName="p", ResourceId=RID, PolicyType="StepScaling",
                               StepScalingPolicyConfiguration={
                                   "AdjustmentType": "ChangeInCapacity",
                                   "StepAdjustments": steps}, **NS)


def test_min_adjustment_magnitude_goes_with_percent_changes(
        aas: ApplicationAutoScalingClient) -> None:
    register(aas)
    with pytest.raises(aas.exceptions.ValidationException, match="PercentChangeInCapacity"):
        aas.put_scaling_policy(PolicyName="p", ResourceId=RID, PolicyType="StepScaling",
                               StepScalingPolicyConfiguration={**STEPS,
                                                               "MinAdjustmentMagnitude": 2}, **NS)
    call(aas, "put_scaling_policy", PolicyName="p", ResourceId=RID, PolicyType="StepScaling",
         StepScalingPolicyConfiguration={**STEPS, "AdjustmentType": "PercentChangeInCapacity",
                                         "MinAdjustmentMagnitude": 2}, **NS)


def test_delete_a_policy_and_its_alarms(aas: ApplicationAutoScalingClient) -> None:
    register(aas)
    alarms = [a["AlarmName"] for a in tracking(aas)["Alarms"]]
    call(aas, "delete_scaling_policy", PolicyName="track", ResourceId=RID, **NS)
    assert [AlarmStore(aas.store.root).get(name) for name in alarms] == [None, None]
    with pytest.raises(aas.exceptions.ObjectNotFoundException) as excinfo:
        aas.delete_scaling_policy(PolicyName="track", ResourceId=RID, **NS)
    assert error(excinfo)[1] == (
        f"No scaling policy found for service namespace: sagemaker, resource ID: {RID}, "
        "scalable dimension: sagemaker:variant:DesiredInstanceCount, policy name: track")


# -- activities and pages --------------------------------------------------------------------
def test_activities_newest_first_with_the_services_text(aas: ApplicationAutoScalingClient) -> None:
    register(aas)
    scaling = ScalingStore(aas.store.root)
    (target,) = scaling.targets()
    t0 = now().timestamp() - 100
    cause = f"monitor alarm TargetTracking-{RID}-AlarmHigh-x in state ALARM triggered policy p"
    first = scaling.start_activity(target, Decision(2, cause, "Setting desired instance count "
                                                    "to 2.", "p", "out"), t0)
    scaling.finish_activity(RID, first, "Successful",
                            "Successfully set desired instance count to 2. Change successfully "
                            "fulfilled by sagemaker.", t0 + 30)
    second = scaling.start_activity(target, Decision(1, "minimum capacity was set to 1",
                                                     "Setting desired instance count to 1.",
                                                     None, "bounds"), t0 + 60)
    found = call(aas, "describe_scaling_activities", ServiceNamespace="sagemaker",
                 ResourceId=RID)["ScalingActivities"]
    assert [a["ActivityId"] for a in found] == [second, first]
    assert found[0]["StatusCode"] == "InProgress" and "EndTime" not in found[0]
    assert found[0]["StatusMessage"] == ("Successfully set desired instance count to 1. Waiting "
                                         "for change to be fulfilled by sagemaker.")
    assert (found[1]["StatusCode"], found[1]["Description"], found[1]["Cause"]) == (
        "Successful", "Setting desired instance count to 2.", cause)
    assert found[1]["EndTime"].timestamp() == pytest.approx(t0 + 30)


def test_paginators_walk_every_page(aas: ApplicationAutoScalingClient, store: StateStore) -> None:
    for index in range(5):
        make_endpoint(store, f"e{index}", [{"VariantName": "v"}])
        register(aas, f"endpoint/e{index}/variant/v")
        call(aas, "put_scaling_policy", PolicyName=f"p{index}",
             ResourceId=f"endpoint/e{index}/variant/v", PolicyType="StepScaling",
             StepScalingPolicyConfiguration=STEPS, **NS)
    scaling = ScalingStore(store.root)
    start = now().timestamp()
    for index, target in enumerate(scaling.targets()):
        scaling.start_activity(target, Decision(2, "c", "d", None, "bounds"), start + index)
    for operation, key, count in (("describe_scalable_targets", "ScalableTargets", 5),
                                  ("describe_scaling_policies", "ScalingPolicies", 5),
                                  ("describe_scaling_activities", "ScalingActivities", 5)):
        assert aas.can_paginate(operation)
        pages = list(aas.get_paginator(operation).paginate(
            ServiceNamespace="sagemaker", PaginationConfig={"PageSize": 2}))
        assert [len(page[key]) for page in pages] == [2, 2, 1]
        for page in pages:
            assert response_errors(aas.OPERATIONS[operation], page, service=SERVICE) == []
        items = [item for page in pages for item in page[key]]
        assert len(items) == count
        whole = call(aas, operation, ServiceNamespace="sagemaker")[key]
        assert items == whole
    starts = [a["StartTime"] for a in call(aas, "describe_scaling_activities",
                                           ServiceNamespace="sagemaker")["ScalingActivities"]]
    assert starts == sorted(starts, reverse=True)


def test_a_token_from_elsewhere_is_refused(aas: ApplicationAutoScalingClient) -> None:
    with pytest.raises(aas.exceptions.InvalidNextTokenException):
        aas.describe_scalable_targets(ServiceNamespace="sagemaker", NextToken="not-ours")
    with pytest.raises(aas.exceptions.ValidationException, match="MaxResults"):
        aas.describe_scalable_targets(ServiceNamespace="sagemaker", MaxResults=51)


def test_describe_in_another_namespace_says_what_local_mode_scales(
        aas: ApplicationAutoScalingClient) -> None:
    with pytest.raises(aas.exceptions.ValidationException,
                       match="local mode scales SageMaker endpoint variants only"):
        aas.describe_scaling_activities(ServiceNamespace="ecs")


def test_scheduled_actions_are_not_emulated(aas: ApplicationAutoScalingClient) -> None:
    assert not hasattr(aas, "put_scheduled_action")
    with pytest.raises(AttributeError, match="local mode does not emulate"):
        aas.put_scheduled_action(ScheduledActionName="x")
    assert sorted(aas.OPERATIONS.values()) == [
        "DeleteScalingPolicy", "DeregisterScalableTarget", "DescribeScalableTargets",
        "DescribeScalingActivities", "DescribeScalingPolicies", "PutScalingPolicy",
        "RegisterScalableTarget"]
