"""The local ``cloudwatch`` client over a real state directory: every response checked against
botocore's output shapes, its paginators and waiters, the service's errors, and where datums
come from (endpoints, training series, PutMetricData)."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError, WaiterError

from local_mode.cloudwatch import sources
from local_mode.cloudwatch.alarms import evaluate
from local_mode.cloudwatch.client import CloudWatchClient
from local_mode.cloudwatch.datums import (
    ENDPOINT_INSTANCE_NAMESPACE,
    SAGEMAKER_NAMESPACE,
    TRAINING_NAMESPACE,
    Datum,
    DatumWriter,
    dimensions_of,
    endpoint_metrics_file,
)
from local_mode.shapes import response_errors
from local_mode.state import StateStore

NOW = 1_770_000_000.0
ENDPOINT = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]

def metrics_file(store: StateStore, endpoint: str) -> Path:
    """Where the endpoint's runner writes its datums."""
    path = endpoint_metrics_file(store.root, endpoint)
    assert path is not None
    return path


def checked(operation: str, response: dict[str, Any]) -> dict[str, Any]:
    assert response_errors(operation, response, "cloudwatch") == []
    return response


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    """A state directory with an endpoint (its router's datums), a training job (its series)."""
    state = StateStore(tmp_path / "state")
    state.create("endpoints", "ep", {"EndpointName": "ep"}, {})
    dims = dimensions_of({"EndpointName": "ep", "VariantName": "AllTraffic"})
    writer = DatumWriter(metrics_file(state, "ep"))
    writer.write([Datum.of_values(SAGEMAKER_NAMESPACE, "Invocations", dims, NOW - 120 + s, 1,
                                  [1.0] * n) for s, n in ((0, 3), (1, 2), (60, 4))])
    writer.write([Datum.of_values(ENDPOINT_INSTANCE_NAMESPACE, "CPUUtilization", dims,
                                  NOW - 120, 1, [40.0, 60.0], "Percent")])
    writer.close()
    job = state.create("training-jobs", "job", {"TrainingJobName": "job"}, {})
    job.metrics_file.write_text("".join(json.dumps({
        "MetricName": "loss", "Value": v,
        "Timestamp": datetime.fromtimestamp(NOW - 50 + i, timezone.utc).isoformat()}) + "\n"
        for i, v in enumerate([0.8, 0.4, 0.2])) + '{"torn": ')
    return state


@pytest.fixture
def client(store: StateStore) -> CloudWatchClient:
    return CloudWatchClient(state_dir=store.root, clock=lambda: NOW, region_name="eu-west-1",
                            aws_account_id="123456789012")


def test_endpoint_metrics_read_as_the_service_answers(client: CloudWatchClient) -> None:
    response = checked("GetMetricStatistics", client.get_metric_statistics(
        Namespace=SAGEMAKER_NAMESPACE, MetricName="Invocations", Dimensions=ENDPOINT,
        StartTime=datetime.fromtimestamp(NOW - 300, timezone.utc),
        EndTime=datetime.fromtimestamp(NOW, timezone.utc), Period=60, Statistics=["Sum"]))
    assert [(p["Timestamp"].timestamp(), p["Sum"]) for p in response["Datapoints"]] == \
        [(NOW - 120, 5.0), (NOW - 60, 4.0)]
    data = checked("GetMetricData", client.get_metric_data(
        MetricDataQueries=[
            {"Id": "calls", "MetricStat": {"Metric": {"Namespace": SAGEMAKER_NAMESPACE,
             "MetricName": "Invocations", "Dimensions": ENDPOINT}, "Period": 60,
             "Stat": "SampleCount"}},
            {"Id": "cpu", "MetricStat": {"Metric": {"Namespace": ENDPOINT_INSTANCE_NAMESPACE,
             "MetricName": "CPUUtilization", "Dimensions": ENDPOINT}, "Period": 60,
             "Stat": "Average", "Unit": "Percent"}}],
        StartTime=NOW - 300, EndTime=NOW, ScanBy="TimestampAscending"))
    calls, cpu = data["MetricDataResults"]
    assert calls["Values"] == [5.0, 4.0] and cpu["Values"] == [50.0]
    assert cpu["Label"] == "CPUUtilization"


def test_training_series_are_published_per_host(client: CloudWatchClient) -> None:
    response = checked("GetMetricStatistics", client.get_metric_statistics(
        Namespace=TRAINING_NAMESPACE, MetricName="loss",
        Dimensions=[{"Name": "Host", "Value": "job/algo-1"}], StartTime=NOW - 600,
        EndTime=NOW, Period=60, Statistics=["Minimum", "Maximum", "SampleCount"]))
    (point,) = response["Datapoints"]
    assert (point["Minimum"], point["Maximum"], point["SampleCount"]) == (0.2, 0.8, 3.0)


