"""The local clients behave as boto3's around every call: boto3's client arguments, botocore's
ParamValidationError for a bad call, ClientErrors naming the operation, ``client.exceptions``,
and waiters and paginators from botocore's own models."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    OperationNotPageableError,
    ParamValidationError,
    WaiterError,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import local_mode
from local_mode.listing import unhandled_members
from local_mode.sagemaker import SageMakerClient
from local_mode.waiters import waiter_model

BOTO3_ARGS: dict[str, Any] = {
    "region_name": "eu-west-1", "api_version": "2017-07-24", "use_ssl": False, "verify": False,
    "endpoint_url": "http://localhost:1", "aws_access_key_id": "AKIDEXAMPLE",
    "aws_secret_access_key": "secret", "aws_session_token": "token",
    "config": Config(retries={"max_attempts": 1}),
}


@pytest.fixture()
def sm(tmp_path: Path) -> SageMakerClient:
    return local_mode.client("sagemaker", state_dir=tmp_path / "state", backend="process")


def _model(sm: SageMakerClient, tmp_path: Path, name: str) -> dict[str, Any]:
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"not really a tarball; CreateModel only checks that it exists")
    return sm.create_model(ModelName=name, PrimaryContainer={
        "Image": "img", "ModelDataUrl": artifact.as_uri()})


@pytest.mark.parametrize("service", ["sagemaker", "sagemaker-runtime"])
def test_boto3_client_arguments_are_accepted(tmp_path: Path, service: str) -> None:
    client = local_mode.client(service, state_dir=tmp_path, **BOTO3_ARGS)
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.service_model.service_name == service
    assert isinstance(client.meta.config, Config)


def test_the_region_and_account_show_in_arns(tmp_path: Path) -> None:
    sm = local_mode.client("sagemaker", state_dir=tmp_path, backend="process",
                           config=Config(region_name="ap-south-1"), aws_account_id="123456789012")
    assert sm.meta.region_name == "ap-south-1"
    arn = _model(sm, tmp_path, "m")["ModelArn"]
    assert arn == "arn:aws:sagemaker:ap-south-1:123456789012:model/m"


def test_a_config_that_is_not_a_botocore_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="botocore.config.Config"):
        local_mode.client("sagemaker", state_dir=tmp_path, config={"region_name": "x"})


def test_bad_calls_raise_what_boto3_raises(sm: SageMakerClient) -> None:
    with pytest.raises(ParamValidationError, match='Unknown parameter in input: "Nmae"'):
        sm.describe_model(ModelName="m", Nmae="x")
    with pytest.raises(ParamValidationError, match='Missing required parameter in input: '
                                                   '"ModelName"'):
        sm.describe_model()
    with pytest.raises(ParamValidationError, match="Invalid type for parameter MaxResults"):
        sm.list_models(MaxResults="ten")
    with pytest.raises(TypeError, match=r"describe_model\(\) only accepts keyword arguments"):
        sm.describe_model("m")  # type: ignore[misc]


def test_service_errors_name_the_operation_called(sm: SageMakerClient, tmp_path: Path) -> None:
    with pytest.raises(ClientError) as caught:
        sm.describe_model(ModelName="absent")
    assert str(caught.value).startswith("An error occurred (ValidationException) when calling "
                                        "the DescribeModel operation: ")
    assert caught.value.operation_name == "DescribeModel"
    _model(sm, tmp_path, "twice")
    with pytest.raises(sm.exceptions.ResourceInUse) as in_use:
        _model(sm, tmp_path, "twice")
    assert "when calling the CreateModel operation" in str(in_use.value)
    assert in_use.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(ClientError, match="the ListModels operation: Invalid pagination token"):
        sm.list_models(NextToken="garbage")


def test_client_exceptions_are_the_models_errors(sm: SageMakerClient) -> None:
    declared = [shape.name for shape in sm.meta.service_model.error_shapes]
    assert {"ResourceNotFound", "ResourceInUse", "ResourceLimitExceeded"} <= set(declared)
    for name in declared:
        error = getattr(sm.exceptions, name)
        assert issubclass(error, ClientError) and sm.exceptions.from_code(name) is error
    other = local_mode.client("sagemaker", state_dir=sm.store.root, backend="process")
    assert other.exceptions.ResourceNotFound is sm.exceptions.ResourceNotFound
    assert sm.exceptions.from_code("NoSuchCode") is ClientError


def test_responses_carry_response_metadata(sm: SageMakerClient) -> None:
    metadata = sm.list_models()["ResponseMetadata"]
    assert metadata["HTTPStatusCode"] == 200 and metadata["RequestId"]


def test_waiters_are_botocores(sm: SageMakerClient) -> None:
    model = waiter_model("sagemaker")
    assert sm.waiter_names == ["endpoint_deleted", "endpoint_in_service",
                               "processing_job_completed_or_stopped",
                               "training_job_completed_or_stopped",
                               "transform_job_completed_or_stopped"]
    waiter = sm.get_waiter("endpoint_in_service")
    service = model.get_waiter("EndpointInService")
    assert waiter.name == "EndpointInService"
    assert [(a.state, a.matcher, a.expected) for a in waiter.config.acceptors] == \
        [(a.state, a.matcher, a.expected) for a in service.acceptors]
    # only the delay differs: as many more attempts keep the service's total time
    assert waiter.config.delay < service.delay
    assert waiter.config.delay * waiter.config.max_attempts >= \
        service.delay * service.max_attempts
    with pytest.raises(WaiterError, match="Waiter EndpointInService failed: .*terminal failure"):
        waiter.wait(EndpointName="absent")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="absent")  # absent: deleted
    with pytest.raises(ValueError, match="Waiter does not exist: notebook_instance_deleted"):
        sm.get_waiter("notebook_instance_deleted")  # the model's, but not implemented locally


def test_paginators_are_botocores(sm: SageMakerClient, tmp_path: Path) -> None:
    for name in ("list_training_jobs", "list_processing_jobs", "list_models",
                 "list_endpoint_configs", "list_endpoints", "list_transform_jobs"):
        assert sm.can_paginate(name)
    assert not sm.can_paginate("describe_model")
    # the model's, not implemented locally
    assert not sm.can_paginate("list_hyper_parameter_tuning_jobs")
    with pytest.raises(OperationNotPageableError):
        sm.get_paginator("describe_model")
    names = [f"page-{i}" for i in range(5)]
    for name in names:
        _model(sm, tmp_path, name)
    paginator = sm.get_paginator("list_models")
    pages = list(paginator.paginate(SortBy="Name", SortOrder="Ascending",
                                    PaginationConfig={"PageSize": 2}))
    assert [len(p["Models"]) for p in pages] == [2, 2, 1]
    assert [m["ModelName"] for p in pages for m in p["Models"]] == names
    first = paginator.paginate(SortBy="Name", SortOrder="Ascending",
                               PaginationConfig={"MaxItems": 3, "PageSize": 2}).build_full_result()
    assert [m["ModelName"] for m in first["Models"]] == names[:3]
    rest = paginator.paginate(SortBy="Name", SortOrder="Ascending", PaginationConfig={
        "StartingToken": first["NextToken"], "PageSize": 2}).build_full_result()
    assert [m["ModelName"] for m in rest["Models"]] == names[3:]


def test_every_list_filter_of_the_model_is_honoured(sm: SageMakerClient) -> None:
    listed = [op for op in sm.OPERATIONS.values() if op.startswith("List") and op != "ListTags"]
    assert len(listed) == 6
    assert {op: unhandled_members(op) for op in listed} == {op: [] for op in listed}
    assert unhandled_members("ListTags") == ["ResourceArn"]  # which resource, not a filter


@settings(max_examples=200, deadline=None)
@given(token=st.text(max_size=64) | st.binary(max_size=48).map(
    lambda raw: base64.urlsafe_b64encode(raw).decode()))
def test_any_next_token_is_a_page_or_a_validation_exception(token: str) -> None:
    """NextToken is parsed from the caller: whatever it is, the answer is a page or the
    service's error, never another exception."""
    with tempfile.TemporaryDirectory() as state:
        client = local_mode.client("sagemaker", state_dir=state, backend="process")
        try:
            page = client.list_models(NextToken=token)
        except client.exceptions.ValidationException as exc:
            assert "pagination token" in exc.message or "'NextToken'" in exc.message
        else:
            assert page["Models"] == []


def test_a_boto3_method_local_mode_lacks_names_its_operation(tmp_path: Path) -> None:
    sm = local_mode.client("sagemaker", state_dir=tmp_path, backend="process")
    assert not hasattr(sm, "create_hyper_parameter_tuning_job")
    assert hasattr(sm, "create_training_job") and hasattr(sm, "create_processing_job")
    with pytest.raises(AttributeError,
                       match="does not emulate sagemaker CreateHyperParameterTuningJob"):
        sm.create_hyper_parameter_tuning_job(HyperParameterTuningJobName="p")
    with pytest.raises(AttributeError, match="has no attribute 'no_such_thing'"):
        sm.no_such_thing  # noqa: B018 - the attribute access is the test
    assert "create_training_job" in sm.OPERATIONS
