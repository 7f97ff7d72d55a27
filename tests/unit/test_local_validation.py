"""Requests are checked against botocore's API model, naming every bad field (no job runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError

from local_mode.errors import ValidationException
from local_mode.validation import validate_request

ROLE = "arn:aws:iam::000000000000:role/optml-local"


def _request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "TrainingJobName": "good-name-1",
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "file:///tmp/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def test_a_good_request_passes() -> None:
    validate_request("CreateTrainingJob", _request())


@pytest.mark.parametrize("name", ["bad_name", "-leading-dash", "x" * 64, "has space"])
def test_a_job_name_off_the_pattern_is_named(name: str) -> None:
    with pytest.raises(ValidationException) as caught:
        validate_request("CreateTrainingJob", _request(TrainingJobName=name))
    assert "TrainingJobName" in caught.value.message
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_a_missing_role_arn_is_named_as_boto3_does() -> None:
    with pytest.raises(ParamValidationError, match='Missing required parameter in input: "RoleArn"'):
        validate_request("CreateTrainingJob", _request(RoleArn=None))


def test_an_unknown_instance_type_is_named_with_its_path() -> None:
    body = _request(ResourceConfig={"InstanceType": "ml.bogus.big", "InstanceCount": 1,
                                    "VolumeSizeInGB": 1})
    with pytest.raises(ValidationException) as caught:
        validate_request("CreateTrainingJob", body)
    assert "'ml.bogus.big' at 'ResourceConfig.InstanceType'" in caught.value.message


@pytest.mark.parametrize("instance_type", ["local", "local_gpu", "ml.p3.2xlarge"])
def test_local_instance_types_are_accepted(instance_type: str) -> None:
    validate_request("CreateTrainingJob", _request(ResourceConfig={
        "InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 1}))


def test_every_bad_field_is_reported_at_once() -> None:
    body = _request(TrainingJobName="bad_name", HyperParameters={"k": "v" * 3000},
                    AlgorithmSpecification={"TrainingImage": "i", "TrainingInputMode": "Stream"})
    with pytest.raises(ValidationException) as caught:
        validate_request("CreateTrainingJob", body)
    message = caught.value.message
    assert "3 validation error(s)" in message
    assert "TrainingJobName" in message and "HyperParameters.k" in message
    assert "AlgorithmSpecification.TrainingInputMode" in message


def test_file_uris_are_accepted_where_s3_uris_are() -> None:
    validate_request("CreateTrainingJob", _request(InputDataConfig=[{
        "ChannelName": "train",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "file:///data"}}}]))


def test_type_errors_come_from_botocore_with_the_field() -> None:
    with pytest.raises(ParamValidationError, match="ResourceConfig.InstanceCount"):
        validate_request("CreateTrainingJob", _request(ResourceConfig={
            "InstanceType": "local", "InstanceCount": "two", "VolumeSizeInGB": 1}))


def test_the_client_rejects_before_creating_anything(tmp_path: Path) -> None:
    from local_mode.sagemaker import SageMakerClient

    client = SageMakerClient(state_dir=tmp_path / "state", backend="process")
    with pytest.raises(ParamValidationError, match="RoleArn"):
        client.create_training_job(**_request(RoleArn=None))
    with pytest.raises(client.exceptions.ValidationException, match="TrainingJobName"):
        client.create_training_job(**_request(TrainingJobName="under_score"))
    assert client.list_training_jobs()["TrainingJobSummaries"] == []
    assert not (tmp_path / "state" / "training-jobs").exists() or \
        not any((tmp_path / "state" / "training-jobs").iterdir())
    with pytest.raises(client.exceptions.ValidationException, match="not found"):
        client.describe_training_job(TrainingJobName="no-such-job")
    with pytest.raises(ValidationException, match="backend must be auto, docker or process"):
        SageMakerClient(state_dir=tmp_path, backend="kubernetes")
    with pytest.raises(ValueError, match="Waiter does not exist"):
        client.get_waiter("no_such_waiter")
