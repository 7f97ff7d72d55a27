"""Every implemented operation of the local clients, called for real (process backend), answers
with exactly the shape botocore's model gives its output: no member the shape lacks, every
required one present, types and enums right.

The operations come from the clients themselves (each method named as an operation of botocore's
model), so an operation added later fails :func:`test_every_operation_is_walked` until the walk
below calls it.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_mode.client_base import LocalClient
from local_mode.shapes import response_errors
from tests.integration.local_training_support import LocalEnv, channel, request, write_code
from tests.integration.processing_support import (
    job_log,
    processing_request,
    s3_input,
    s3_output,
    wait_ended,
    write_script,
)
from tests.integration.test_local_endpoints_support import FAST_ENV, Local, make_model_tar

TRAIN_OK = """
    import os
    from pathlib import Path
    Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text("ok")
    print("loss=0.5", flush=True)
"""
TRAIN_FAIL = """
    raise SystemExit("deliberate failure")
"""
TRAIN_SLOW = """
    import time
    time.sleep(60)
"""
PROCESS_OK = """
    import os, sys
    from pathlib import Path
    Path(sys.argv[1], "out.txt").write_text("ok")
    Path(os.environ["SAGEMAKER_BASE_DIR"], "output", "message").write_text("done")
"""
SUM = """
    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        if isinstance(body, str):
            body = body.encode()
        return body, "text/csv"