def test_put_metric_data_is_stored_privately_and_read_back(client: CloudWatchClient,
                                                           store: StateStore) -> None:
    checked("PutMetricData", client.put_metric_data(Namespace="MyApp", MetricData=[
        {"MetricName": "Queue", "Value": 3.0, "Timestamp": NOW - 30, "Unit": "Count"},
        {"MetricName": "Queue", "Values": [1.0, 10.0], "Counts": [3.0, 1.0],
         "Timestamp": NOW - 20, "Unit": "Count"},
        {"MetricName": "Queue", "StatisticValues": {"SampleCount": 2, "Sum": 4, "Minimum": 1,
                                                    "Maximum": 3},
         "Timestamp": NOW - 61.5, "StorageResolution": 1, "Unit": "Count"}]))
    path = sources.custom_metrics_file(store.root)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = list(sources.custom_datums(store.root))
    assert [(d.timestamp, d.period) for d in stored] == [(NOW - 60, 60), (NOW - 60, 60),
                                                         (NOW - 62, 1)]
    response = client.get_metric_statistics(
        Namespace="MyApp", MetricName="Queue", StartTime=NOW - 120, EndTime=NOW, Period=60,
        Statistics=["Sum", "SampleCount", "Maximum"], Unit="Count")
    assert [(p["Sum"], p["SampleCount"], p["Maximum"]) for p in response["Datapoints"]] == \
        [(4.0, 2.0, 3.0), (16.0, 5.0, 10.0)]


@pytest.mark.parametrize(("datum", "code"), [
    ({"MetricName": "m"}, "MissingParameter"),
    ({"MetricName": "m", "Value": 1.0, "Values": [1.0]}, "InvalidParameterCombination"),
    ({"MetricName": "m", "Value": float("nan")}, "InvalidParameterValue"),
    ({"MetricName": "m", "Value": 1.0, "Timestamp": NOW - 15 * 86400}, "InvalidParameterValue"),
    ({"MetricName": "m", "Value": 1.0, "StorageResolution": 5}, "InvalidParameterValue"),
    ({"MetricName": "m", "Values": [1.0, 2.0], "Counts": [1.0]}, "InvalidParameterValue"),
])
def test_put_metric_data_refuses_as_the_service(client: CloudWatchClient, store: StateStore,
                                                datum: dict, code: str) -> None:
    with pytest.raises(ClientError) as caught:
        client.put_metric_data(Namespace="MyApp", MetricData=[datum])
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.operation_name == "PutMetricData"
    assert not sources.custom_metrics_file(store.root).exists()


def test_aws_namespaces_are_reserved(client: CloudWatchClient) -> None:
    with pytest.raises(client.exceptions.InvalidParameterValueException, match="reserved"):
        client.put_metric_data(Namespace="AWS/SageMaker",
                               MetricData=[{"MetricName": "m", "Value": 1.0}])


def test_list_metrics_filters_and_pages(client: CloudWatchClient) -> None:
    client.put_metric_data(Namespace="MyApp", MetricData=[
        {"MetricName": f"m{i:03d}", "Value": 1.0, "Timestamp": NOW - 4 * 3600} for i in range(600)])
    everything = checked("ListMetrics", client.list_metrics())
    assert len(everything["Metrics"]) == 500 and "NextToken" in everything
    pages = list(client.get_paginator("list_metrics").paginate())
    names = [(m["Namespace"], m["MetricName"]) for page in pages for m in page["Metrics"]]
    assert len(names) == 603 and len(set(names)) == 603  # 600 + the state's 3
    endpoint = checked("ListMetrics", client.list_metrics(
        Dimensions=[{"Name": "EndpointName", "Value": "ep"}], IncludeLinkedAccounts=True))
    assert sorted(m["MetricName"] for m in endpoint["Metrics"]) == \
        ["CPUUtilization", "Invocations"]
    assert endpoint["OwningAccounts"] == ["123456789012"] * 2
    recent = client.list_metrics(RecentlyActive="PT3H")["Metrics"]
    assert sorted(m["MetricName"] for m in recent) == ["CPUUtilization", "Invocations", "loss"]
    assert client.list_metrics(Namespace=TRAINING_NAMESPACE, MetricName="loss")["Metrics"] == [
        {"Namespace": TRAINING_NAMESPACE, "MetricName": "loss",
         "Dimensions": [{"Name": "Host", "Value": "job/algo-1"}]}]
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.list_metrics(NextToken="not a token")


