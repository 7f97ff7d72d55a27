"""CloudWatch and Application Auto Scaling through the wire API, driven by unchanged boto3
clients and the AWS CLI over HTTP: a real server (process backend, embedded S3, a metric period
of one second), a real local endpoint created through boto3's ``sagemaker`` client, its
invocations read back as the service's ``AWS/SageMaker`` metrics, custom metrics and alarms
with botocore's paginators and waiters, and a target-tracking policy on the endpoint's variant
from register to deregister, every refusal raised as boto3 raises the service's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

import local_mode
from local_mode.wire.endpoint import ApiEndpoint
from tests.integration.test_local_endpoints_support import ECHO, FAST_ENV
from tests.integration.test_wire_api import tarball
from tests.unit.test_wire_cbor_rpc import protocol_session
from toolkit.settings import Settings

ROLE = "arn:aws:iam::000000000000:role/optml-local"
VARIANT = "AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiEndpoint]:
    root = tmp_path_factory.mktemp("wire-scaling")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SAGEMAKER_", "OPTML_", "AWS_"))}
    env |= {"OPTML_LOCAL_STOP_GRACE_SECONDS": "2", "OPTML_LOCAL_METRIC_PERIOD_SECONDS": "1"}
    with local_mode.server(settings=Settings.from_environ(env), state_dir=root / "state",
                           backend="process") as server:
        yield server.endpoint


def client(api: ApiEndpoint, service: str, session: Any = None) -> Any:
    return (session or boto3.session.Session()).client(service, **api.client_args(service))


@pytest.fixture(scope="module")
def endpoint(api: ApiEndpoint) -> Iterator[str]:
    """An InService endpoint of one instance, created through boto3's sagemaker client."""
    s3, sm = client(api, "s3"), client(api, "sagemaker")
    bucket = f"scaling-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="model/model.tar.gz", Body=tarball({"code/inference.py": ECHO, "value.txt": "scaled"}))
    name = f"ep-{uuid.uuid4().hex[:8]}"
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "optml/base:latest", "ModelDataUrl": f"s3://{bucket}/model/model.tar.gz",
        "Environment": FAST_ENV})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": VARIANT, "ModelName": name, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    try:
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600})
        yield name
    finally:
        sm.delete_endpoint(EndpointName=name)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                sm.describe_endpoint(EndpointName=name)
            except ClientError:
                break
            time.sleep(0.1)


# -- CloudWatch ----------------------------------------------------------------------------------

def test_endpoint_invocations_read_back_as_the_services_metrics(
        api: ApiEndpoint, endpoint: str) -> None:
    runtime, cloudwatch = client(api, "sagemaker-runtime"), client(api, "cloudwatch")
    start = datetime.now(timezone.utc) - timedelta(minutes=2)
    for _ in range(3):
        runtime.invoke_endpoint(EndpointName=endpoint, Body=b"hi", ContentType="text/csv")
    with pytest.raises(runtime.exceptions.ModelError):
        runtime.invoke_endpoint(EndpointName=endpoint, Body=b"fail", ContentType="text/csv")
    dimensions = [{"Name": "EndpointName", "Value": endpoint},
                  {"Name": "VariantName", "Value": VARIANT}]

    def total(metric: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=metric, Dimensions=dimensions,
            StartTime=start, EndTime=datetime.now(timezone.utc) + timedelta(minutes=1),
            Period=60, Statistics=["Sum"])["Datapoints"]
        return sum(point["Sum"] for point in points)

    deadline = time.monotonic() + 30  # the runner writes its datums once a (1 s) period
    while total("Invocations") < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert total("Invocations") == 4
    assert total("Invocation5XXErrors") + total("Invocation4XXErrors") == 1
    calls = {"Id": "calls", "MetricStat": {
        "Metric": {"Namespace": "AWS/SageMaker", "MetricName": "Invocations",
                   "Dimensions": dimensions}, "Period": 60, "Stat": "Sum"}}
    window = {"StartTime": start, "EndTime": datetime.now(timezone.utc) + timedelta(minutes=1)}
    [result] = cloudwatch.get_metric_data(MetricDataQueries=[calls], **window)[
        "MetricDataResults"]
    assert result["Id"] == "calls" and sum(result["Values"]) == 4
    assert all(isinstance(stamp, datetime) for stamp in result["Timestamps"])
    with pytest.raises(cloudwatch.exceptions.ValidationException) as refused:
        cloudwatch.get_metric_data(MetricDataQueries=[
            calls, {"Id": "doubled", "Expression": "calls * 2"}], **window)
    assert "metric math" in refused.value.response["Error"]["Message"]
    listed = [metric for page in cloudwatch.get_paginator("list_metrics").paginate(
        Namespace="AWS/SageMaker", Dimensions=[{"Name": "EndpointName", "Value": endpoint}])
        for metric in page["Metrics"]]
    assert {"Invocations", "ModelLatency", "InvocationsPerInstance"} <= \
        {metric["MetricName"] for metric in listed}


