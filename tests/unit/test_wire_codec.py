"""The JSON protocol codec, judged by botocore itself: what botocore's serializer writes for a
request decodes to the request, and what the codec encodes for a response botocore's parser
reads back as the response."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode.validation import operation_model
from local_mode.wire.codec import SerializationError, decode, encode

aware = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                     timezones=st.just(timezone.utc)).map(lambda d: d.replace(microsecond=
                                                                               d.microsecond // 1000 * 1000))
names = st.from_regex(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,20}", fullmatch=True)


def _wire_body(operation: str, params: dict, service: str = "sagemaker") -> bytes:
    model = operation_model(operation, service)
    request = create_serializer(model.metadata["protocol"]).serialize_to_request(params, model)
    body = request["body"]
    return body if isinstance(body, bytes) else body.encode()


def _parsed(operation: str, wire: dict, service: str = "sagemaker") -> dict:
    model = operation_model(operation, service)
    parser = create_parser(model.metadata["protocol"])
    parsed = parser.parse({"body": json.dumps(wire).encode(), "headers": {},
                           "status_code": 200}, model.output_shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


@settings(max_examples=60, deadline=None)
@given(after=aware, before=aware, name=names, limit=st.integers(1, 100))
def test_botocore_request_decodes_to_the_callers_arguments(after, before, name, limit):
    params = {"CreationTimeAfter": after, "CreationTimeBefore": before, "NameContains": name,
              "MaxResults": limit, "StatusEquals": "Completed"}
    model = operation_model("ListTrainingJobs")
    decoded = decode(json.loads(_wire_body("ListTrainingJobs", params)), model.input_shape)
    assert decoded == params


@settings(max_examples=60, deadline=None)
@given(created=aware, name=names, seconds=st.integers(0, 10**6), hp=st.dictionaries(
    names, st.text(max_size=30), max_size=4))
def test_encoded_response_parses_back_as_botocore_reads_it(created, name, seconds, hp):
    response = {
        "TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:0:training-job/{name}",
        "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed",
        "CreationTime": created, "HyperParameters": hp, "TrainingTimeInSeconds": seconds,
        "SecondaryStatusTransitions": [{"Status": "Starting", "StartTime": created,
                                        "EndTime": created, "StatusMessage": "x"}],
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/k"}, "ResourceConfig": {
            "InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    shape = operation_model("DescribeTrainingJob").output_shape
    wire = encode(response, shape)
    json.dumps(wire)  # JSON-serialisable as is
    assert _parsed("DescribeTrainingJob", wire) == response


def test_blobs_travel_as_base64_both_ways():
    shape = operation_model("PutLogEvents", "logs").input_shape  # no blob; use a synthetic one
    assert shape is not None
    from botocore.model import ShapeResolver

    resolver = ShapeResolver({"B": {"type": "blob"}, "S": {"type": "structure",
                                                           "members": {"b": {"shape": "B"}}}})
    structure = resolver.get_shape_by_name("S")
    assert encode({"b": b"\x00\xff"}, structure) == {"b": "AP8="}
    assert decode({"b": "AP8="}, structure) == {"b": b"\x00\xff"}
    with pytest.raises(SerializationError, match="base64"):
        decode({"b": "not base64!"}, structure)


def test_unknown_members_pass_through_for_validation_to_name():
    shape = operation_model("DescribeTrainingJob").input_shape
    assert decode({"TrainingJobName": "a", "Bogus": 1}, shape) == {
        "TrainingJobName": "a", "Bogus": 1}


@given(st.one_of(st.text(max_size=40), st.floats(allow_nan=True), st.booleans()))
def test_a_timestamp_member_is_a_time_or_a_serialization_error(value):
    shape = operation_model("ListTrainingJobs").input_shape
    try:
        decoded = decode({"CreationTimeAfter": value}, shape)
    except SerializationError as exc:
        assert "CreationTimeAfter" in str(exc)
    else:
        got = decoded["CreationTimeAfter"]
        assert isinstance(got, (datetime, bool)) or got == value


def test_none_members_are_left_out_of_the_wire():
    shape = operation_model("DescribeTrainingJob").output_shape
    assert encode({"TrainingJobName": "a", "FailureReason": None}, shape) == {
        "TrainingJobName": "a"}
