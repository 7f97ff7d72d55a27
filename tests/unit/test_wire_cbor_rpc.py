"""CloudWatch's three protocols and Application Auto Scaling on the wire API, in process.

The codec is checked against botocore's own serializers and parsers (what a boto3 client sends
is what the server reads, what the server writes is what boto3 reads), over values hypothesis
draws from CloudWatch's model. Then a real :class:`WireApp` over real local clients answers real
boto3 clients (botocore prepares, signs and parses; :class:`Bridge` only hands the bytes over):
the default client (awsJson1_0, botocore's pick), and clients whose model lists one protocol
(RPC v2 CBOR or query), as a botocore that picked those would send. Arbitrary and mangled
bodies are answered with the service's errors, never a 500.
"""

from __future__ import annotations

import contextlib
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import botocore.session
import cbor2
import pytest
from botocore.config import Config
from botocore.model import OperationModel, Shape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client, TestResponse

from local_mode.validation import service_model
from local_mode.wire.app import MAX_API_BYTES, Services, WireApp
from local_mode.wire.cbor_rpc import (
    MAX_DEPTH,
    from_cbor,
    from_query,
    query_xml,
    read_cbor,
    to_cbor,
    write_cbor,
)
from local_mode.wire.codec import SerializationError
from tests.unit.test_wire_app import (
    CREDS,
    ENDPOINT,
    REGION,
    Bridge,
    build_app,
    build_services,
    send,
    signed_headers,
)

CLOUDWATCH = service_model("cloudwatch")
PREFIX = CLOUDWATCH.metadata["targetPrefix"]
RPC_PATH = f"/service/{PREFIX}/operation/"
CBOR_HEADERS = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor",
                "Accept": "application/cbor"}
SIGNING = "monitoring"
OPERATIONS = ("PutMetricData", "GetMetricStatistics", "GetMetricData", "ListMetrics",
              "PutMetricAlarm", "DescribeAlarms", "DeleteAlarms", "SetAlarmState",
              "DescribeAlarmsForMetric")


# -- boto3 clients that speak one protocol -------------------------------------------------------

def protocol_session(protocol: str, root: Path) -> boto3.session.Session:
    """A boto3 session whose ``cloudwatch`` model lists only ``protocol`` (written to a data
    path of its own, as botocore loads custom models), so an unchanged client speaks it."""
    session = botocore.session.Session()
    loader = session.get_component("data_loader")
    model = loader.load_service_model("cloudwatch", "service-2")
    model["metadata"]["protocols"] = [protocol]
    model["metadata"]["protocol"] = protocol
    folder = root / protocol
    target = folder / "cloudwatch" / model["metadata"]["apiVersion"]
    target.mkdir(parents=True, exist_ok=True)
    (target / "service-2.json").write_text(json.dumps(model))
    loader.search_paths.insert(0, str(folder))
    return boto3.session.Session(botocore_session=session)


def bridged(web: Client, service: str, session: Any = None, **config: Any) -> Any:
    client = (session or boto3.session.Session()).client(
        service, endpoint_url=ENDPOINT, region_name=REGION,
        aws_access_key_id=CREDS.access_key_id, aws_secret_access_key=CREDS.secret_access_key,
        config=Config(retries={"total_max_attempts": 1}, **config))
    client.meta.events.register("before-send", Bridge(web))
    return client


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Services:
    return build_services(tmp_path_factory.mktemp("wire-cbor") / "state")


@pytest.fixture(scope="module")
def web(services: Services) -> Client:
    app: WireApp = build_app(services)
    return Client(app)


