"""Processing jobs on the Docker backend, with an image that knows nothing of optml.

``optml-test/plain-processor`` is the Debian stand-in plus one shell script as its ENTRYPOINT:
it reads ``/opt/ml/config/processingjobconfig.json`` and ``resourceconfig.json`` as a
processing container on the service does, and keeps a file of its own under
``/opt/ml/processing`` that must stay visible next to the job's inputs and outputs.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from local_mode.docker_engine import JOB_LABEL, sweep
from local_mode.sagemaker import SageMakerClient
from tests.docker import harness
from tests.integration.processing_support import files_below, s3_input, s3_output
from toolkit.settings import Settings

pytestmark = pytest.mark.docker

PLAIN_PROCESSOR = "optml-test/plain-processor:latest"
JOB_WAIT_SECONDS = 180
TERMINAL = ("Completed", "Failed", "Stopped")

PROCESS_SH = r"""#!/bin/sh
# A processing program that knows nothing of optml: everything it knows comes from the two
# config files and its arguments.
set -eu
json() { python3 -c "import json,sys; print(eval('json.load(open(sys.argv[1]))' + sys.argv[2]))" "$@"; }
config=/opt/ml/config/processingjobconfig.json
me=$(json /opt/ml/config/resourceconfig.json '["current_host"]')
hosts=$(json /opt/ml/config/resourceconfig.json '["hosts"]')
job=$(json "$config" '["ProcessingJobName"]')
data=$(json "$config" '["ProcessingInputs"][0]["S3Input"]["LocalPath"]')
out=$(json "$config" '["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["LocalPath"]')
mode="${1:-report}"
echo "$me of $hosts running $job ($mode)"
case "$mode" in
  report)
    {
      echo "job=$job"
      echo "hosts=$hosts"
      echo "files=$(cd "$data" && ls | tr '\n' ' ')"
      echo "own=$(cat /opt/ml/processing/lookup/table.txt)"
      echo "peer=$(getent hosts algo-1 >/dev/null && echo resolves)"
      echo "greeting=${GREETING:-}"
    } > "$out/$me.txt"
    echo "$me reported" > /opt/ml/output/message ;;
  continuous)
    echo "first" > "$out/progress.txt"
    sleep 300 ;;
  sleep)
    sleep 300 ;;
  fail)
    echo "cannot parse row 3" > /opt/ml/output/message
    exit 7 ;;
