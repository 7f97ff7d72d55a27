"""What the service refuses at create time, local mode refuses too, naming the field and the URI:
an input prefix with no object (CreateTrainingJob, CreateTransformJob) and a model artifact that
does not exist (CreateModel); on file:// and on S3 (a real S3 server)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from local_mode.errors import ValidationException
from local_mode.sagemaker import SageMakerClient
from tests.integration.local_training_support import channel, request, write_code
from tests.integration.test_local_endpoints_support import settings_for

ARTIFACT = b"model bytes: CreateModel only checks that the object exists"


def _client(tmp_path: Path, environ: dict[str, str] | None = None) -> SageMakerClient:
    return SageMakerClient(settings_for(tmp_path / "state", **(environ or {})),
                           backend="process")


def _training(input_uri: str, tmp_path: Path) -> dict[str, Any]:
    code = write_code(tmp_path / "code", "print('never runs')\n")
    return request("refused", code, (tmp_path / "out").as_uri(),
                   channels=[channel("train", input_uri)])


def _transform(input_uri: str, tmp_path: Path, kind: str = "S3Prefix") -> dict[str, Any]:
    return {
        "TransformJobName": "refused", "ModelName": "m",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": kind,
                                                           "S3Uri": input_uri}}},
        "TransformOutput": {"S3OutputPath": (tmp_path / "out").as_uri()},
        "TransformResources": {"InstanceType": "local", "InstanceCount": 1},
    }


def _refused(call: Any, operation: str, field: str, uri: str) -> str:
    with pytest.raises(ValidationException) as caught:
        call()
    message = str(caught.value)
    assert f"when calling the {operation} operation: {field}" in message
    assert uri in message
    return message


def _empty_prefixes(tmp_path: Path) -> list[str]:
    (tmp_path / "empty").mkdir(parents=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "part-1.csv").write_text("1\n")
    return [(tmp_path / "absent").as_uri(), (tmp_path / "empty").as_uri(),
            (tmp_path / "full" / "other-").as_uri()]


def test_file_prefixes_without_objects(tmp_path: Path) -> None:
    sm = _client(tmp_path)
    field = "InputDataConfig[0].DataSource.S3DataSource.S3Uri"
    for uri in _empty_prefixes(tmp_path):
        message = _refused(lambda u=uri: sm.create_training_job(**_training(u, tmp_path)),
                           "CreateTrainingJob", field, uri)
        assert "No S3 objects found under S3 URL" in message
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(ARTIFACT)
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "i",
                                                     "ModelDataUrl": artifact.as_uri()})
    for uri in _empty_prefixes(tmp_path / "t"):
        _refused(lambda u=uri: sm.create_transform_job(**_transform(u, tmp_path)),
                 "CreateTransformJob", "TransformInput.DataSource.S3DataSource.S3Uri", uri)
    missing = (tmp_path / "absent.manifest").as_uri()
    _refused(lambda: sm.create_transform_job(**_transform(missing, tmp_path, "ManifestFile")),
             "CreateTransformJob", "TransformInput.DataSource.S3DataSource.S3Uri", missing)
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    assert sm.list_transform_jobs()["TransformJobSummaries"] == []


def test_model_artifacts_that_do_not_exist(tmp_path: Path) -> None:
    sm = _client(tmp_path)
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(ARTIFACT)
    missing = (tmp_path / "missing.tar.gz").as_uri()
    _refused(lambda: sm.create_model(ModelName="m", PrimaryContainer={
        "Image": "i", "ModelDataUrl": missing}), "CreateModel", "PrimaryContainer.ModelDataUrl",
        missing)
    _refused(lambda: sm.create_model(ModelName="m", Containers=[
        {"Image": "i", "ModelDataUrl": artifact.as_uri()},
        {"Image": "i", "ModelDataUrl": missing}]), "CreateModel",
        "Containers[1].ModelDataUrl", missing)
    _refused(lambda: sm.create_model(ModelName="m", PrimaryContainer={
        "Image": "i", "ModelDataSource": {"S3DataSource": {
            "S3Uri": missing, "S3DataType": "S3Object", "CompressionType": "Gzip"}}}),
        "CreateModel", "PrimaryContainer.ModelDataSource.S3DataSource.S3Uri", missing)
    assert sm.list_models()["Models"] == []
    # what exists is accepted: a file, a directory (a local convenience), a MultiModel prefix
    sm.create_model(ModelName="file", PrimaryContainer={"Image": "i",
                                                        "ModelDataUrl": artifact.as_uri()})
    sm.create_model(ModelName="dir", PrimaryContainer={"Image": "i",
                                                       "ModelDataUrl": tmp_path.as_uri()})
    sm.create_model(ModelName="mme", PrimaryContainer={
        "Image": "i", "Mode": "MultiModel", "ModelDataUrl": (tmp_path / "models").as_uri()})


def test_s3_prefixes_and_artifacts(tmp_path: Path, s3_environ: dict[str, str],
                                   s3_client: Any, s3_bucket: str) -> None:
    sm = _client(tmp_path, s3_environ)
    s3_client.put_object(Bucket=s3_bucket, Key="data/train/part-1.csv", Body=b"1\n")
    s3_client.put_object(Bucket=s3_bucket, Key="data/folder-only/", Body=b"")
    s3_client.put_object(Bucket=s3_bucket, Key="model/model.tar.gz", Body=ARTIFACT)
    field = "InputDataConfig[0].DataSource.S3DataSource.S3Uri"
    for uri in (f"s3://{s3_bucket}/data/nothing/", f"s3://{s3_bucket}/data/folder-only/",
                f"s3://{s3_bucket}-no-such-bucket/data/"):
        _refused(lambda u=uri: sm.create_training_job(**_training(u, tmp_path)),
                 "CreateTrainingJob", field, uri)
    missing = f"s3://{s3_bucket}/model/absent.tar.gz"
    _refused(lambda: sm.create_model(ModelName="m", PrimaryContainer={
        "Image": "i", "ModelDataUrl": missing}), "CreateModel", "PrimaryContainer.ModelDataUrl",
        missing)
    sm.create_model(ModelName="m", PrimaryContainer={
        "Image": "i", "ModelDataUrl": f"s3://{s3_bucket}/model/model.tar.gz"})
    _refused(lambda: sm.create_transform_job(**_transform(f"s3://{s3_bucket}/none/", tmp_path)),
             "CreateTransformJob", "TransformInput.DataSource.S3DataSource.S3Uri",
             f"s3://{s3_bucket}/none/")


def test_an_s3_store_that_does_not_answer_is_named_as_such(tmp_path: Path,
                                                           s3_environ: dict[str, str]) -> None:
    """No answer (a store that is down, no credentials) is not "no objects": the message says
    what went wrong, so the user fixes the endpoint rather than hunting for missing data."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = {**s3_environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
               "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}"}
    sm = _client(tmp_path, environ)
    uri = "s3://bucket/data/"
    message = _refused(lambda: sm.create_training_job(**_training(uri, tmp_path)),
                       "CreateTrainingJob", "InputDataConfig[0].DataSource.S3DataSource.S3Uri",
                       uri)
    assert "cannot read" in message and "EndpointConnectionError" in message
    assert "No S3 objects found" not in message