@pytest.fixture(scope="module", params=["json", "smithy-rpc-v2-cbor", "query"])
def cloudwatch(request: pytest.FixtureRequest, web: Client,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A boto3 ``cloudwatch`` client speaking each protocol (``json`` is the default one)."""
    protocol = request.param
    session = None if protocol == "json" else \
        protocol_session(protocol, tmp_path_factory.mktemp("models"))
    client = bridged(web, "cloudwatch", session)
    assert client.meta.service_model.resolved_protocol == protocol
    yield client


# -- the codec against botocore's own serializers and parsers ------------------------------------

def _strategy(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of ``shape`` as boto3 takes and gives them (timestamps to the millisecond, floats
    a 32-bit float holds where the shape is ``float``)."""
    kind = shape.type_name
    if kind == "structure":
        members = {name: _strategy(member, depth + 1) for name, member in shape.members.items()
                   if depth < 10}
        if shape.is_tagged_union:  # exactly one member set
            return st.one_of([value.map(lambda v, n=name: {n: v})
                              for name, value in members.items()])
        drawn = st.fixed_dictionaries({}, optional=members)
        # the query protocol writes nothing for an empty structure: only the request is empty
        return drawn if depth == 0 or not members else drawn.filter(bool)
    if kind == "list":
        return st.lists(_strategy(shape.member, depth + 1), max_size=2)
    if kind == "map":
        # (nor for an empty map)
        return st.dictionaries(_text(shape.key), _strategy(shape.value, depth + 1),
                               min_size=1, max_size=2)
    if kind == "string":
        enum = shape.enum
        return st.sampled_from(enum) if enum else _text(shape)
    if kind in ("integer", "long"):
        return st.integers(-(2 ** 31), 2 ** 31 - 1)
    if kind in ("double", "float"):
        return st.floats(allow_nan=False, allow_infinity=False,
                         width=32 if kind == "float" else 64)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1),
                            timezones=st.just(timezone.utc)).map(
            lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
    if kind == "blob":
        return st.binary(max_size=16)
    raise AssertionError(f"no strategy for {kind}")


def _text(_shape: Shape) -> st.SearchStrategy[str]:
    # what XML 1.0 can carry as text (no control characters, no lone surrogates)
    return st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8)


def _normal(value: Any, shape: Shape) -> Any:
    """``value`` compared as the protocols keep it: no empty structures (the query protocol
    writes nothing for them), timestamps as epoch milliseconds."""
    kind = shape.type_name
    if kind == "structure":
        kept = {name: _normal(item, shape.members[name]) for name, item in value.items()}
        return {name: item for name, item in kept.items()
                if not (shape.members[name].type_name == "structure" and item == {})}
    if kind == "list":
        return [_normal(item, shape.member) for item in value]
    if kind == "map":
        return {key: _normal(item, shape.value) for key, item in value.items()}
    if kind == "timestamp":
        return round(value.timestamp() * 1000)
    return value


def _operation(name: str) -> OperationModel:
    return CLOUDWATCH.operation_model(name)


@st.composite
def _requests(draw: st.DrawFn) -> tuple[OperationModel, dict[str, Any]]:
    operation = _operation(draw(st.sampled_from(OPERATIONS)))
    return operation, draw(_strategy(operation.input_shape))


@st.composite
def _responses(draw: st.DrawFn) -> tuple[OperationModel, dict[str, Any]]:
    operation = _operation(draw(st.sampled_from(
        [name for name in OPERATIONS if _operation(name).output_shape is not None])))
    return operation, draw(_strategy(operation.output_shape))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests())
def test_what_botocore_serializes_in_cbor_reads_back(drawn: tuple[OperationModel, Any]) -> None:
    operation, request = drawn
    body = create_serializer("smithy-rpc-v2-cbor", include_validation=False) \
        .serialize_to_request(request, operation)["body"]
    read = from_cbor(read_cbor(body), operation.input_shape)
    assert _normal(read, operation.input_shape) == _normal(request, operation.input_shape)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests())
def test_what_botocore_serializes_as_a_query_reads_back(
        drawn: tuple[OperationModel, Any]) -> None:
    operation, request = drawn
    serialized = create_serializer("query", include_validation=False) \
        .serialize_to_request(request, operation)
    form = dict(serialized["body"])
    assert form.pop("Action") == operation.name
    form.pop("Version")
    read = from_query({k: str(v) for k, v in form.items()}, operation.input_shape)
    assert _normal(read, operation.input_shape) == _normal(request, operation.input_shape)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_responses())
def test_what_the_server_writes_botocore_parses(drawn: tuple[OperationModel, Any]) -> None:
    operation, result = drawn
    shape = operation.output_shape
    cbor = create_parser("smithy-rpc-v2-cbor").parse(
        {"status_code": 200, "headers": {}, "body": write_cbor(to_cbor(result, shape))}, shape)
    xml = create_parser("query").parse(
        {"status_code": 200, "headers": {},
         "body": query_xml(operation.name, "urn:x", result, shape, "r-1").encode()}, shape)
    for parsed in (cbor, xml):
        parsed.pop("ResponseMetadata", None)
        assert _normal(parsed, shape) == _normal(result, shape)