esac
"""


@pytest.fixture(scope="session")
def processor_image(docker_client: docker.DockerClient) -> str:
    harness.ensure_images(docker_client, ("base",))
    return harness.build_in_memory(
        docker_client, PLAIN_PROCESSOR,
        f"FROM {harness.STANDIN_BASE}\n"
        "COPY process /usr/local/bin/process\n"
        "COPY table.txt /opt/ml/processing/lookup/table.txt\n"
        'ENTRYPOINT ["/usr/local/bin/process"]\n',
        {"process": (PROCESS_SH, 0o755), "table.txt": ("baked into the image\n", 0o644)})


class ProcessingJobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        env = dict(os.environ, OPTML_LOCAL_STOP_GRACE_SECONDS="5",
                   OPTML_LOCAL_CONTINUOUS_UPLOAD_SECONDS="0.2")
        self.client = SageMakerClient(Settings.from_environ(env), state_dir=root / "state",
                                      backend="docker")
        self.names: list[str] = []

    def create(self, image: str, data: Path, out: Path, *, mode: str = "report",
               count: int = 1, upload: str = "EndOfJob", **extra: Any) -> str:
        name = f"optml-test-processing-{uuid.uuid4().hex[:8]}"
        extra.setdefault("AppSpecification", {"ImageUri": image, "ContainerArguments": [mode]})
        self.client.create_processing_job(
            ProcessingJobName=name, RoleArn="arn:aws:iam::000000000000:role/local",
            ProcessingResources={"ClusterConfig": {"InstanceCount": count,
                                                   "InstanceType": "ml.m5.large",
                                                   "VolumeSizeInGB": 1}},
            ProcessingInputs=[s3_input("data", data.as_uri(), "/opt/ml/processing/input/data",
                                       S3DataDistributionType="ShardedByS3Key")],
            ProcessingOutputConfig={"Outputs": [s3_output(
                "out", out.as_uri(), "/opt/ml/processing/output", upload)]},
            StoppingCondition={"MaxRuntimeInSeconds": 600}, **extra)
        self.names.append(name)
        return name

    def wait(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + JOB_WAIT_SECONDS
        while True:
            d = self.client.describe_processing_job(ProcessingJobName=name)
            if d["ProcessingJobStatus"] in TERMINAL:
                return d
            assert time.monotonic() < deadline, f"{name} never ended:\n{self.log(name)}"
            time.sleep(0.1)

    def log(self, name: str) -> str:
        path = self.root / "state" / "processing-jobs" / name / "logs" / "all.log"
        return path.read_text(errors="replace") if path.exists() else "(no log)"

    def stop_all(self) -> None:
        for name in self.names:
            if self.client.describe_processing_job(ProcessingJobName=name)[
                    "ProcessingJobStatus"] not in TERMINAL:
                self.client.stop_processing_job(ProcessingJobName=name)
                self.wait(name)


def _ours(client: docker.DockerClient, names: list[str]) -> list[str]:
    found = [f"container {c.name}" for c in client.containers.list(
        all=True, filters={"label": JOB_LABEL}) if c.labels.get(JOB_LABEL) in names]
    found += [f"network {n.name}" for n in client.networks.list(filters={"label": JOB_LABEL})
              if (n.attrs.get("Labels") or {}).get(JOB_LABEL) in names]
    return found


@pytest.fixture
def jobs(tmp_path: Path, docker_client: docker.DockerClient,
         processor_image: str) -> Iterator[ProcessingJobs]:
    runner = ProcessingJobs(tmp_path)
    try:
        yield runner
        runner.stop_all()
        # a job that says it ended holds no container and no network
        assert _ours(docker_client, runner.names) == []
    finally:
        for name in runner.names:
            sweep(docker_client, {JOB_LABEL: name})


def _data(root: Path, count: int = 4) -> Path:
    data = root / "data"
    data.mkdir()
    for index in range(count):
        (data / f"part-{index}.csv").write_text(f"{index}\n")
    return data


def test_the_image_entrypoint_reads_the_config_on_two_sharded_instances(
        jobs: ProcessingJobs, processor_image: str, tmp_path: Path) -> None:
    data, out = _data(tmp_path), tmp_path / "out"
    name = jobs.create(processor_image, data, out, count=2, Environment={"GREETING": "hi"})
    d = jobs.wait(name)
    assert d["ProcessingJobStatus"] == "Completed", jobs.log(name)
    reports = {path: dict(line.split("=", 1) for line in text.splitlines())
               for path, text in files_below(out).items()}
    assert sorted(reports) == ["algo-1.txt", "algo-2.txt"]  # host names as on the service
    shards = [set(r["files"].split()) for r in reports.values()]
    assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert shards[0] | shards[1] == {p.name for p in data.iterdir()}
    for report in reports.values():
        assert report["job"] == name
        assert report["hosts"] == "['algo-1', 'algo-2']"
        assert report["own"] == "baked into the image"  # the image's own /opt/ml/processing
        assert report["peer"] == "resolves"
        assert report["greeting"] == "hi"
    assert d["ExitMessage"] in ("algo-1 reported", "algo-2 reported")
    assert "algo-2 of ['algo-1', 'algo-2'] running" in jobs.log(name)


def test_continuous_output_reaches_s3_before_the_end(jobs: ProcessingJobs, processor_image: str,
                                                     tmp_path: Path) -> None:
    data, out = _data(tmp_path, 1), tmp_path / "out"
    name = jobs.create(processor_image, data, out, mode="continuous", upload="Continuous")
    deadline = time.monotonic() + 60
    while not (out / "progress.txt").exists():
        assert time.monotonic() < deadline, jobs.log(name)
        time.sleep(0.05)
    assert jobs.client.describe_processing_job(ProcessingJobName=name)[
        "ProcessingJobStatus"] == "InProgress"
    assert (out / "progress.txt").read_text() == "first\n"
    jobs.client.stop_processing_job(ProcessingJobName=name)
    assert jobs.wait(name)["ProcessingJobStatus"] == "Stopped"


def test_stop_removes_every_container_and_network(jobs: ProcessingJobs, processor_image: str,
                                                  tmp_path: Path,
                                                  docker_client: docker.DockerClient) -> None:
    data, out = _data(tmp_path), tmp_path / "out"
    name = jobs.create(processor_image, data, out, mode="sleep", count=2)
    deadline = time.monotonic() + 60
    while jobs.log(name).count("running") < 2:
        assert time.monotonic() < deadline, jobs.log(name)
        time.sleep(0.1)
    assert len(_ours(docker_client, [name])) == 3  # two containers and the job's network
    containers = docker_client.containers.list(filters={"label": f"{JOB_LABEL}={name}"})
    assert {c.labels.get("optml.kind") for c in containers} == {"processing-job"}
    assert sorted(c.attrs["Config"]["Hostname"] for c in containers) == ["algo-1", "algo-2"]
    jobs.client.stop_processing_job(ProcessingJobName=name)
    d = jobs.wait(name)
    assert d["ProcessingJobStatus"] == "Stopped"
    assert _ours(docker_client, [name]) == []
    assert not out.exists()


def test_failure_carries_the_exit_message(jobs: ProcessingJobs, processor_image: str,
                                          tmp_path: Path) -> None:
    data, out = _data(tmp_path), tmp_path / "out"
    name = jobs.create(processor_image, data, out, mode="fail")
    d = jobs.wait(name)
    assert d["ProcessingJobStatus"] == "Failed"
    assert d["FailureReason"] == ("AlgorithmError: See job logs for more information "
                                  "(host algo-1 exited with code 7)")
    assert d["ExitMessage"] == "cannot parse row 3"


def test_container_entrypoint_replaces_the_image_entrypoint(
        jobs: ProcessingJobs, processor_image: str, tmp_path: Path) -> None:
    data, out = _data(tmp_path, 1), tmp_path / "out"
    name = jobs.create(processor_image, data, out, AppSpecification={
        "ImageUri": processor_image, "ContainerEntrypoint": ["sh", "-c"],
        "ContainerArguments": ["ls /opt/ml/processing/input/data > "
                               "/opt/ml/processing/output/listing.txt"]})
    assert jobs.wait(name)["ProcessingJobStatus"] == "Completed", jobs.log(name)
    assert (out / "listing.txt").read_text() == "part-0.csv\n"


def test_a_missing_image_is_refused_at_create(jobs: ProcessingJobs, tmp_path: Path) -> None:
    data, out = _data(tmp_path, 1), tmp_path / "out"
    with pytest.raises(jobs.client.exceptions.ValidationException,
                       match="AppSpecification.ImageUri"):
        jobs.create("optml-test/no-such-image:never", data, out)
    assert jobs.client.list_processing_jobs()["ProcessingJobSummaries"] == []
