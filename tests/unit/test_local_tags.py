"""AddTags, ListTags and DeleteTags on the local ``sagemaker`` client, by ARN, as the service
answers them: a resource's tags start as its create request's, change only through these calls,
and never show in its Describe."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_mode import runners
from local_mode.sagemaker import SageMakerClient
from local_mode.shapes import response_errors
from toolkit.settings import Settings

ROLE = "arn:aws:iam::000000000000:role/optml-local"
PREFIX = "arn:aws:sagemaker:us-east-1:000000000000"


def _tags(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in pairs.items()]


def _as_dict(tags: list[dict[str, str]]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}


@pytest.fixture()
def sm(tmp_path: Path) -> SageMakerClient:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SAGEMAKER_", "OPTML_"))}
    return SageMakerClient(Settings.from_environ(env | {"OPTML_LOCAL_STOP_GRACE_SECONDS": "2"}),
                           state_dir=tmp_path / "state", backend="process",
                           region_name="us-east-1")


def _model(sm: SageMakerClient, tmp_path: Path, name: str, **extra: Any) -> str:
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"CreateModel only checks that it exists")
    arn: str = sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "img", "ModelDataUrl": artifact.as_uri()}, **extra)["ModelArn"]
    return arn


def _list(sm: SageMakerClient, arn: str) -> dict[str, str]:
    """Every tag, page by page as the SageMaker SDK asks (MaxResults=50, the minimum)."""
    tags: list[dict[str, str]] = []
    page: dict[str, Any] = {}
    while True:
        listed = sm.list_tags(ResourceArn=arn, MaxResults=50, **page)
        assert response_errors("ListTags", listed) == []
        tags += listed["Tags"]
        if "NextToken" not in listed:
            return _as_dict(tags)
        page = {"NextToken": listed["NextToken"]}


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_tags_given_at_create_show_in_list_tags(sm: SageMakerClient, tmp_path: Path) -> None:
    arn = _model(sm, tmp_path, "tagged", Tags=_tags({"team": "a", "empty": ""}))
    assert _list(sm, arn) == {"team": "a", "empty": ""}
    untagged = _model(sm, tmp_path, "untagged")
    assert _list(sm, untagged) == {}


def test_add_overwrites_and_extends_and_delete_removes(sm: SageMakerClient,
                                                       tmp_path: Path) -> None:
    arn = _model(sm, tmp_path, "m", Tags=_tags({"team": "a", "stage": "dev"}))
    added = sm.add_tags(ResourceArn=arn, Tags=_tags({"team": "b", "owner": "me"}))
    assert response_errors("AddTags", added) == []
    assert _as_dict(added["Tags"]) == {"team": "b", "stage": "dev", "owner": "me"}
    assert _list(sm, arn) == {"team": "b", "stage": "dev", "owner": "me"}

    deleted = sm.delete_tags(ResourceArn=arn, TagKeys=["stage", "never-there"])
    assert response_errors("DeleteTags", deleted) == []
    assert _list(sm, arn) == {"team": "b", "owner": "me"}
    sm.delete_tags(ResourceArn=arn, TagKeys=["team", "owner"])
    assert _list(sm, arn) == {}  # all gone: not back to the create request's
    described = sm.describe_model(ModelName="m")
    assert "Tags" not in described and response_errors("DescribeModel", described) == []


def test_arns_carry_the_name_lower_cased(sm: SageMakerClient, tmp_path: Path) -> None:
    arn = _model(sm, tmp_path, "MixedCase-Model", Tags=_tags({"k": "v"}))
    assert arn == f"{PREFIX}:model/mixedcase-model"
    assert _list(sm, arn) == {"k": "v"}
    assert _list(sm, f"{PREFIX}:model/MixedCase-Model") == {"k": "v"}
    sm.add_tags(ResourceArn=arn, Tags=_tags({"k2": "v2"}))
    assert _list(sm, arn) == {"k": "v", "k2": "v2"}


def test_list_tags_answers_every_tag_on_one_page(sm: SageMakerClient, tmp_path: Path) -> None:
    """A resource has at most 50 tags and ListTags' MaxResults is at least 50: one page holds
    them all, so a caller that asks without MaxResults (and reads no NextToken) sees them all.
    Local mode must not page them by the 10 of the List* operations that document it."""
    pairs = {f"key-{i:02d}": str(i) for i in range(50)}
    arn = _model(sm, tmp_path, "paged", Tags=_tags(pairs))
    listed = sm.list_tags(ResourceArn=arn)
    assert "NextToken" not in listed and _as_dict(listed["Tags"]) == pairs
    pages = list(sm.get_paginator("list_tags").paginate(ResourceArn=arn))
    assert _as_dict([tag for page in pages for tag in page["Tags"]]) == pairs


def test_an_endpoint_config_is_tagged_too(sm: SageMakerClient, tmp_path: Path) -> None:
    _model(sm, tmp_path, "for-config")
    arn = sm.create_endpoint_config(EndpointConfigName="Config-1", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "for-config", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}], Tags=_tags({"a": "1"}))["EndpointConfigArn"]
    assert arn == f"{PREFIX}:endpoint-config/config-1"
    sm.add_tags(ResourceArn=arn, Tags=_tags({"b": "2"}))
    assert _list(sm, arn) == {"a": "1", "b": "2"}


def test_more_than_fifty_tags_are_refused(sm: SageMakerClient, tmp_path: Path) -> None:
    fifty = {f"k{i}": "v" for i in range(50)}
    arn = _model(sm, tmp_path, "full", Tags=_tags(fifty))
    with pytest.raises(ClientError, match="50") as refused:
        sm.add_tags(ResourceArn=arn, Tags=_tags({"one-more": "v"}))
    assert _code(refused) == "ValidationException"
    assert _list(sm, arn) == fifty  # nothing changed
    sm.add_tags(ResourceArn=arn, Tags=_tags({"k0": "changed"}))  # still fifty keys
    assert _list(sm, arn)["k0"] == "changed"
    sm.delete_tags(ResourceArn=arn, TagKeys=["k1"])
    sm.add_tags(ResourceArn=arn, Tags=_tags({"one-more": "v"}))
    assert len(_list(sm, arn)) == 50


def test_fifty_one_tags_in_one_call_are_refused(sm: SageMakerClient, tmp_path: Path) -> None:
    arn = _model(sm, tmp_path, "empty")
    with pytest.raises(ClientError) as refused:
        sm.add_tags(ResourceArn=arn, Tags=_tags({f"k{i}": "v" for i in range(51)}))
    assert _code(refused) == "ValidationException"
    assert _list(sm, arn) == {}


CALLS = {
    "ListTags": lambda sm, arn: sm.list_tags(ResourceArn=arn),
    "AddTags": lambda sm, arn: sm.add_tags(ResourceArn=arn, Tags=_tags({"k": "v"})),
    "DeleteTags": lambda sm, arn: sm.delete_tags(ResourceArn=arn, TagKeys=["k"]),
}


@pytest.mark.parametrize("operation", list(CALLS))
@pytest.mark.parametrize("arn", [
    "not-an-arn",
    "arn:aws:s3:::bucket/model/x",
    f"{PREFIX}:notebook-instance/x",
    f"{PREFIX}:model/",
    f"{PREFIX}:model",
    "arn:aws:sagemaker:us-east-1:000000000000",
])
def test_an_arn_of_nothing_local_mode_keeps_is_refused(sm: SageMakerClient, tmp_path: Path,
                                                       arn: str, operation: str) -> None:
    _model(sm, tmp_path, "x")
    with pytest.raises(ClientError) as refused:
        CALLS[operation](sm, arn)
    assert _code(refused) == "ValidationException"


@pytest.mark.parametrize("operation", list(CALLS))
@pytest.mark.parametrize("arn", [f"{PREFIX}:model/ghost", f"{PREFIX}:training-job/exists",
                                 f"{PREFIX}:endpoint/exists", f"{PREFIX}:transform-job/ghost"])
def test_an_unknown_resource_is_resource_not_found(sm: SageMakerClient, tmp_path: Path,
                                                   arn: str, operation: str) -> None:
    _model(sm, tmp_path, "exists")  # a model: not the training job or endpoint of that name
    with pytest.raises(ClientError) as missing:
        CALLS[operation](sm, arn)
    assert _code(missing) == "ResourceNotFound"
    assert isinstance(missing.value, sm.exceptions.ResourceNotFound)  # type: ignore[attr-defined]


# -- a training job: its runner writes the description while tags change -------------------------

@pytest.fixture()
def training_job(sm: SageMakerClient, tmp_path: Path) -> Iterator[str]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(textwrap.dedent("""
        import os, time
        from pathlib import Path
        time.sleep(1.5)  # long enough to be tagged while it runs
        Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text("done")
    """))
    name = "Tagged-Training-Job"
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": "optml/local-test:latest",
                                "TrainingInputMode": "File"},
        HyperParameters={"sagemaker_program": "train.py",
                         "sagemaker_submit_directory": str(code)},
        OutputDataConfig={"S3OutputPath": (tmp_path / "output").as_uri()},
        ResourceConfig={"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 120},
        Tags=_tags({"project": "tags", "created": "yes"}))
    resource = sm.store.get("training-jobs", name)
    try:
        yield name
    finally:
        if sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress":
            sm.stop_training_job(TrainingJobName=name)
        deadline = time.monotonic() + 120
        while not runners.ended(resource, runners.TRAINING):
            assert time.monotonic() < deadline, "the training job never ended"
            time.sleep(0.05)


def test_a_training_jobs_tags_survive_its_run(sm: SageMakerClient, training_job: str) -> None:
    arn = f"{PREFIX}:training-job/tagged-training-job"
    assert sm.describe_training_job(TrainingJobName=training_job)["TrainingJobArn"] == arn
    assert _list(sm, arn) == {"project": "tags", "created": "yes"}
    sm.add_tags(ResourceArn=arn, Tags=_tags({"added": "while running"}))
    sm.delete_tags(ResourceArn=arn, TagKeys=["created"])
    assert sm.describe_training_job(TrainingJobName=training_job)["TrainingJobStatus"] == \
        "InProgress", "the job ended before it could be tagged while running"
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=training_job, WaiterConfig={"Delay": 0.1, "MaxAttempts": 1200})
    described = sm.describe_training_job(TrainingJobName=training_job)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert "Tags" not in described
    assert response_errors("DescribeTrainingJob", described) == []
    assert _list(sm, arn) == {"project": "tags", "added": "while running"}
