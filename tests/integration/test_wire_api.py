"""The wire API driven by real boto3 clients over HTTP (process backend, embedded S3): the
control plane, waiters and paginators from botocore's models, the runtime, logs, STS, S3, and
every refusal as the caller's SDK raises it."""

from __future__ import annotations

import io
import json
import os
import tarfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from local_mode.shapes import response_errors
from local_mode.wire.endpoint import ApiEndpoint
from local_mode.wire.server import ApiServer
from tests.integration.test_local_endpoints_support import ECHO, FAST_ENV
from toolkit.settings import Settings

ROLE = "arn:aws:iam::000000000000:role/optml-local"
TRAIN = """
    import json, os, pathlib
    rows = pathlib.Path(os.environ["SM_CHANNEL_TRAIN"], "rows.csv").read_text().splitlines()
    print(f"read {len(rows)} rows on {os.environ['SM_CURRENT_HOST']}", flush=True)
    pathlib.Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps({"rows": len(rows)}))
"""


def tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = textwrap.dedent(text).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiEndpoint]:
    root = tmp_path_factory.mktemp("wire")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SAGEMAKER_", "OPTML_", "AWS_"))}
    env |= {"OPTML_LOCAL_STOP_GRACE_SECONDS": "2"}
    server = ApiServer(Settings.from_environ(env), state_dir=root / "state", backend="process")
    with server:
        yield server.endpoint


def client(api: ApiEndpoint, service: str, **extra: Any) -> Any:
    return boto3.session.Session().client(service, **api.client_args(service), **extra)


@pytest.fixture(scope="module")
def bucket(api: ApiEndpoint) -> str:
    s3 = client(api, "s3")
    name = f"wire-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="data/rows.csv", Body=b"1,2\n3,4\n5,6\n")
    s3.put_object(Bucket=name, Key="code/sourcedir.tar.gz", Body=tarball({"train.py": TRAIN}))
    s3.put_object(Bucket=name, Key="model/model.tar.gz",
                  Body=tarball({"code/inference.py": ECHO, "value.txt": "from-wire"}))
    return name


def _training_request(name: str, bucket: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name, "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "optml/base:latest",
                                   "TrainingInputMode": "File"},
        "HyperParameters": {"sagemaker_program": json.dumps("train.py"),
                            "sagemaker_submit_directory": json.dumps(
                                f"s3://{bucket}/code/sourcedir.tar.gz")},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/data/",
            "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2,
                           "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }


def test_training_job_through_boto3_waiter_logs_and_s3(api: ApiEndpoint, bucket: str) -> None:
    sm, s3, logs = client(api, "sagemaker"), client(api, "s3"), client(api, "logs")
    name = f"wire-{uuid.uuid4().hex[:8]}"
    arn = sm.create_training_job(**_training_request(name, bucket))["TrainingJobArn"]
    assert arn == f"arn:aws:sagemaker:{api.region}:000000000000:training-job/{name}"
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600})
    described = sm.describe_training_job(TrainingJobName=name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert response_errors("DescribeTrainingJob", described) == []
    assert described["CreationTime"].tzinfo is not None  # botocore parsed the wire timestamp
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{bucket}/output/{name}/output/model.tar.gz"
    body = s3.get_object(Bucket=bucket, Key=artifact.split("/", 3)[3])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert json.load(archive.extractfile("model.json")) == {"rows": 3}  # type: ignore[arg-type]

    names = [summary["TrainingJobName"] for page in sm.get_paginator("list_training_jobs")
             .paginate(PaginationConfig={"PageSize": 1}) for summary in page[
                 "TrainingJobSummaries"]]
    assert name in names

    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=f"{name}/")["logStreams"]
    # one stream per host, named <job>/<host>-<creation epoch> as the service names them (the
    # process backend's hosts are loopback addresses rather than algo-N)
    assert len(streams) == 2 and all(s["logStreamName"].startswith(f"{name}/")
                                     for s in streams)
    for stream in streams:
        host = stream["logStreamName"].split("/", 1)[1].rsplit("-", 1)[0]
        events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                     logStreamName=stream["logStreamName"],
                                     startFromHead=True)["events"]
        assert any(f"read 3 rows on {host}" in e["message"] for e in events), events