def test_the_codec_keeps_what_rpc_v2_has() -> None:
    stamp = datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=timezone.utc)
    body = write_cbor({"a": [1, -2, 2 ** 40, 1.5, True, None, b"\x00\xff", "é"], "t": stamp})
    assert body.count(b"\xc1") == 1  # tag 1, epoch seconds
    assert read_cbor(body) == {"a": [1, -2, 2 ** 40, 1.5, True, None, b"\x00\xff", "é"],
                               "t": stamp}
    # indefinite-length items and half floats are CBOR other SDKs may send
    assert read_cbor(bytes.fromhex("bf61619f01ff6162f93e00ff")) == {"a": [1], "b": 1.5}
    assert read_cbor(b"") == {}


@pytest.mark.parametrize(("body", "why"), [
    (b"\xa0\x00", "after its CBOR data item"),
    (b"\x80", "must be a CBOR map"),
    (b"\xa1\x01\x02", "not valid CBOR"),                      # an integer key
    (b"\xa1\x61a\xc0\x74" + b"2024-01-01T00:00:00Z", "not valid CBOR"),  # tag 0: a text date
    (b"\xa1\x61a\xd8\x1c\x81\xd8\x1d\x00", "not valid CBOR"),  # shared references: a cycle
    (b"\xa1\x61a\xd9\x01\x02\x80", "not valid CBOR"),          # tag 258: a set
    (b"\xa1\x61a\xd8\x63\x00", "not valid CBOR"),              # an unknown tag
    (b"\xa1\x61a\xf7", "does not use"),                        # undefined
    (b"\xa1\x61a\xe0", "does not use"),                        # a simple value
    (b"\xa1\x61a\x7b" + b"\xff" * 8, "not valid CBOR"),        # a string longer than the body
    (b"\xa1\x61a\x62\xff\xfe", "not valid CBOR"),              # text that is not UTF-8
    (b"\xa1\x61a" + b"\x81" * (MAX_DEPTH + 2) + b"\x00", "not valid CBOR"),
    (b"\xa1\x61a\x9b" + b"\x7f" + b"\xff" * 7, "not valid CBOR"),  # 2**63 items declared
    (b"\xbb\x7f" + b"\xff" * 7, "not valid CBOR"),                  # 2**63 pairs declared
    (b"\xa1\x61a\xc1\xfb\x7f\xf0" + b"\x00" * 6, "not valid CBOR"),   # tag 1 of infinity
    (b"\xa1\x61a\xc1\x1b" + b"\xff" * 8, "not valid CBOR"),         # tag 1 past year 9999
])
def test_bodies_outside_the_data_model_are_serialization_errors(body: bytes, why: str) -> None:
    with pytest.raises(SerializationError, match=why):
        read_cbor(body)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_are_a_request_or_a_serialization_error(body: bytes) -> None:
    try:
        value = read_cbor(body)
    except SerializationError:
        return
    assert isinstance(value, dict)
    for operation in OPERATIONS:  # and walking it by any shape stays typed
        with contextlib.suppress(SerializationError):
            from_cbor(value, _operation(operation).input_shape)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(st.sampled_from("MetricDaember.1NVu"), max_size=24),
                       st.text(max_size=4), max_size=6))
def test_any_query_form_is_a_request_or_a_serialization_error(form: dict[str, str]) -> None:
    try:
        value = from_query(form, _operation("PutMetricData").input_shape)
    except SerializationError:
        return
    assert isinstance(value, dict)


# -- the application: boto3 over each protocol ---------------------------------------------------

