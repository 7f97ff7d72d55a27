"""The response-shape checker names every way a response differs from botocore's output shape."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from botocore.response import StreamingBody

from local_mode.shapes import public_view, response_errors

NOW = datetime.now(timezone.utc)
ARN = "arn:aws:sagemaker:local:000000000000:transform-job/x"
TRANSFORM = {
    "TransformJobName": "x", "TransformJobArn": ARN, "TransformJobStatus": "InProgress",
    "ModelName": "m", "CreationTime": NOW,
    "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                       "S3Uri": "s3://b/in"}}},
    "TransformOutput": {"S3OutputPath": "s3://b/out"},
    "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
}


def test_a_response_on_its_shape_passes() -> None:
    assert response_errors("DescribeTransformJob", {**TRANSFORM, "ResponseMetadata": {}}) == []


def test_every_difference_is_named() -> None:
    bad = {**TRANSFORM, "LastModifiedTime": NOW, "TransformJobStatus": "Bogus",
           "CreationTime": NOW.replace(tzinfo=None),
           "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": "1"}}
    del bad["ModelName"]
    errors = response_errors("DescribeTransformJob", bad)
    assert any(e.startswith("LastModifiedTime: not a member") for e in errors)
    assert any(e.startswith("ModelName: required member") for e in errors)
    assert any("'Bogus' at 'TransformJobStatus'" in e for e in errors)
    assert any(e.startswith("CreationTime: datetime") for e in errors)  # naive: not boto3's
    assert any(e.startswith("TransformResources.InstanceCount: str") for e in errors)
    assert len(errors) == 5


def test_public_view_keeps_only_the_shapes_members() -> None:
    stored = {**TRANSFORM, "LastModifiedTime": NOW, "Backend": "process", "FailureReason": None}
    assert public_view("DescribeTransformJob", stored) == TRANSFORM


def test_a_streamed_payload_must_be_a_streaming_body() -> None:
    body = StreamingBody(io.BytesIO(b"x"), 1)
    assert response_errors("InvokeEndpoint", {"Body": body, "ContentType": "a/b"},
                           "sagemaker-runtime") == []
    errors = response_errors("InvokeEndpoint", {"Body": b"x"}, "sagemaker-runtime")
    assert errors == ["Body: bytes, StreamingBody expected (the streamed payload)"]


def test_an_operation_without_output_takes_nothing_but_metadata() -> None:
    assert response_errors("DeleteModel", {"ResponseMetadata": {}}) == []
    assert response_errors("DeleteModel", {"Deleted": True}) != []