def test_get_metric_data_pages_through_botocores_paginator(client: CloudWatchClient) -> None:
    pages = list(client.get_paginator("get_metric_data").paginate(
        MetricDataQueries=[{"Id": "calls", "MetricStat": {"Metric": {
            "Namespace": SAGEMAKER_NAMESPACE, "MetricName": "Invocations",
            "Dimensions": ENDPOINT}, "Period": 1, "Stat": "Sum"}}],
        StartTime=NOW - 300, EndTime=NOW, PaginationConfig={"PageSize": 2}))
    assert [[*p["MetricDataResults"][0]["Values"]] for p in pages] == [[4.0, 2.0], [3.0]]
    for page in pages:
        checked("GetMetricData", page)


def test_requests_are_validated_against_botocores_model(client: CloudWatchClient) -> None:
    with pytest.raises(ParamValidationError):
        client.get_metric_statistics(Namespace="x", MetricName="y", StartTime=NOW - 60,
                                     EndTime=NOW, Period=0, Statistics=["Sum"])
    with pytest.raises(TypeError):
        client.list_metrics("positional")
    assert "get_metric_statistics" in client.OPERATIONS
    with pytest.raises(AttributeError, match="does not emulate cloudwatch PutDashboard"):
        client.put_dashboard  # noqa: B018 -- the attribute lookup is what is tested


# -- alarms ----------------------------------------------------------------------------------------
ALARM = {"AlarmName": "busy", "Namespace": SAGEMAKER_NAMESPACE, "MetricName": "Invocations",
         "Dimensions": ENDPOINT, "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 2,
         "DatapointsToAlarm": 1, "Threshold": 4.5, "ComparisonOperator": "GreaterThanThreshold",
         "AlarmActions": ["arn:aws:autoscaling:eu-west-1:123456789012:scalingPolicy:up"],
         "OKActions": ["arn:aws:sns:eu-west-1:123456789012:ok"], "AlarmDescription": "load",
         "Unit": "None", "TreatMissingData": "notBreaching"}


def test_alarms_are_described_as_the_service_describes_them(client: CloudWatchClient,
                                                            store: StateStore) -> None:
    checked("PutMetricAlarm", client.put_metric_alarm(**ALARM))
    client.put_metric_alarm(**ALARM | {"AlarmName": "quiet", "AlarmActions": [],
                                       "OKActions": []})
    (busy,) = checked("DescribeAlarms", client.describe_alarms(AlarmNames=["busy"]))[
        "MetricAlarms"]
    assert busy["AlarmArn"] == "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:busy"
    assert (busy["StateValue"], busy["StateReason"]) == ("INSUFFICIENT_DATA",
                                                         "Unchecked: Initial alarm creation")
    assert "StateReasonData" not in busy and busy["AlarmDescription"] == "load"
    assert busy["Dimensions"] == ENDPOINT and busy["DatapointsToAlarm"] == 1

    # what the endpoint runner does once a period: evaluate and record
    alarm = client.alarms.get("busy")
    assert alarm is not None
    state = evaluate(alarm, sources.datums(store, SAGEMAKER_NAMESPACE, alarm.dimensions), NOW,
                     1.0)
    client.alarms.set_state("busy", state)
    (busy,) = checked("DescribeAlarms", client.describe_alarms(StateValue="ALARM"))[
        "MetricAlarms"]
    assert busy["StateReason"] == (
        "Threshold Crossed: 1 out of the last 2 datapoints [5.0 (02/02/26 02:38:00)] was "
        "greater than the threshold (4.5) (minimum 1 datapoint for OK -> ALARM transition).")
    assert json.loads(busy["StateReasonData"])["recentDatapoints"] == [5.0, 4.0]

    by_action = client.describe_alarms(ActionPrefix="arn:aws:autoscaling:")["MetricAlarms"]
    assert [a["AlarmName"] for a in by_action] == ["busy"]
    assert [a["AlarmName"] for a in client.describe_alarms(AlarmNamePrefix="qu")[
        "MetricAlarms"]] == ["quiet"]
    assert checked("DescribeAlarms", client.describe_alarms(AlarmTypes=["CompositeAlarm"])) \
        ["CompositeAlarms"] == []
    for_metric = checked("DescribeAlarmsForMetric", client.describe_alarms_for_metric(
        Namespace=SAGEMAKER_NAMESPACE, MetricName="Invocations", Dimensions=ENDPOINT,
        Statistic="Sum", Period=60))
    assert [a["AlarmName"] for a in for_metric["MetricAlarms"]] == ["busy", "quiet"]
    assert client.describe_alarms_for_metric(Namespace=SAGEMAKER_NAMESPACE,
                                             MetricName="Invocations",
                                             Statistic="Average")["MetricAlarms"] == []


def test_describe_alarms_pages(client: CloudWatchClient) -> None:
    for i in range(7):
        client.put_metric_alarm(**ALARM | {"AlarmName": f"a{i}"})
    pages = list(client.get_paginator("describe_alarms").paginate(
        PaginationConfig={"PageSize": 3}))
    assert [[a["AlarmName"] for a in p["MetricAlarms"]] for p in pages] == \
        [["a0", "a1", "a2"], ["a3", "a4", "a5"], ["a6"]]
    with pytest.raises(client.exceptions.InvalidNextToken):
        client.describe_alarms(NextToken="@@")
    with pytest.raises(client.exceptions.InvalidParameterCombinationException):
        client.describe_alarms(AlarmNames=["a0"], AlarmNamePrefix="a")