def test_metrics_and_alarms_over_each_protocol(cloudwatch: Any) -> None:
    protocol = cloudwatch.meta.service_model.resolved_protocol
    namespace = f"Wire/{protocol}"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}],
         "Timestamp": now, "Values": [1.0, 3.0], "Counts": [1.0, 2.0], "Unit": "Milliseconds"}])
    stats = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName="Latency", Dimensions=[{"Name": "Host", "Value": "a"}],
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1), Period=60,
        Statistics=["SampleCount", "Sum", "Maximum"])
    [point] = stats["Datapoints"]
    assert (point["SampleCount"], point["Sum"], point["Maximum"]) == (3.0, 7.0, 3.0)
    assert point["Timestamp"] == now.replace(second=0)
    assert point["Unit"] == "Milliseconds"
    listed = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    assert listed == [{"Namespace": namespace, "MetricName": "Latency",
                       "Dimensions": [{"Name": "Host", "Value": "a"}]}]
    alarm = f"high-{protocol}"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm, Namespace=namespace, MetricName="Latency", Statistic="Average",
        Dimensions=[{"Name": "Host", "Value": "a"}], Period=60, EvaluationPeriods=2,
        Threshold=2.5, ComparisonOperator="GreaterThanThreshold", ActionsEnabled=False)
    [described] = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    assert described["Threshold"] == 2.5 and described["ActionsEnabled"] is False
    assert described["StateValue"] == "INSUFFICIENT_DATA"
    assert isinstance(described["StateUpdatedTimestamp"], datetime)
    cloudwatch.delete_alarms(AlarmNames=[alarm])
    with pytest.raises(cloudwatch.exceptions.ResourceNotFound) as missing:
        cloudwatch.delete_alarms(AlarmNames=[alarm])
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(cloudwatch.exceptions.InvalidParameterValueException) as reserved:
        cloudwatch.put_metric_data(Namespace="AWS/Mine",
                                   MetricData=[{"MetricName": "m", "Value": 1.0}])
    assert reserved.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "reserved" in reserved.value.response["Error"]["Message"]


def test_a_request_botocore_did_not_check_gets_the_services_validation_error(
        web: Client, tmp_path: Path) -> None:
    for session in (None, protocol_session("smithy-rpc-v2-cbor", tmp_path),
                    protocol_session("query", tmp_path)):
        client = bridged(web, "cloudwatch", session, parameter_validation=False)
        with pytest.raises(client.exceptions.ValidationException) as refused:
            client.get_metric_statistics(Namespace="N", MetricName="M", Period=60)
        assert refused.value.response["Error"]["Code"] == "ValidationError"
        assert "StartTime" in refused.value.response["Error"]["Message"]


def test_application_autoscaling_answers_its_json_protocol(web: Client) -> None:
    scaling = bridged(web, "application-autoscaling")
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"] == []
    with pytest.raises(scaling.exceptions.ObjectNotFoundException):
        scaling.deregister_scalable_target(
            ServiceNamespace="sagemaker", ResourceId="endpoint/none/variant/AllTraffic",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount")
    with pytest.raises(scaling.exceptions.ValidationException):
        scaling.register_scalable_target(
            ServiceNamespace="sagemaker", ResourceId="endpoint/none/variant/AllTraffic",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount", MinCapacity=1,
            MaxCapacity=2)


# -- the application: what no SDK sends ----------------------------------------------------------

def _cbor_post(web: Client, operation: str, body: bytes, service: str = SIGNING,
               headers: dict[str, str] | None = None) -> TestResponse:
    target = RPC_PATH + operation
    wanted = CBOR_HEADERS if headers is None else headers
    return send(web, "POST", target, signed_headers("POST", target, service, body, wanted), body)


def _cbor_error(response: TestResponse) -> tuple[str, str]:
    assert response.headers["Content-Type"] == "application/cbor", response.headers
    assert response.headers["smithy-protocol"] == "rpc-v2-cbor"
    body = cbor2.loads(response.get_data())
    return body["__type"], body["message"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=48) | st.builds(
    lambda data, at, byte: data[:at] + bytes([byte]) + data[at + 1:],
    st.just(bytes.fromhex("a2694e616d657370616365644e2f4e6a4d65747269634e616d65614d")),
    st.integers(0, 27), st.integers(0, 255)))
def test_arbitrary_bodies_are_answered_never_crashed_on(web: Client, body: bytes) -> None:
    answer = _cbor_post(web, "ListMetrics", body)
    assert answer.status_code in (200, 400), answer.get_data()
    if answer.status_code == 400:
        kind, _ = _cbor_error(answer)
        assert kind in ("SerializationException", "ValidationException",
                        "InvalidParameterValueException")
    else:
        assert "Metrics" in cbor2.loads(answer.get_data())


def test_malformed_cbor_is_a_serialization_exception(web: Client) -> None:
    answer = _cbor_post(web, "ListMetrics", b"\xa1\x61")
    assert answer.status_code == 400
    assert _cbor_error(answer)[0] == "SerializationException"
    assert answer.headers["x-amzn-query-error"] == "SerializationException;Sender"


