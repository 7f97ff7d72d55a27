"""TrainingJobSpec.from_request: what local mode accepts beyond the API model, and its values."""

from __future__ import annotations

from typing import Any

import pytest

from local_mode.errors import ValidationException
from local_mode.training.spec import TrainingJobSpec


def _request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "TrainingJobName": "job",
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "file:///tmp/out"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 2},
    }
    body.update(changes)
    return body


def _channel(name: str = "train", **extra: Any) -> dict[str, Any]:
    source = {"S3DataType": "S3Prefix", "S3Uri": "file:///data"}
    source.update({k: v for k, v in extra.items() if k.startswith("S3") or k == "AttributeNames"})
    return {"ChannelName": name, "DataSource": {"S3DataSource": source},
            **{k: v for k, v in extra.items() if not (k.startswith("S3") or
                                                      k == "AttributeNames")}}


def test_defaults_and_values() -> None:
    spec = TrainingJobSpec.from_request(_request(
        InputDataConfig=[_channel(InputMode="Pipe", RecordWrapperType="RecordIO",
                                  CompressionType="Gzip", ShuffleConfig={"Seed": 7},
                                  S3DataDistributionType="ShardedByS3Key",
                                  ContentType="application/x-recordio")],
        HyperParameters={"a": "1"}, Environment={"E": "x"},
        CheckpointConfig={"S3Uri": "file:///ckpt", "LocalPath": "/opt/ml/checkpoints/x"},
        StoppingCondition={"MaxRuntimeInSeconds": 5}))
    assert spec.instance_count == 2 and spec.instance_type == "local"
    assert spec.max_runtime_seconds == 5 and spec.max_wait_seconds is None
    (channel,) = spec.channels
    assert channel.config_entry() == {
        "TrainingInputMode": "Pipe", "S3DistributionType": "ShardedByS3Key",
        "RecordWrapperType": "RecordIO", "ContentType": "application/x-recordio",
        "CompressionType": "Gzip"}
    assert channel.shuffle_seed == 7
    assert spec.checkpoint_local_path == "/opt/ml/checkpoints/x"


def test_the_algorithm_input_mode_is_the_channel_default() -> None:
    body = _request(InputDataConfig=[_channel()])
    body["AlgorithmSpecification"]["TrainingInputMode"] = "Pipe"
    assert TrainingJobSpec.from_request(body).channels[0].input_mode == "Pipe"


@pytest.mark.parametrize(("changes", "field"), [
    ({"AlgorithmSpecification": {"AlgorithmName": "market", "TrainingInputMode": "File"}},
     "AlgorithmName"),
    ({"AlgorithmSpecification": {"TrainingInputMode": "File"}}, "TrainingImage"),
    ({"InputDataConfig": [_channel(), _channel()]}, "unique"),
    ({"InputDataConfig": [_channel(S3DataType="AugmentedManifestFile")]}, "Pipe"),
    ({"InputDataConfig": [{"ChannelName": "fs", "DataSource": {"FileSystemDataSource": {}}}]},
     "InputDataConfig[0].DataSource.S3DataSource"),
    ({"InputDataConfig": [_channel(S3Uri="http://example/x")]},
     "InputDataConfig[0].DataSource.S3DataSource.S3Uri"),
    ({"OutputDataConfig": {"S3OutputPath": "file://relative/out"}},
     "OutputDataConfig.S3OutputPath"),
    ({"CheckpointConfig": {"S3Uri": "s3://"}}, "CheckpointConfig.S3Uri"),
    ({"ResourceConfig": {"InstanceGroups": [{"InstanceType": "local"}]}}, "InstanceGroups"),
    ({"EnableManagedSpotTraining": True}, "MaxWaitTimeInSeconds"),
    ({"EnableManagedSpotTraining": True,
      "StoppingCondition": {"MaxRuntimeInSeconds": 10, "MaxWaitTimeInSeconds": 5}},
     "MaxWaitTimeInSeconds must be >= MaxRuntimeInSeconds"),
])
def test_what_cannot_run_locally_is_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationException) as caught:
        TrainingJobSpec.from_request(_request(**changes))
    assert field in caught.value.message