"""


class Recorder:
    """A client whose operations check their response against botocore's output shape and
    remember which operations were called."""

    def __init__(self, client: LocalClient, seen: dict[str, int]) -> None:
        self.client = client
        self.seen = seen

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        operation = self.client.OPERATIONS.get(name)
        if operation is None:
            return attribute

        def call(**kwargs: Any) -> Any:
            response = attribute(**kwargs)
            errors = response_errors(operation, response, self.client.SERVICE)
            assert not errors, f"{operation} answered off its output shape: {errors}"
            self.seen[f"{self.client.SERVICE}:{operation}"] += 1
            return response
        return call


def _until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture()
def walked(tmp_path: Path) -> Iterator[dict[str, int]]:
    """Walk every operation (the order a user would call them in); yield what was called."""
    local = Local(tmp_path / "ep")
    seen: dict[str, int] = defaultdict(int)
    sm = Recorder(local.sm, seen)
    rt = Recorder(local.rt, seen)
    training = LocalEnv(tmp_path / "train", local.sm)
    data = tmp_path / "data"
    data.mkdir()
    (data / "part-0.csv").write_text("1,2\n3,4\n")
    try:
        _walk_training(sm, training, tmp_path, data)
        _walk_processing(sm, training, tmp_path, data)
        _walk_serving(sm, rt, local, tmp_path, data)
        yield seen
    finally:
        local.cleanup()


def _walk_training(sm: Any, training: LocalEnv, tmp_path: Path, data: Path) -> None:
    out = f"file://{tmp_path / 'out'}"
    jobs = {}
    for kind, script in (("ok", TRAIN_OK), ("fail", TRAIN_FAIL), ("slow", TRAIN_SLOW)):
        name = f"shape-{kind}"
        jobs[kind] = name
        body = request(name, write_code(tmp_path / f"code-{kind}", script), out,
                       channels=[channel("train", data.as_uri())])
        body["AlgorithmSpecification"]["MetricDefinitions"] = [
            {"Name": "loss", "Regex": "loss=([0-9.]+)"}]
        sm.create_training_job(**body)
        sm.describe_training_job(TrainingJobName=name)  # InProgress
    _until(lambda: sm.describe_training_job(TrainingJobName=jobs["slow"])[
        "SecondaryStatus"] == "Training", "the slow job to train")
    sm.stop_training_job(TrainingJobName=jobs["slow"])
    for name in jobs.values():
        training.wait(name)
        sm.describe_training_job(TrainingJobName=name)  # Completed, Failed, Stopped
    assert sm.describe_training_job(TrainingJobName=jobs["fail"])["FailureReason"]
    sm.list_training_jobs()
    sm.list_training_jobs(MaxResults=1, SortBy="Status", SortOrder="Descending")
    sm.delete_training_job(TrainingJobName=jobs["fail"])  # it has ended: the service deletes it


def _walk_processing(sm: Any, training: LocalEnv, tmp_path: Path, data: Path) -> None:
    out = tmp_path / "processed"
    jobs = {}
    for kind, script in (("ok", PROCESS_OK), ("fail", TRAIN_FAIL), ("slow", TRAIN_SLOW)):
        name = f"shape-processing-{kind}"
        jobs[kind] = name
        code = write_script(tmp_path / f"processing-code-{kind}", script)
        sm.create_processing_job(**processing_request(
            name, code, arguments=["/opt/ml/processing/output"],
            inputs=[s3_input("data", data.as_uri(), "/opt/ml/processing/input/data")],
            outputs=[s3_output("out", out.as_uri(), "/opt/ml/processing/output")]))
        sm.describe_processing_job(ProcessingJobName=name)  # InProgress
    _until(lambda: "Processing" in job_log(training.client, jobs["slow"]),
           "the slow processing job to run")
    sm.stop_processing_job(ProcessingJobName=jobs["slow"])
    for name in jobs.values():
        wait_ended(training.client, name)
        sm.describe_processing_job(ProcessingJobName=name)  # Completed, Failed, Stopped
    assert sm.describe_processing_job(ProcessingJobName=jobs["ok"])["ExitMessage"] == "done"
    assert sm.describe_processing_job(ProcessingJobName=jobs["fail"])["FailureReason"]
    sm.list_processing_jobs()
    sm.list_processing_jobs(MaxResults=1, SortBy="Status", SortOrder="Descending")


def _walk_serving(sm: Any, rt: Any, local: Local, tmp_path: Path, data: Path) -> None:
    tar = make_model_tar(tmp_path / "model" / "model.tar.gz", SUM)
    container = {"Image": "optml-local-test", "ModelDataUrl": tar.as_uri(),
                 "Environment": FAST_ENV}
    model_arn = sm.create_model(ModelName="shape-model", PrimaryContainer=container,
                                Tags=[{"Key": "team", "Value": "a"}])["ModelArn"]
    sm.describe_model(ModelName="shape-model")
    sm.list_models()
    sm.add_tags(ResourceArn=model_arn, Tags=[{"Key": "stage", "Value": "test"}])
    assert sm.list_tags(ResourceArn=model_arn)["Tags"] == [
        {"Key": "team", "Value": "a"}, {"Key": "stage", "Value": "test"}]
    sm.delete_tags(ResourceArn=model_arn, TagKeys=["team"])
    sm.list_tags(ResourceArn=model_arn, MaxResults=50)
    for config in ("shape-config-a", "shape-config-b"):
        sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "shape-model", "InstanceType": "local",
            "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}])
        sm.describe_endpoint_config(EndpointConfigName=config)
    sm.list_endpoint_configs()

    sm.create_endpoint(EndpointName="shape-endpoint", EndpointConfigName="shape-config-a")
    sm.describe_endpoint(EndpointName="shape-endpoint")  # Creating
    local.sm.get_waiter("endpoint_in_service").wait(EndpointName="shape-endpoint")
    sm.describe_endpoint(EndpointName="shape-endpoint")  # InService
    rt.invoke_endpoint(EndpointName="shape-endpoint", Body=b"1,2\n", ContentType="text/csv")
    sm.update_endpoint(EndpointName="shape-endpoint", EndpointConfigName="shape-config-b")
    sm.describe_endpoint(EndpointName="shape-endpoint")  # Updating (or already done)
    local.wait_status("shape-endpoint", "InService")
    sm.describe_endpoint(EndpointName="shape-endpoint")
    sm.update_endpoint_weights_and_capacities(
        EndpointName="shape-endpoint", DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": 2, "DesiredWeight": 0.5}])
    sm.describe_endpoint(EndpointName="shape-endpoint")  # Updating (or already done)
    local.wait_status("shape-endpoint", "InService")
    described = sm.describe_endpoint(EndpointName="shape-endpoint")
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert described["ProductionVariants"][0]["DesiredWeight"] == 0.5
    sm.list_endpoints()

    for name in ("shape-transform", "shape-transform-stopped"):
        sm.create_transform_job(
            TransformJobName=name, ModelName="shape-model",
            TransformInput={"DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": data.as_uri()}},
                "ContentType": "text/csv", "SplitType": "Line"},
            TransformOutput={"S3OutputPath": (tmp_path / f"{name}-out").as_uri()},
            TransformResources={"InstanceType": "local", "InstanceCount": 1})
        sm.describe_transform_job(TransformJobName=name)
    # it may finish first: the stop call still runs and answers as the service does
    with contextlib.suppress(local.sm.exceptions.ValidationException):
        sm.stop_transform_job(TransformJobName="shape-transform-stopped")
    for name in ("shape-transform", "shape-transform-stopped"):
        local.sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName=name)
        sm.describe_transform_job(TransformJobName=name)
    sm.list_transform_jobs()

    sm.delete_endpoint(EndpointName="shape-endpoint")
    local.sm.get_waiter("endpoint_deleted").wait(EndpointName="shape-endpoint")
    for config in ("shape-config-a", "shape-config-b"):
        sm.delete_endpoint_config(EndpointConfigName=config)
    sm.delete_model(ModelName="shape-model")


def test_every_operation_is_walked(walked: dict[str, int]) -> None:
    from local_mode.runtime import RuntimeClient
    from local_mode.sagemaker import SageMakerClient

    implemented = {f"{client.SERVICE}:{operation}"
                   for client in (SageMakerClient, RuntimeClient)
                   for operation in client.OPERATIONS.values()}
    assert "sagemaker:DescribeTransformJob" in implemented
    assert implemented - set(walked) == set(), "operations the walk never called"
