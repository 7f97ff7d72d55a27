"""Memory on the Docker backend: a job over its instance type's memory fails as out of memory,
and /dev/shm is sized for real data loaders (half the memory), not Docker's 64 MiB."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from local_mode.docker_engine import JOB_LABEL, sweep
from local_mode.instance_types import GIB, Machine, limits_for
from local_mode.sagemaker import SageMakerClient
from tests.docker import harness
from toolkit.settings import Settings

BASE = "optml/base:latest"
WAIT_SECONDS = 300.0
"""A liveness bound for one job, not a speed assertion."""

SHM_PY = """
import json, os, pathlib
stat = os.statvfs("/dev/shm")
pathlib.Path("/opt/ml/model/shm.json").write_text(json.dumps({"bytes": stat.f_blocks * stat.f_frsize}))
"""

HOG_PY = """
import numpy as np
held = []
while True:  # 256 MiB at a time, every page touched, until the limit is reached
    held.append(np.ones(32 * 1024 * 1024))
"""


@pytest.fixture(scope="module")
def base_image(docker_client: docker.DockerClient) -> str:
    try:
        docker_client.images.get(BASE)
    except docker.errors.ImageNotFound:
        harness.build_images(("base",))  # and the stand-in it is built on, when missing
    return BASE


class Jobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        env = dict(os.environ, OPTML_LOCAL_STOP_GRACE_SECONDS="5")
        self.client = SageMakerClient(Settings.from_environ(env), state_dir=root / "state",
                                      backend="docker")
        self.names: list[str] = []

    def run(self, script: str, instance_type: str) -> tuple[str, dict[str, Any]]:
        code = self.root / f"code-{len(self.names)}"
        code.mkdir()
        data = script.encode()
        with tarfile.open(code / "sourcedir.tar.gz", "w:gz") as archive:
            info = tarfile.TarInfo("job.py")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        name = f"dockermem-{uuid.uuid4().hex[:10]}"
        self.names.append(name)
        self.client.create_training_job(
            TrainingJobName=name, RoleArn="arn:aws:iam::000000000000:role/local",
            AlgorithmSpecification={"TrainingImage": BASE, "TrainingInputMode": "File"},
            HyperParameters={"sagemaker_program": "job.py", "sagemaker_submit_directory":
                             "file:///opt/ml/input/data/code/sourcedir.tar.gz"},
            InputDataConfig=[{"ChannelName": "code", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": code.as_uri(),
                "S3DataDistributionType": "FullyReplicated"}}}],
            OutputDataConfig={"S3OutputPath": (self.root / "output").as_uri()},
            ResourceConfig={"InstanceType": instance_type, "InstanceCount": 1,
                            "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 600})
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            described = self.client.describe_training_job(TrainingJobName=name)
            if described["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
                return name, described
            assert time.monotonic() < deadline, f"job {name} never ended"
            time.sleep(0.1)

    def model(self, name: str) -> dict[str, bytes]:
        with tarfile.open(self.root / "output" / name / "output" / "model.tar.gz") as archive:
            return {m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
                    for m in archive.getmembers() if m.isfile()}


@pytest.fixture
def jobs(tmp_path: Path, docker_client: docker.DockerClient, base_image: str) -> Iterator[Jobs]:
    runner = Jobs(tmp_path)
    try:
        yield runner
    finally:
        for name in runner.names:
            sweep(docker_client, {JOB_LABEL: name})
        left = [c.name for c in docker_client.containers.list(all=True, filters={
            "label": JOB_LABEL}) if c.labels.get(JOB_LABEL) in runner.names]
        assert left == []


@pytest.mark.docker
def test_shm_is_half_the_instance_memory(jobs: Jobs) -> None:
    name, described = jobs.run(SHM_PY, "ml.m5.large")
    assert described["TrainingJobStatus"] == "Completed", described
    expected = limits_for("ml.m5.large", Machine.current()).shm_bytes(Machine.current())
    assert expected is not None and expected >= GIB
    assert json.loads(jobs.model(name)["shm.json"])["bytes"] == expected


@pytest.mark.docker
def test_a_job_over_its_memory_fails_as_out_of_memory(jobs: Jobs) -> None:
    name, described = jobs.run(HOG_PY, "ml.t3.medium")  # 4 GiB
    assert described["TrainingJobStatus"] == "Failed", described
    reason = described["FailureReason"]
    assert reason.startswith("OutOfMemoryError: host algo-1 went over the memory of "
                             "ml.t3.medium and was killed"), reason
