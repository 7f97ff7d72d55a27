"""A job file whose code is a local directory (or tarball) next to it runs on the Docker backend:
the container gets the code read-only at /opt/ml/input/code-source/<name>, named there by the
config files and the environment, while the image's own (here empty) /opt/ml/code stays as it
is and DescribeTrainingJob shows the request as it was sent."""

from __future__ import annotations

import json
import os
import tarfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from local_mode.docker_engine import JOB_LABEL, sweep
from local_mode.request_files import load_request
from local_mode.sagemaker import SageMakerClient
from tests.docker import harness
from toolkit.settings import Settings

NO_CODE_IMAGE = "optml-test/no-code-trainer:latest"
CODE_SOURCE = "/opt/ml/input/code-source"
WAIT_SECONDS = 180.0

TRAIN = """
    import errno, json, os
    from pathlib import Path

    here = Path(__file__).resolve().parent
    image_code = sorted(os.listdir("/opt/ml/code"))
    try:
        (here / "written-by-the-job").write_text("x")
        write = "allowed"
    except OSError as exc:
        write = errno.errorcode.get(exc.errno, str(exc.errno))
    config = json.loads(Path("/opt/ml/input/config/hyperparameters.json").read_text())
    report = {
        "code_dir": str(here), "write": write, "image_code": image_code,
        "rows": len(Path(os.environ["SM_CHANNEL_TRAIN"], "rows.csv").read_text().splitlines()),
        "hyperparameter": config.get("sagemaker_submit_directory"),
        "variable": os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY"),
        "module_dir": os.environ.get("SM_MODULE_DIR"),
    }
    Path(os.environ["SM_MODEL_DIR"], "report.json").write_text(json.dumps(report))
"""


@pytest.fixture(scope="module")
def no_code_image(docker_client: docker.DockerClient) -> str:
    """The optml base image (on the stand-in Python) and nothing else: no code baked in."""
    harness.ensure_images(docker_client, ("base",))
    return harness.build_in_memory(docker_client, NO_CODE_IMAGE,
                                   "FROM optml/base:latest\nLABEL org.optml.test=no-code\n", {})


@pytest.fixture
def client(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[SageMakerClient]:
    env = dict(os.environ, OPTML_LOCAL_STOP_GRACE_SECONDS="5")
    sagemaker = SageMakerClient(Settings.from_environ(env), state_dir=tmp_path / "state",
                                backend="docker")
    try:
        yield sagemaker
    finally:
        for resource in sagemaker.store.list("training-jobs"):
            sweep(docker_client, {JOB_LABEL: resource.name})


def _project(root: Path, image: str, code: dict[str, Any]) -> Path:
    """A project directory: ``code/train.py``, ``data/rows.csv`` and ``jobs/train.yaml`` that
    names them relatively, plus ``code`` (extra request members)."""
    (root / "code").mkdir(parents=True)
    (root / "code" / "train.py").write_text(textwrap.dedent(TRAIN))
    (root / "data").mkdir()
    (root / "data" / "rows.csv").write_text("1\n2\n3\n4\n")
    job = root / "jobs" / "train.yaml"
    job.parent.mkdir()
    request: dict[str, Any] = {
        "TrainingJobName": f"codedir-{uuid.uuid4().hex[:10]}",
        "RoleArn": "arn:aws:iam::000000000000:role/local",
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "HyperParameters": {"sagemaker_program": "train.py"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "file://../data"}}}],
        "OutputDataConfig": {"S3OutputPath": "file://../out"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }
    for section, members in code.items():
        request[section] = {**request.get(section, {}), **members}
    job.write_text(yaml.safe_dump(request))
    return job


def _run(client: SageMakerClient, job: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    request = load_request(job)
    client.create_training_job(**request)
    name = request["TrainingJobName"]
    deadline = time.monotonic() + WAIT_SECONDS
    while (described := client.describe_training_job(TrainingJobName=name))[
            "TrainingJobStatus"] not in ("Completed", "Failed", "Stopped"):
        assert time.monotonic() < deadline, f"{name} never ended"
        time.sleep(0.1)
    log = client.store.get("training-jobs", name).logs_dir / "all.log"
    assert described["TrainingJobStatus"] == "Completed", (described, log.read_text())
    out = Path(request["OutputDataConfig"]["S3OutputPath"].removeprefix("file://"))
    with tarfile.open(out / name / "output" / "model.tar.gz") as archive:
        member = archive.extractfile("report.json")
        assert member is not None
        return request, {**json.loads(member.read()), "described": described}


@pytest.mark.docker
def test_a_local_code_directory_runs_read_only_in_an_image_without_code(
        tmp_path: Path, client: SageMakerClient, no_code_image: str) -> None:
    job = _project(tmp_path / "project", no_code_image,
                   {"HyperParameters": {"sagemaker_submit_directory": "../code"}})
    before = sorted(p.name for p in (tmp_path / "project" / "code").iterdir())
    request, report = _run(client, job)
    assert report["code_dir"] == f"{CODE_SOURCE}/code"
    assert report["write"] == "EROFS"  # read-only, even for the container's root
    assert report["image_code"] == []  # the image's /opt/ml/code: neither hidden nor filled
    assert report["rows"] == 4
    assert report["hyperparameter"] == report["module_dir"] == f"{CODE_SOURCE}/code"
    # what the job echoes is the request as sent (resolved against the job file at load time)
    code = str(tmp_path / "project" / "code")
    assert request["HyperParameters"]["sagemaker_submit_directory"] == code
    assert report["described"]["HyperParameters"] == request["HyperParameters"]
    assert sorted(p.name for p in (tmp_path / "project" / "code").iterdir()) == before


@pytest.mark.docker
def test_a_local_code_tarball_is_extracted_into_the_image_s_code_directory(
        tmp_path: Path, client: SageMakerClient, no_code_image: str) -> None:
    job = _project(tmp_path / "project", no_code_image,
                   {"Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "file://./source.tar.gz"}})
    with tarfile.open(job.parent / "source.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "project" / "code" / "train.py", "train.py")
    _, report = _run(client, job)
    assert report["code_dir"] == "/opt/ml/code"  # extracted where the toolkit extracts
    assert report["write"] == "allowed"
    assert report["image_code"] == ["train.py"]
    assert report["variable"] == f"file://{CODE_SOURCE}/source.tar.gz"
    assert report["described"]["Environment"] == {
        "SAGEMAKER_SUBMIT_DIRECTORY": (job.parent / "source.tar.gz").as_uri()}
