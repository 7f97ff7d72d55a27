"""Bad input to ``optml local ...`` as a user meets it (real ``optml`` processes): one line on
stderr naming the file or field, exit status 2, no traceback, nothing left in the state dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROLE = "arn:aws:iam::000000000000:role/optml-local"
EXIT_INVALID = 2


def optml(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    state = tmp_path / "state"
    return subprocess.run([sys.executable, "-m", "toolkit.cli", "local", *args,
                           "--state-dir", str(state)], capture_output=True, text=True,
                          env={**os.environ, "OPTML_LOCAL_BACKEND": "process"}, timeout=120,
                          check=False)


def assert_refused(run: subprocess.CompletedProcess[str], *expected: str,
                   status: int = EXIT_INVALID) -> str:
    """Exit ``status`` and exactly one stderr line holding each of ``expected``; returns it."""
    assert run.returncode == status, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def write(path: Path, body: object) -> Path:
    path.write_text(json.dumps(body))
    return path


def no_resources_left(tmp_path: Path) -> bool:
    state = tmp_path / "state"
    return not state.exists() or not any(p for kind in state.iterdir() if kind.is_dir()
                                         for p in kind.iterdir())


def test_transform_job_missing_required_members(tmp_path: Path) -> None:
    job = write(tmp_path / "job.json", {"TransformJobName": "x"})
    line = assert_refused(optml(tmp_path, "transform", str(job)),
                          f"Error: {job}: Parameter validation failed:",
                          'Missing required parameter in input: "ModelName"')
    assert "TransformInput" in line and "TransformOutput" in line
    assert no_resources_left(tmp_path)


@pytest.mark.parametrize(("command", "name", "content", "expected"), [
    ("transform", "absent.json", None, "absent.json: no such file"),
    ("transform", "job.yaml", "a: [unclosed", "job.yaml: invalid YAML at line 1"),
    ("train", "job.json", "[1]", "job.json: a request file must hold one request object"),
])
def test_unusable_request_files(tmp_path: Path, command: str, name: str, content: str | None,
                                expected: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert_refused(optml(tmp_path, command, str(path)), f"Error: {tmp_path}/", expected)
    assert no_resources_left(tmp_path)


def test_training_job_with_a_field_of_the_wrong_type(tmp_path: Path) -> None:
    job = write(tmp_path / "job.json", {
        "TrainingJobName": "wrong-type", "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": (tmp_path / "out").as_uri()},
        "ResourceConfig": "x", "StoppingCondition": {"MaxRuntimeInSeconds": 60}})
    assert_refused(optml(tmp_path, "train", str(job)), f"Error: {job}:",
                   "Invalid type for parameter ResourceConfig, value: x")
    assert no_resources_left(tmp_path)


def test_deploy_with_a_model_data_url_the_service_refuses(tmp_path: Path) -> None:
    assert_refused(optml(tmp_path, "deploy", "m", "--model-data", "ftp://host/model.tar.gz"),
                   "Error: ", "ModelDataUrl")
    assert no_resources_left(tmp_path)


def test_invoke_refused_by_the_service_is_one_line_and_exit_1(tmp_path: Path) -> None:
    # invoke's documented status for an error the service answers (as for ModelError) is 1
    assert_refused(optml(tmp_path, "invoke", "", "--body", "x", "--content-type", "text/csv"),
                   "Error: 1 validation error(s) detected: Value '' at 'EndpointName'",
                   status=1)
