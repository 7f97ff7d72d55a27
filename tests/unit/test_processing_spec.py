"""local_mode.processing.spec: the service's own rules for CreateProcessingJob, each failing with
the member's path; hypothesis over LocalPaths (the parser that guards the container's tree)."""

from __future__ import annotations

import posixpath
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_mode.errors import ValidationException
from local_mode.processing.spec import PROCESSING_ROOT, ProcessingJobSpec


def _request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ProcessingJobName": "p",
        "RoleArn": "arn:aws:iam::000000000000:role/r",
        "AppSpecification": {"ImageUri": "img:1"},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 2,
                                                  "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 1}},
        "ProcessingInputs": [{"InputName": "raw", "S3Input": {
            "S3Uri": "s3://b/raw", "LocalPath": "/opt/ml/processing/input/raw",
            "S3DataType": "S3Prefix"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": "s3://b/out", "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "Continuous"}}]},
    }
    body.update(changes)
    return body


def test_a_full_request_becomes_typed_values() -> None:
    spec = ProcessingJobSpec.from_request(_request(
        AppSpecification={"ImageUri": "img:1", "ContainerEntrypoint": ["python3", "x.py"],
                          "ContainerArguments": ["--n", "3"]},
        Environment={"A": "1"}, StoppingCondition={"MaxRuntimeInSeconds": 60}))
    assert spec.image == "img:1" and spec.instance_count == 2
    assert spec.entrypoint == ("python3", "x.py") and spec.arguments == ("--n", "3")
    assert spec.environment == {"A": "1"} and spec.max_runtime_seconds == 60
    (raw,) = spec.inputs
    assert (raw.name, raw.uri, raw.input_mode, raw.distribution, raw.compression) == \
        ("raw", "s3://b/raw", "File", "FullyReplicated", "None")
    (out,) = spec.outputs
    assert out.continuous and out.local_path == "/opt/ml/processing/output"
    assert spec.local_paths == ("/opt/ml/processing/input/raw", "/opt/ml/processing/output")


def test_defaults_without_inputs_outputs_or_command() -> None:
    spec = ProcessingJobSpec.from_request(_request(ProcessingInputs=[],
                                                   ProcessingOutputConfig={"Outputs": []}))
    assert spec.inputs == () and spec.outputs == ()
    assert spec.entrypoint is None and spec.arguments is None
    assert spec.max_runtime_seconds is None


def test_app_managed_entries_stage_and_upload_nothing() -> None:
    spec = ProcessingJobSpec.from_request(_request(
        ProcessingInputs=[{"InputName": "own", "AppManaged": True}],
        ProcessingOutputConfig={"Outputs": [{"OutputName": "own", "AppManaged": True}]}))
    assert spec.inputs == () and spec.outputs == ()


@pytest.mark.parametrize(("changes", "message"), [
    ({"ProcessingInputs": [{"InputName": "x"}]}, r"ProcessingInputs\[0\]: give S3Input"),
    ({"ProcessingInputs": [{"InputName": "x", "S3Input": {
        "S3Uri": "s3://b/x", "S3DataType": "S3Prefix"}}]},
     r"ProcessingInputs\[0\]\.S3Input\.LocalPath is required"),
    ({"ProcessingInputs": [{"InputName": "x", "S3Input": {
        "S3Uri": "ftp://b/x", "LocalPath": "/opt/ml/processing/x",
        "S3DataType": "S3Prefix"}}]}, r"ProcessingInputs\[0\]\.S3Input\.S3Uri"),
    ({"ProcessingOutputConfig": {"Outputs": [{"OutputName": "o", "FeatureStoreOutput": {
        "FeatureGroupName": "g"}}]}}, r"Outputs\[0\]\.FeatureStoreOutput cannot run locally"),
    ({"ProcessingOutputConfig": {"Outputs": [{"OutputName": "o"}]}},
     r"Outputs\[0\]: give S3Output"),
    ({"ProcessingOutputConfig": {"Outputs": [
        {"OutputName": "o", "S3Output": {"S3Uri": "s3://b/1", "LocalPath": "/opt/ml/processing/a",
                                         "S3UploadMode": "EndOfJob"}},
        {"OutputName": "o", "S3Output": {"S3Uri": "s3://b/2", "LocalPath": "/opt/ml/processing/b",
                                         "S3UploadMode": "EndOfJob"}}]}},
     "OutputName must be unique"),
    ({"ProcessingOutputConfig": {"Outputs": [
        {"OutputName": "a", "S3Output": {"S3Uri": "s3://b/1", "LocalPath": "/opt/ml/processing/a",
                                         "S3UploadMode": "EndOfJob"}},
        {"OutputName": "b", "S3Output": {"S3Uri": "s3://b/2",
                                         "LocalPath": "/opt/ml/processing/a/",
                                         "S3UploadMode": "EndOfJob"}}]}},
     "LocalPath must be unique"),
    ({"ProcessingOutputConfig": {"Outputs": [
        {"OutputName": "o", "S3Output": {"S3Uri": "s3://b/1",
                                         "LocalPath": "/opt/ml/processing/input/raw",
                                         "S3UploadMode": "EndOfJob"}}]}},
     "the LocalPath of every input and output must be unique"),
])
def test_the_services_rules_name_the_member(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationException, match=message):
        ProcessingJobSpec.from_request(_request(**changes))


PATH_PARTS = st.lists(st.sampled_from(["opt", "ml", "processing", "..", ".", "", "x", "input"]),
                      min_size=0, max_size=6)


@given(absolute=st.booleans(), parts=PATH_PARTS)
def test_a_local_path_is_accepted_exactly_when_it_lies_below_the_processing_root(
        absolute: bool, parts: list[str]) -> None:
    path = ("/" if absolute else "") + "/".join(parts)
    entry = {"InputName": "x", "S3Input": {"S3Uri": "s3://b/x", "LocalPath": path,
                                           "S3DataType": "S3Prefix"}}
    normal = posixpath.normpath(path) if path else ""
    below = normal.startswith(PROCESSING_ROOT + "/")
    try:
        spec = ProcessingJobSpec.from_request(_request(ProcessingInputs=[entry]))
    except ValidationException as exc:
        assert not below, exc
        assert "ProcessingInputs[0].S3Input.LocalPath" in exc.message
    else:
        assert below
        assert spec.inputs[0].local_path == normal