def test_rpc_v2_refusals_are_written_in_cbor(web: Client) -> None:
    unsigned = send(web, "POST", RPC_PATH + "ListMetrics", CBOR_HEADERS, b"\xa0")
    assert unsigned.status_code == 403
    assert _cbor_error(unsigned)[0] == "MissingAuthenticationTokenException"
    wrong = _cbor_post(web, "ListMetrics", b"\xa0", service="sagemaker")
    assert wrong.status_code == 403 and _cbor_error(wrong)[0] == "InvalidSignatureException"
    unknown = _cbor_post(web, "PutDashboard", b"\xa0")
    assert _cbor_error(unknown)[0] == "UnknownOperationException"
    assert "ListMetrics" in _cbor_error(unknown)[1]
    other = send(web, "POST", "/service/Other/operation/Op",
                 signed_headers("POST", "/service/Other/operation/Op", "other", b"\xa0",
                                CBOR_HEADERS), b"\xa0")
    assert _cbor_error(other)[0] == "UnknownOperationException"
    no_protocol = _cbor_post(web, "ListMetrics", b"\xa0",
                             headers={"Content-Type": "application/cbor"})
    assert no_protocol.status_code == 400
    assert "smithy-protocol" in _cbor_error(no_protocol)[1]
    big = b"\xa0" + b"\x00" * MAX_API_BYTES
    too_large = _cbor_post(web, "ListMetrics", big)
    assert too_large.status_code == 413
    assert _cbor_error(too_large)[0] == "SerializationException"


def test_an_s3_request_on_the_rpc_v2_path_stays_s3s(web: Client) -> None:
    target = RPC_PATH + "ListMetrics?uploads"  # S3's CreateMultipartUpload, bucket "service"
    answer = send(web, "POST", target, signed_headers("POST", target, "s3", b""), b"")
    assert answer.headers["Content-Type"] in ("application/xml", "text/xml")
    code = ET.fromstring(answer.get_data()).find(".//Code")
    assert code is not None and code.text == "NoSuchBucket"


def test_query_forms_go_by_their_signature(web: Client) -> None:
    def form(service: str, fields: dict[str, str]) -> TestResponse:
        body = urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return send(web, "POST", "/", signed_headers("POST", "/", service, body, headers), body)

    sts = form("sts", {"Action": "GetCallerIdentity", "Version": "2011-06-15"})
    assert sts.status_code == 200 and b"GetCallerIdentityResult" in sts.get_data()
    listed = form(SIGNING, {"Action": "ListMetrics", "Version": "2010-08-01"})
    assert listed.status_code == 200 and b"<ListMetricsResult>" in listed.get_data()
    unknown = form(SIGNING, {"Action": "PutDashboard", "Version": "2010-08-01"})
    assert unknown.status_code == 400 and b"<Code>InvalidAction</Code>" in unknown.get_data()
    broken = form(SIGNING, {"Action": "PutMetricData", "Namespace": "N",
                            "MetricData.member.x.Value": "1"})
    assert broken.status_code == 400
    assert b"<Code>MalformedQueryString</Code>" in broken.get_data()
    bad_number = form(SIGNING, {"Action": "PutMetricData", "Namespace": "N",
                                "MetricData.member.1.MetricName": "m",
                                "MetricData.member.1.Value": "many"})
    assert b"<Code>MalformedQueryString</Code>" in bad_number.get_data()


def test_json_form_errors_name_the_query_code(web: Client) -> None:
    body = json.dumps({"AlarmNames": ["none"]}).encode()
    headers = {"X-Amz-Target": f"{PREFIX}.DeleteAlarms",
               "Content-Type": "application/x-amz-json-1.0"}
    answer = send(web, "POST", "/", signed_headers("POST", "/", SIGNING, body, headers), body)
    assert answer.status_code == 404
    assert answer.headers["x-amzn-query-error"] == "ResourceNotFound;Sender"
    assert json.loads(answer.get_data())["__type"] == "ResourceNotFound"
    broken = send(web, "POST", "/", signed_headers("POST", "/", SIGNING, b"{", headers), b"{")
    assert broken.status_code == 400
    assert json.loads(broken.get_data())["__type"] == "SerializationException"


def test_nan_and_infinite_values_cross_cbor() -> None:
    shape = _operation("GetMetricData").output_shape
    result = {"MetricDataResults": [{"Id": "q", "Values": [math.inf, -math.inf, 0.5]}]}
    parsed = create_parser("smithy-rpc-v2-cbor").parse(
        {"status_code": 200, "headers": {}, "body": write_cbor(to_cbor(result, shape))}, shape)
    assert parsed["MetricDataResults"][0]["Values"] == [math.inf, -math.inf, 0.5]