def test_set_alarm_state_and_delete(client: CloudWatchClient) -> None:
    client.put_metric_alarm(**ALARM)
    checked("SetAlarmState", client.set_alarm_state(
        AlarmName="busy", StateValue="ALARM", StateReason="testing",
        StateReasonData='{"why": "drill"}'))
    (busy,) = client.describe_alarms()["MetricAlarms"]
    assert (busy["StateValue"], busy["StateReason"], busy["StateReasonData"]) == \
        ("ALARM", "testing", '{"why":"drill"}')
    with pytest.raises(client.exceptions.InvalidFormatFault) as caught:
        client.set_alarm_state(AlarmName="busy", StateValue="OK", StateReason="x",
                               StateReasonData="{not json")
    assert caught.value.response["Error"]["Code"] == "InvalidFormat"
    with pytest.raises(client.exceptions.ResourceNotFound):
        client.set_alarm_state(AlarmName="ghost", StateValue="OK", StateReason="x")
    with pytest.raises(client.exceptions.ResourceNotFound, match="ghost"):
        client.delete_alarms(AlarmNames=["busy", "ghost"])
    assert client.describe_alarms()["MetricAlarms"]  # nothing deleted
    checked("DeleteAlarms", client.delete_alarms(AlarmNames=["busy"]))
    assert client.describe_alarms()["MetricAlarms"] == []


def test_a_bad_alarm_is_refused_with_the_services_code(client: CloudWatchClient) -> None:
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.put_metric_alarm(**ALARM | {"Period": 45})
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert caught.value.operation_name == "PutMetricAlarm"


def test_botocores_waiters(client: CloudWatchClient) -> None:
    assert {"alarm_exists", "composite_alarm_exists"} <= set(client.waiter_names)
    with pytest.raises(WaiterError):
        client.get_waiter("alarm_exists").wait(AlarmNames=["busy"],
                                               WaiterConfig={"Delay": 0.01, "MaxAttempts": 2})
    client.put_metric_alarm(**ALARM)
    client.get_waiter("alarm_exists").wait(AlarmNames=["busy"])
    with pytest.raises(WaiterError):  # local mode has no composite alarm
        client.get_waiter("composite_alarm_exists").wait(
            AlarmNames=["busy"], AlarmTypes=["CompositeAlarm"],
            WaiterConfig={"Delay": 0.01, "MaxAttempts": 2})


def test_exceptions_carry_the_codes_the_service_sends(client: CloudWatchClient) -> None:
    assert client.exceptions.InvalidParameterValueException.code == "InvalidParameterValue"
    assert client.exceptions.from_code("InvalidParameterValue") is \
        client.exceptions.InvalidParameterValueException
    assert client.exceptions.ValidationException.code == "ValidationError"
    assert client.exceptions.from_code("NoSuchCode") is ClientError


# -- sources -----------------------------------------------------------------------------------------
def test_a_query_reads_only_the_files_it_can_need(store: StateStore) -> None:
    store.create("endpoints", "other", {"EndpointName": "other"}, {})
    writer = DatumWriter(metrics_file(store, "other"))
    writer.write([Datum.of_values(SAGEMAKER_NAMESPACE, "Invocations",
                                  dimensions_of({"EndpointName": "other"}), NOW, 1, [1.0])])
    writer.close()
    ep = dimensions_of({"EndpointName": "ep", "VariantName": "AllTraffic"})
    assert {dict(d.dimensions)["EndpointName"]
            for d in sources.datums(store, SAGEMAKER_NAMESPACE, ep)} == {"ep"}
    assert {d.namespace for d in sources.datums(store, TRAINING_NAMESPACE)} == \
        {TRAINING_NAMESPACE}
    assert len({dict(d.dimensions).get("EndpointName") for d in sources.datums(store)}) == 3
    assert list(sources.datums(store, SAGEMAKER_NAMESPACE,
                               dimensions_of({"EndpointName": "../../etc"}))) == []


def test_a_deleted_endpoints_metrics_stay_readable(store: StateStore) -> None:
    """CloudWatch keeps an endpoint's metrics after DeleteEndpoint; so does local mode."""
    ep = dimensions_of({"EndpointName": "ep", "VariantName": "AllTraffic"})
    before = list(sources.datums(store, SAGEMAKER_NAMESPACE, ep))
    store.delete("endpoints", "ep")
    assert before and list(sources.datums(store, SAGEMAKER_NAMESPACE, ep)) == before
