"""On the Docker backend an image the engine does not have is refused at create time, naming the
field and the image, for training jobs, models and transform jobs alike (local mode never pulls).
Nothing is created and no container is started."""

from __future__ import annotations

from pathlib import Path

import docker as docker_sdk
import pytest

from local_mode.docker_engine import JOB_LABEL
from local_mode.errors import ValidationException
from local_mode.sagemaker import SageMakerClient
from tests.integration.test_local_endpoints_support import settings_for

ABSENT = "optml-test/absent-image:never-built"


@pytest.mark.docker
def test_missing_images_are_refused_at_create(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "state")
    docker = SageMakerClient(settings, backend="docker")
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"x")
    container = {"Image": ABSENT, "ModelDataUrl": artifact.as_uri()}
    with pytest.raises(ValidationException) as caught:
        docker.create_model(ModelName="m", Containers=[container])
    assert f"CreateModel operation: Containers[0].Image: Requested image {ABSENT} not found" in \
        str(caught.value)
    assert docker.list_models()["Models"] == []

    # a model made where images are not checked (the process backend) still cannot transform
    # on Docker: CreateTransformJob names the model's field
    SageMakerClient(settings, backend="process").create_model(ModelName="m",
                                                              PrimaryContainer=container)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("1\n")
    with pytest.raises(ValidationException, match=r"CreateTransformJob operation: ModelName m: "
                                                  r"PrimaryContainer.Image: Requested image"):
        docker.create_transform_job(
            TransformJobName="t", ModelName="m",
            TransformInput={"DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": (tmp_path / "in").as_uri()}}},
            TransformOutput={"S3OutputPath": (tmp_path / "out").as_uri()},
            TransformResources={"InstanceType": "local", "InstanceCount": 1})
    assert docker.list_transform_jobs()["TransformJobSummaries"] == []


@pytest.mark.docker
def test_missing_training_image_is_refused_at_create(
        tmp_path: Path, docker_client: docker_sdk.DockerClient) -> None:
    client = SageMakerClient(settings_for(tmp_path / "state"), backend="docker")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.csv").write_text("1\n")  # data is there: only the image is missing
    name = "missing-image-job"
    with pytest.raises(ValidationException) as caught:
        client.create_training_job(
            TrainingJobName=name, RoleArn="arn:aws:iam::000000000000:role/local",
            AlgorithmSpecification={"TrainingImage": ABSENT, "TrainingInputMode": "File"},
            InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": (tmp_path / "train").as_uri()}}}],
            OutputDataConfig={"S3OutputPath": (tmp_path / "out").as_uri()},
            ResourceConfig={"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 60})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert f"CreateTrainingJob operation: AlgorithmSpecification.TrainingImage: Requested " \
           f"image {ABSENT} not found" in str(caught.value)
    assert client.list_training_jobs()["TrainingJobSummaries"] == []
    assert not (tmp_path / "out").exists()
    selector = {"label": f"{JOB_LABEL}={name}"}
    assert docker_client.containers.list(all=True, filters=selector) == []
    assert docker_client.networks.list(filters=selector) == []
