"""Shared helpers for the local-mode processing tests: CreateProcessingJob requests whose program
is a Python script run by ``python3`` (the process backend needs a ContainerEntrypoint), waiting
for a job's end, and reading what it uploaded."""

from __future__ import annotations

import contextlib
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from local_mode import runners
from local_mode.errors import LocalModeError
from local_mode.sagemaker import SageMakerClient
from tests.integration.local_training_support import END_TIMEOUT, ROLE, wait_until_ended

CODE_PATH = "/opt/ml/processing/input/code"


def s3_input(name: str, uri: str, local_path: str, **extra: Any) -> dict[str, Any]:
    return {"InputName": name,
            "S3Input": {"S3Uri": uri, "LocalPath": local_path, "S3DataType": "S3Prefix",
                        "S3InputMode": "File", **extra}}


def s3_output(name: str, uri: str, local_path: str, mode: str = "EndOfJob") -> dict[str, Any]:
    return {"OutputName": name,
            "S3Output": {"S3Uri": uri, "LocalPath": local_path, "S3UploadMode": mode}}


def processing_request(name: str, code_dir: Path, *, script: str = "process.py",
                       arguments: Sequence[str] = (), inputs: Sequence[Mapping[str, Any]] = (),
                       outputs: Sequence[Mapping[str, Any]] = (), instance_count: int = 1,
                       environment: Mapping[str, str] | None = None,
                       max_runtime: int = 120) -> dict[str, Any]:
    """A request that stages ``code_dir`` at :data:`CODE_PATH` (as the SDK's ScriptProcessor
    does) and runs ``python3 <CODE_PATH>/<script> ARGUMENTS`` on every instance."""
    body: dict[str, Any] = {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": "optml/local-test:latest",
                             "ContainerEntrypoint": [sys.executable, f"{CODE_PATH}/{script}"]},
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": instance_count, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
        "ProcessingInputs": [s3_input("code", f"file://{code_dir}", CODE_PATH), *inputs],
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }
    if arguments:
        body["AppSpecification"]["ContainerArguments"] = list(arguments)
    if outputs:
        body["ProcessingOutputConfig"] = {"Outputs": list(outputs)}
    if environment:
        body["Environment"] = dict(environment)
    return body


def write_script(directory: Path, text: str, name: str = "process.py") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(textwrap.dedent(text))
    return directory


def wait_ended(client: SageMakerClient, name: str, timeout: float = END_TIMEOUT
               ) -> dict[str, Any]:
    """Wait until the job is terminal *and* its runner has exited; return describe."""
    wait_until_ended(client, runners.PROCESSING, name, timeout)
    return client.describe_processing_job(ProcessingJobName=name)


def job_log(client: SageMakerClient, name: str) -> str:
    path = client.store.root / "processing-jobs" / name / "logs" / "all.log"
    return path.read_text(errors="replace") if path.exists() else ""


def files_below(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file()}


def stop_processing_jobs(client: SageMakerClient) -> None:
    """Stop every processing job a failed test left running and wait for all to end."""
    for resource in client.store.list("processing-jobs"):
        if not runners.PROCESSING.settled(runners.describe_live(resource, runners.PROCESSING)):
            with contextlib.suppress(LocalModeError):  # it may have ended meanwhile
                client.stop_processing_job(ProcessingJobName=resource.name)
        wait_ended(client, resource.name)
