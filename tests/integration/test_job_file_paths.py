"""A job file names its code, data and output relative to itself: ``optml local train JOB`` run
from an unrelated directory trains on the file's ``./data`` with the file's ``./code`` and puts
the model in the file's ``./out`` (process backend, a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.integration.local_training_support import (
    ROLE,
    assert_nothing_left,
    job_name,
    read_tarball,
    write_code,
)

TRAIN = """
    import os
    from pathlib import Path
    data = Path(os.environ["SM_CHANNEL_TRAIN"], "rows.csv").read_text()
    Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text(
        f"{len(data.splitlines())} rows, code in {Path(__file__).parent.name}")
"""


def _optml(cwd: Path, state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "toolkit.cli", "local", *args, "--state-dir", str(state_dir)],
        cwd=cwd, capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "OPTML_LOCAL_STOP_GRACE_SECONDS": "2"})


def test_a_job_file_s_relative_paths_resolve_against_the_file_from_any_cwd(
        tmp_path: Path) -> None:
    project = tmp_path / "project dir"
    write_code(project / "code", TRAIN)
    (project / "data").mkdir()
    (project / "data" / "rows.csv").write_text("1,2\n3,4\n5,6\n")
    name = job_name("paths")
    job = project / "jobs" / "train.yaml"
    job.parent.mkdir()
    job.write_text(yaml.safe_dump({
        "TrainingJobName": name, "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "optml/local-test:latest",
                                   "TrainingInputMode": "File"},
        "HyperParameters": {"sagemaker_program": "train.py",
                            "sagemaker_submit_directory": "../code"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "file://../data"}}}],
        "OutputDataConfig": {"S3OutputPath": "file://./../out"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state_dir = tmp_path / "state"

    run = _optml(elsewhere, state_dir, "train", os.path.relpath(job, elsewhere), "--wait",
                 "--backend", "process")
    assert run.returncode == 0, (run.stdout, run.stderr)
    model = read_tarball(project / "out" / name / "output" / "model.tar.gz")
    assert model == {"model.txt": b"3 rows, code in code"}
    assert sorted(p.name for p in elsewhere.iterdir()) == []  # nothing landed in the cwd

    described = json.loads(_optml(elsewhere, state_dir, "describe", name).stdout)
    # the job keeps what the client was given: absolute paths, from any later cwd
    assert described["HyperParameters"]["sagemaker_submit_directory"] == str(project / "code")
    assert described["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == \
        (project / "data").as_uri()
    assert described["OutputDataConfig"]["S3OutputPath"] == (project / "out").as_uri()
    assert_nothing_left(state_dir)


def test_a_job_file_naming_code_that_is_not_there_is_refused_at_create(tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps({
        "TrainingJobName": job_name("nocode"), "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "optml/local-test:latest",
                                   "TrainingInputMode": "File"},
        "Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "./missing-code"},
        "OutputDataConfig": {"S3OutputPath": "file://./out"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = _optml(elsewhere, tmp_path / "state", "train", str(job), "--backend", "process")
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert f"Environment.SAGEMAKER_SUBMIT_DIRECTORY: user code {tmp_path}/missing-code: no " \
           "such file or directory" in run.stderr
    assert not (tmp_path / "out").exists()