def test_endpoint_through_boto3_runtime(api: ApiEndpoint, bucket: str) -> None:
    sm, runtime = client(api, "sagemaker"), client(api, "sagemaker-runtime")
    name = f"ep-{uuid.uuid4().hex[:8]}"
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "optml/base:latest", "ModelDataUrl": f"s3://{bucket}/model/model.tar.gz",
        "Environment": FAST_ENV})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    try:
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600})
        answer = runtime.invoke_endpoint(EndpointName=name, Body=b"hello",
                                         ContentType="text/csv", CustomAttributes="a=1",
                                         InferenceId="inference-7")
        assert response_errors("InvokeEndpoint", answer, "sagemaker-runtime") == []
        payload = json.loads(answer["Body"].read())
        assert payload["model"] == "from-wire" and payload["body"] == "hello"
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        assert answer["CustomAttributes"] == "echo:a=1"
        with pytest.raises(runtime.exceptions.ModelError) as failed:
            runtime.invoke_endpoint(EndpointName=name, Body=b"fail please",
                                    ContentType="text/csv")
        assert failed.value.response["OriginalStatusCode"] >= 400
        assert "asked to fail" in failed.value.response["OriginalMessage"]
        with pytest.raises(ClientError) as missing:
            runtime.invoke_endpoint(EndpointName="nope", Body=b"x")
        assert missing.value.response["Error"]["Code"] == "ValidationError"
        groups = client(api, "logs").describe_log_streams(
            logGroupName=f"/aws/sagemaker/Endpoints/{name}")["logStreams"]
        assert groups and groups[0]["logStreamName"].startswith("AllTraffic/")
    finally:
        sm.delete_endpoint(EndpointName=name)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            sm.describe_endpoint(EndpointName=name)
        except ClientError:
            break
        time.sleep(0.1)


def test_service_errors_arrive_as_botocore_raises_them(api: ApiEndpoint) -> None:
    sm = client(api, "sagemaker")
    with pytest.raises(ClientError) as missing:
        sm.describe_training_job(TrainingJobName="does-not-exist")
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "does-not-exist" in missing.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as invalid:
        sm.create_training_job(**{**_training_request("bad name!", "b")})
    assert invalid.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as unknown:
        sm.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="t", HyperParameterTuningJobConfig={
                "Strategy": "Random", "ResourceLimits": {"MaxParallelTrainingJobs": 1}})
    assert unknown.value.response["Error"]["Code"] == "UnknownOperationException"


def test_sts_names_the_account(api: ApiEndpoint) -> None:
    identity = client(api, "sts").get_caller_identity()
    assert identity["Account"] == "000000000000"
    assert identity["Arn"].startswith("arn:aws:iam::000000000000:")


