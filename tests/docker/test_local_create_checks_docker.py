"""On the Docker backend an image the engine does not have is refused at create time, naming the
field, for models and transform jobs as for training jobs (local mode never pulls). No container
is started."""

from __future__ import annotations

from pathlib import Path

import pytest

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