@pytest.mark.parametrize("protocol", ["json", "smithy-rpc-v2-cbor"])
def test_custom_metrics_and_alarms_with_paginators_and_waiters(
        api: ApiEndpoint, protocol: str, tmp_path: Path) -> None:
    session = None if protocol == "json" else protocol_session(protocol, tmp_path)
    cloudwatch = client(api, "cloudwatch", session)
    assert cloudwatch.meta.service_model.resolved_protocol == protocol
    namespace = f"Wire/{protocol}/{uuid.uuid4().hex[:6]}"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "QueueDepth", "Dimensions": [{"Name": "Queue", "Value": f"q{i}"}],
         "Timestamp": now, "Value": float(i), "Unit": "Count"} for i in range(3)])
    pages = list(cloudwatch.get_paginator("list_metrics").paginate(Namespace=namespace))
    assert sorted(dim["Value"] for page in pages for metric in page["Metrics"]
                  for dim in metric["Dimensions"]) == ["q0", "q1", "q2"]
    stats = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName="QueueDepth",
        Dimensions=[{"Name": "Queue", "Value": "q2"}], StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1), Period=60, Statistics=["Maximum", "SampleCount"])
    [point] = stats["Datapoints"]
    assert (point["Maximum"], point["SampleCount"], point["Unit"]) == (2.0, 1.0, "Count")
    data = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "q", "MetricStat": {"Metric": {
            "Namespace": namespace, "MetricName": "QueueDepth",
            "Dimensions": [{"Name": "Queue", "Value": "q1"}]}, "Period": 60, "Stat": "Sum"}}],
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1))
    assert data["MetricDataResults"][0]["Values"] == [1.0]

    alarm = f"deep-{uuid.uuid4().hex[:6]}"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm, Namespace=namespace, MetricName="QueueDepth", Statistic="Maximum",
        Dimensions=[{"Name": "Queue", "Value": "q2"}], Period=60, EvaluationPeriods=1,
        Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
        AlarmActions=["arn:aws:sns:us-east-1:000000000000:ops"])
    cloudwatch.get_waiter("alarm_exists").wait(AlarmNames=[alarm],
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    found = [a for page in cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=alarm) for a in page["MetricAlarms"]]
    assert [(a["AlarmName"], a["Threshold"], a["AlarmActions"]) for a in found] == [
        (alarm, 1.0, ["arn:aws:sns:us-east-1:000000000000:ops"])]
    assert found[0]["StateValue"] in ("INSUFFICIENT_DATA", "OK", "ALARM")
    cloudwatch.delete_alarms(AlarmNames=[alarm])
    assert cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"] == []

    with pytest.raises(cloudwatch.exceptions.ResourceNotFound):
        cloudwatch.delete_alarms(AlarmNames=[alarm])
    with pytest.raises(cloudwatch.exceptions.InvalidParameterValueException):
        cloudwatch.put_metric_data(Namespace="AWS/Mine",
                                   MetricData=[{"MetricName": "m", "Value": 1.0}])
    with pytest.raises(cloudwatch.exceptions.InvalidParameterCombinationException):
        cloudwatch.describe_alarms(AlarmNames=[alarm], AlarmNamePrefix="x")


# -- Application Auto Scaling --------------------------------------------------------------------

