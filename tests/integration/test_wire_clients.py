"""``optml local api --env`` as a user runs it (a background server for the state directory),
then clients nobody here wrote, configured only by the variables it printed: the AWS CLI
(``awscli`` from the package index, with its own copy of botocore's models) and the SageMaker
SDK with a normal Session; finally ``--stop`` leaves nothing running."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.integration.test_local_endpoints_support import ECHO, FAST_ENV, make_model_tar
from toolkit.pids import pid_alive

BIN = Path(sys.executable).parent
ROLE = "arn:aws:iam::000000000000:role/optml-local"


def _base_environment(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SAGEMAKER_", "OPTML_"))}
    return env | {"OPTML_LOCAL_STATE_DIR": str(state), "OPTML_LOCAL_STOP_GRACE_SECONDS": "2",
                  "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}


def _exports(text: str) -> dict[str, str]:
    """What ``eval "$(optml local api --env)"`` would set."""
    variables = {}
    for line in text.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            variables[key] = shlex.split(value)[0]
    return variables


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    state = tmp_path_factory.mktemp("wire-cli") / "state"
    base = _base_environment(state)
    optml = [str(BIN / "optml"), "local", "api", "--env", "--backend", "process"]
    first = subprocess.run(optml, env=base, capture_output=True, text=True, timeout=90,
                           check=False)
    assert first.returncode == 0, first.stderr
    variables = _exports(first.stdout)
    again = subprocess.run(optml, env=base, capture_output=True, text=True, timeout=30,
                           check=False)
    assert _exports(again.stdout) == variables  # the running server, not a second one
    record = json.loads((state / "api.json").read_text())
    try:
        yield base | variables, state
    finally:
        stop = subprocess.run([str(BIN / "optml"), "local", "api", "--stop"], env=base,
                              capture_output=True, text=True, timeout=60, check=False)
        assert stop.returncode == 0, stop.stderr
        deadline = time.monotonic() + 10
        while pid_alive(record["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(record["pid"])
        assert not (state / "api.json").exists()


def test_printed_variables_are_botocores_and_the_record_is_private(
        served: tuple[dict[str, str], Path]) -> None:
    env, state = served
    for name in ("AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
                 "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_ENDPOINT_URL_STS",
                 "AWS_ENDPOINT_URL_S3"):
        assert env[name].startswith("http://127.0.0.1:")
    assert env["AWS_ACCESS_KEY_ID"].startswith("LOCL") and env["AWS_REGION"] == "us-east-1"
    assert (state / "api.json").stat().st_mode & 0o077 == 0


def _aws(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "aws"), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_aws_cli_drives_training_jobs_and_endpoints(
        served: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, _ = served
    bucket = f"cli-{uuid.uuid4().hex[:8]}"
    assert _aws(env, "s3", "mb", f"s3://{bucket}").returncode == 0
    tar = make_model_tar(tmp_path / "model.tar.gz", ECHO, {"value.txt": "via-cli"})
    copied = _aws(env, "s3", "cp", str(tar), f"s3://{bucket}/model/model.tar.gz")
    assert copied.returncode == 0, copied.stderr

    name = f"cli-{uuid.uuid4().hex[:6]}"
    container = json.dumps({"Image": "optml/base:latest", "Environment": FAST_ENV,
                            "ModelDataUrl": f"s3://{bucket}/model/model.tar.gz"})
    for args in (["create-model", "--model-name", name, "--execution-role-arn", ROLE,
                  "--primary-container", container],
                 ["create-endpoint-config", "--endpoint-config-name", name,
                  "--production-variants", json.dumps([{
                      "VariantName": "AllTraffic", "ModelName": name,
                      "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])],
                 ["create-endpoint", "--endpoint-name", name, "--endpoint-config-name", name]):
        result = _aws(env, "sagemaker", *args)
        assert result.returncode == 0, f"{args[0]}: {result.stderr}"
    # (`aws sagemaker wait endpoint-in-service` works too, but its model's delay is 30 s)
    deadline = time.monotonic() + 120
    while json.loads(_aws(env, "sagemaker", "describe-endpoint", "--endpoint-name", name)
                     .stdout)["EndpointStatus"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    try:
        out = tmp_path / "answer.json"
        invoked = _aws(env, "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", name,
                       "--body", "hello",
                       "--content-type", "text/csv", "--custom-attributes", "k=v", str(out))
        assert invoked.returncode == 0, invoked.stderr
        metadata = json.loads(invoked.stdout)
        assert metadata["InvokedProductionVariant"] == "AllTraffic"
        assert metadata["CustomAttributes"] == "echo:k=v"
        answer = json.loads(out.read_text())
        assert answer["model"] == "via-cli" and answer["body"] == "hello"

        listed = json.loads(_aws(env, "sagemaker", "list-endpoints").stdout)
        assert name in [e["EndpointName"] for e in listed["Endpoints"]]
        described = json.loads(_aws(env, "sagemaker", "describe-endpoint",
                                    "--endpoint-name", name).stdout)
        assert described["EndpointStatus"] == "InService"
        missing = _aws(env, "sagemaker", "describe-training-job", "--training-job-name", "nope")
        assert missing.returncode == 255  # AWS CLI v1: a service error
        assert "ValidationException" in missing.stderr and "nope" in missing.stderr
        jobs = json.loads(_aws(env, "sagemaker", "list-training-jobs").stdout)
        assert "TrainingJobSummaries" in jobs
    finally:
        deleted = _aws(env, "sagemaker", "delete-endpoint", "--endpoint-name", name)
        assert deleted.returncode == 0, deleted.stderr


SDK_SCRIPT = r'''
import io, json, sys, tarfile, time
import sagemaker
from sagemaker.estimator import Estimator

args = json.loads(sys.argv[1])
session = sagemaker.Session()
bucket = session.default_bucket()
code = io.BytesIO()
with tarfile.open(fileobj=code, mode="w:gz") as archive:
    data = b"print('hello from the sdk job', flush=True)\n"
    info = tarfile.TarInfo("train.py"); info.size = len(data)
    archive.addfile(info, io.BytesIO(data))
session.boto_session.client("s3").put_object(Bucket=bucket, Key="sdk/code.tar.gz",
                                             Body=code.getvalue())
name = "sdk-" + args["suffix"]
session.sagemaker_client.create_training_job(
    TrainingJobName=name, RoleArn=args["role"],
    AlgorithmSpecification={"TrainingImage": "optml/base:latest", "TrainingInputMode": "File"},
    HyperParameters={"sagemaker_program": json.dumps("train.py"),
                     "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/sdk/code.tar.gz")},
    OutputDataConfig={"S3OutputPath": f"s3://{bucket}/sdk/output"},
    ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
    StoppingCondition={"MaxRuntimeInSeconds": 60})
session.wait_for_job(name, poll=0.2)
estimator = Estimator.attach(name, sagemaker_session=session)
session.logs_for_job(name, wait=False)   # the SDK's own log reader over CloudWatch Logs
print("\nRESULT " + json.dumps({"bucket": bucket, "data": estimator.model_data, "name": name}),
      flush=True)
'''


def test_the_sdk_with_a_normal_session_and_the_cli_reads_its_job(served: tuple[dict[str, str], Path],
                                       tmp_path: Path) -> None:
    env, _ = served
    script = tmp_path / "sdk.py"
    script.write_text(SDK_SCRIPT)
    run = subprocess.run([sys.executable, str(script), json.dumps(
        {"role": ROLE, "suffix": uuid.uuid4().hex[:6]})], capture_output=True, text=True,
        timeout=180, check=False, env=env)
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-4000:]}"
    result = json.loads(run.stdout.rsplit("\nRESULT ", 1)[1])
    assert result["bucket"] == "sagemaker-us-east-1-000000000000"
    assert result["data"].startswith(f"s3://{result['bucket']}/sdk/output/")
    assert "hello from the sdk job" in run.stdout  # streamed by logs_for_job
    s3 = boto3.session.Session().client(
        "s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    key = result["data"].split("/", 3)[3]
    assert s3.head_object(Bucket=result["bucket"], Key=key)["ContentLength"] > 0

    # the AWS CLI sees the SDK's job as it would on the service
    listed = json.loads(_aws(env, "sagemaker", "list-training-jobs", "--name-contains",
                             "sdk-").stdout)["TrainingJobSummaries"]
    (summary,) = [s for s in listed if s["TrainingJobName"] == result["name"]]
    assert summary["TrainingJobStatus"] == "Completed"
    described = _aws(env, "sagemaker", "describe-training-job", "--training-job-name",
                     result["name"])
    assert described.returncode == 0, described.stderr
    job = json.loads(described.stdout)
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == result["data"]
    assert job["OutputDataConfig"] == {"KmsKeyId": "",
                                       "S3OutputPath": f"s3://{result['bucket']}/sdk/output"}