def _raw(api: ApiEndpoint, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(api.url + "/", data=body, headers=headers, timeout=10)


def test_unsigned_and_wrongly_signed_requests_are_refused(api: ApiEndpoint) -> None:
    unsigned = _raw(api, b"{}", {"X-Amz-Target": "SageMaker.ListTrainingJobs",
                                 "Content-Type": "application/x-amz-json-1.1"})
    assert unsigned.status_code == 403
    assert unsigned.json()["__type"] == "MissingAuthenticationTokenException"

    wrong_secret = boto3.session.Session().client(
        "sagemaker", **{**api.client_args("sagemaker"), "aws_secret_access_key": "x" * 40},
        config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as bad:
        wrong_secret.list_training_jobs()
    assert bad.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert bad.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    stranger = boto3.session.Session().client(
        "sagemaker", **{**api.client_args("sagemaker"), "aws_access_key_id": "AKIDSTRANGER"},
        config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as unknown:
        stranger.list_training_jobs()
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"

    s3 = boto3.session.Session().client(
        "s3", **{**api.client_args("s3"), "aws_secret_access_key": "y" * 40},
        config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as s3_bad:
        s3.list_buckets()
    assert s3_bad.value.response["Error"]["Code"] == "SignatureDoesNotMatch"

    anonymous = requests.get(api.url + "/some-bucket", timeout=10)
    assert anonymous.status_code == 403 and b"<Code>AccessDenied</Code>" in anonymous.content


def _signed(api: ApiEndpoint, target: str, body: bytes) -> requests.Response:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest("POST", api.url + "/", data=body, headers={
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(api.access_key_id, api.secret_access_key), "sagemaker",
              api.region).add_auth(request)
    return requests.post(api.url + "/", data=body, headers=dict(request.headers), timeout=30)


def test_malformed_and_oversized_bodies_get_the_services_errors(api: ApiEndpoint) -> None:
    garbage = _signed(api, "SageMaker.ListTrainingJobs", b"{not json")
    assert garbage.status_code == 400
    assert garbage.json()["__type"] == "SerializationException"
    wrong_type = _signed(api, "SageMaker.DescribeTrainingJob", b'{"TrainingJobName": 7}')
    assert wrong_type.status_code == 400
    assert wrong_type.json()["__type"] == "ValidationException"
    assert "TrainingJobName" in wrong_type.json()["message"]
    unknown = _signed(api, "SageMaker.NoSuchOperation", b"{}")
    assert unknown.json()["__type"] == "UnknownOperationException"
    huge = b"x" * (11 * 1024 * 1024)
    unsigned = requests.post(api.url + "/", data=huge, headers={
        "X-Amz-Target": "SageMaker.ListTrainingJobs"}, timeout=30)
    assert unsigned.status_code == 403  # refused before its body is read
    signed = _signed(api, "SageMaker.ListTrainingJobs", huge)
    assert signed.status_code == 413 and signed.json()["__type"] == "SerializationException"


def test_health_and_record(api: ApiEndpoint, tmp_path: Path) -> None:
    assert requests.get(api.url + "/_optml/health", timeout=5).json()["status"] == "ok"
    assert api.environ()["AWS_ENDPOINT_URL_SAGEMAKER"] == api.url
    assert api.environ()["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] == api.url
    assert api.environ()["AWS_ENDPOINT_URL_S3"] == api.url


def test_a_named_s3_compatible_server_instead_of_the_embedded_store(
        tmp_path: Path, s3_endpoint: str) -> None:
    """--s3 URL with --credentials environment: one set of keys for the API and the store; jobs
    read and write s3:// there, and the server itself serves no S3."""
    from local_mode.wire.sigv4 import Credentials
    from tests.fixtures.s3_server import FAKE_ACCESS_KEY, FAKE_SECRET_KEY

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SAGEMAKER_", "OPTML_", "AWS_"))}
    env |= {"AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY}
    server = ApiServer(Settings.from_environ(env), state_dir=tmp_path / "state",
                       backend="process", s3_store=s3_endpoint, record=False,
                       credentials=Credentials(FAKE_ACCESS_KEY, FAKE_SECRET_KEY))
    with server:
        api = server.endpoint
        assert api.environ()["AWS_ENDPOINT_URL_S3"] == s3_endpoint != api.url
        s3 = client(api, "s3")
        bucket = f"named-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="data/rows.csv", Body=b"1\n2\n")
        s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz",
                      Body=tarball({"train.py": TRAIN}))
        sm = client(api, "sagemaker")
        name = f"named-{uuid.uuid4().hex[:6]}"
        sm.create_training_job(**{**_training_request(name, bucket),
                                  "ResourceConfig": {"InstanceType": "ml.m5.large",
                                                     "InstanceCount": 1, "VolumeSizeInGB": 1}})
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600})
        described = sm.describe_training_job(TrainingJobName=name)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        key = described["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3]
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
        own = boto3.session.Session().client("s3", **{**api.client_args("s3"),
                                                      "endpoint_url": api.url})
        with pytest.raises(ClientError) as refused:
            own.list_buckets()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