def test_a_target_tracking_policy_on_a_local_endpoint(api: ApiEndpoint, endpoint: str) -> None:
    scaling, cloudwatch = client(api, "application-autoscaling"), client(api, "cloudwatch")
    resource = f"endpoint/{endpoint}/variant/{VARIANT}"
    target = {"ServiceNamespace": "sagemaker", "ResourceId": resource,
              "ScalableDimension": DIMENSION}
    # a minimum above the endpoint's one instance: the runner scales it out to the minimum
    registered = scaling.register_scalable_target(**target, MinCapacity=2, MaxCapacity=3)
    assert registered["ScalableTargetARN"].startswith("arn:aws:application-autoscaling:")
    [described] = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource])["ScalableTargets"]
    assert (described["MinCapacity"], described["MaxCapacity"]) == (2, 3)
    assert isinstance(described["CreationTime"], datetime)
    deadline = time.monotonic() + 60
    done: list[dict[str, Any]] = []
    while not done and time.monotonic() < deadline:
        done = [a for page in scaling.get_paginator("describe_scaling_activities").paginate(
            ServiceNamespace="sagemaker", ResourceId=resource)
            for a in page["ScalingActivities"] if a["StatusCode"] == "Successful"]
        time.sleep(0.2)
    assert done, "no scaling activity to the minimum capacity"
    assert done[0]["ResourceId"] == resource and isinstance(done[0]["StartTime"], datetime)
    assert "minimum capacity" in done[0]["Cause"]
    assert client(api, "sagemaker").describe_endpoint(EndpointName=endpoint)[
        "ProductionVariants"][0]["DesiredInstanceCount"] == 2

    policy = scaling.put_scaling_policy(
        PolicyName="per-instance", PolicyType="TargetTrackingScaling", **target,
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 70.0, "ScaleInCooldown": 300, "ScaleOutCooldown": 60,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    assert policy["PolicyARN"].startswith("arn:aws:autoscaling:")
    alarm_names = [alarm["AlarmName"] for alarm in policy["Alarms"]]
    assert len(alarm_names) == 2
    # the policy's alarms are CloudWatch alarms, as the service makes them
    alarms = cloudwatch.describe_alarms(AlarmNames=alarm_names)["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in alarms) == sorted(alarm_names)
    assert {a["MetricName"] for a in alarms} == {"InvocationsPerInstance"}

    step = scaling.put_scaling_policy(
        PolicyName="steps", PolicyType="StepScaling", **target,
        StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity", "Cooldown": 60,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}]})
    assert step["PolicyARN"].endswith("policyName/steps")
    policies = [p for page in scaling.get_paginator("describe_scaling_policies").paginate(
        ServiceNamespace="sagemaker", ResourceId=resource, PaginationConfig={"PageSize": 1})
        for p in page["ScalingPolicies"]]
    assert sorted(p["PolicyName"] for p in policies) == ["per-instance", "steps"]
    tracking = next(p for p in policies if p["PolicyName"] == "per-instance")
    assert tracking["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 70.0
    scaling.delete_scaling_policy(PolicyName="steps", **target)
    with pytest.raises(scaling.exceptions.ObjectNotFoundException):
        scaling.delete_scaling_policy(PolicyName="steps", **target)
    with pytest.raises(scaling.exceptions.ValidationException):
        scaling.register_scalable_target(**target, MinCapacity=4, MaxCapacity=2)
    with pytest.raises(scaling.exceptions.ValidationException):
        scaling.put_scaling_policy(PolicyName="p", PolicyType="TargetTrackingScaling",
                                   ServiceNamespace="sagemaker",
                                   ResourceId="endpoint/none/variant/none",
                                   ScalableDimension="ecs:service:DesiredCount",
                                   TargetTrackingScalingPolicyConfiguration={
                                       "TargetValue": 1.0})

    scaling.deregister_scalable_target(**target)
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker",
                                             ResourceIds=[resource])["ScalableTargets"] == []
    # deregistering removed the policies and their alarms
    assert cloudwatch.describe_alarms(AlarmNames=alarm_names)["MetricAlarms"] == []
    with pytest.raises(scaling.exceptions.ObjectNotFoundException):
        scaling.deregister_scalable_target(**target)


# -- the AWS CLI ---------------------------------------------------------------------------------

def _aws(api: ApiEndpoint, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    env |= {"AWS_ACCESS_KEY_ID": api.access_key_id,
            "AWS_SECRET_ACCESS_KEY": api.secret_access_key, "AWS_DEFAULT_REGION": api.region}
    return subprocess.run([str(BIN / "aws"), *args, "--endpoint-url", api.url], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_aws_cli_reaches_both_services(api: ApiEndpoint) -> None:
    namespace = f"Cli/{uuid.uuid4().hex[:6]}"
    put = _aws(api, "cloudwatch", "put-metric-data", "--namespace", namespace,
               "--metric-name", "Hits", "--value", "5", "--unit", "Count")
    assert put.returncode == 0, put.stderr
    listed = _aws(api, "cloudwatch", "list-metrics", "--namespace", namespace)
    assert listed.returncode == 0, listed.stderr
    assert [m["MetricName"] for m in json.loads(listed.stdout)["Metrics"]] == ["Hits"]
    missing = _aws(api, "cloudwatch", "delete-alarms", "--alarm-names", "none-such")
    assert missing.returncode == 255 and "ResourceNotFound" in missing.stderr
    targets = _aws(api, "application-autoscaling", "describe-scalable-targets",
                   "--service-namespace", "sagemaker")
    assert targets.returncode == 0, targets.stderr
    assert "ScalableTargets" in json.loads(targets.stdout)
    gone = _aws(api, "application-autoscaling", "deregister-scalable-target",
                "--service-namespace", "sagemaker", "--resource-id",
                "endpoint/none/variant/none", "--scalable-dimension", DIMENSION)
    assert gone.returncode == 255 and "ObjectNotFoundException" in gone.stderr
