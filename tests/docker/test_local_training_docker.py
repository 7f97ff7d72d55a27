"""Local mode's Docker backend: training jobs run any contract-following image as the service would.

The first tests need no engine (instance-type limits, log line reassembly, command and mount
planning). The ``docker`` ones run real jobs through :class:`local_mode.sagemaker.SageMakerClient`
on images built here: ``optml-test/local-trainer`` (FROM optml/base, code baked in /opt/ml/code)
and ``optml-test/plain-trainer`` (the Debian stand-in + a ``train`` script, no optml at all).
After every job test no container or network labelled with the test's jobs may remain.
"""

from __future__ import annotations

import io
import json
import math
import os
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode.cluster.docker import reclaim_ownership
from local_mode.docker_engine import JOB_LABEL, LineAssembler, sweep
from local_mode.errors import ValidationException
from local_mode.instance_types import GIB, INSTANCE_TYPES, Machine, limits_for, lookup
from local_mode.sagemaker import SageMakerClient
from local_mode.training.hosts import Host
from local_mode.training.spec import TrainingJobSpec
from local_mode.training.workload import container_command, host_mounts
from tests.docker import harness, sdk_local
from toolkit.layout import Layout
from toolkit.settings import Settings

LOCAL_TRAINER = "optml-test/local-trainer:latest"
PLAIN_TRAINER = "optml-test/plain-trainer:latest"
BASE = "optml/base:latest"
JOB_PREFIX = "dockertest-"
TERMINAL = {"Completed", "Failed", "Stopped"}
JOB_WAIT_SECONDS = 300.0
"""A liveness bound for one job (a hung job fails the test instead of hanging it), not a speed
assertion."""

# -- the code the jobs run --------------------------------------------------------------------

PROBE_PY = r'''
import json, os, pathlib, socket, sys, time

host = os.environ["SM_CURRENT_HOST"]
hosts = json.loads(os.environ["SM_HOSTS"])
resolved = {}
for name in hosts:
    for _ in range(200):
        try:
            resolved[name] = socket.gethostbyname(name)
            break
        except OSError:
            time.sleep(0.1)

def read(path):
    try:
        return pathlib.Path(path).read_text().strip()
    except OSError:
        return None

def cpu_limit():
    v2 = read("/sys/fs/cgroup/cpu.max")
    if v2 is not None:
        quota, period = v2.split()
        return None if quota == "max" else int(quota) / int(period)
    quota = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    period = read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    return None if quota is None or int(quota) <= 0 else int(quota) / int(period)

def memory_limit():
    value = read("/sys/fs/cgroup/memory.max") or \
        read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    return None if value in (None, "max") or int(value) >= 1 << 60 else int(value)

channel = os.environ.get("SM_CHANNEL_TRAIN")
writable = None
if channel:
    try:
        pathlib.Path(channel, "probe-write").write_text("x")
        writable = True
    except OSError:
        writable = False
report = {
    "argv": sys.argv[1:], "hostname": socket.gethostname(), "resolved": resolved,
    "training_env": json.loads(os.environ["SM_TRAINING_ENV"]),
    "num_cpus": os.environ["SM_NUM_CPUS"],
    "cpu_limit": cpu_limit(), "memory_limit": memory_limit(),
    "platform_env": {k: os.environ.get(k) for k in ("TRAINING_JOB_NAME", "TRAINING_JOB_ARN",
                                                    "MY_VAR")},
    "channel_files": sorted(os.listdir(channel)) if channel else None,
    "channel_writable": writable,
    "config": {n: json.loads(read(f"/opt/ml/input/config/{n}")) for n in
               sorted(os.listdir("/opt/ml/input/config")) if n.endswith(".json")},
}
model = pathlib.Path(os.environ["SM_MODEL_DIR"])
(model / f"{host}.json").write_text(json.dumps(report))
(model / "shared.txt").write_text(host)
print("long:" + "x" * 200000)
print(f"probe done on {host}", flush=True)
'''

PIPE_PY = r'''
import os, pathlib, time
fifo = "/opt/ml/input/data/train_0"
while not os.path.exists(fifo):
    time.sleep(0.05)
with open(fifo, "rb") as reader:
    data = reader.read()
pathlib.Path(os.environ["SM_MODEL_DIR"], os.environ["SM_CURRENT_HOST"] + ".txt").write_bytes(data)
'''

SLEEP_PY = r'''
import time
print("ready to be stopped", flush=True)
time.sleep(600)
'''

FAIL_PY = r'''
raise ValueError("boom-marker from the user script")
'''

# A trainer that knows nothing of optml: python3 + `train` on PATH, reading the contract's files.
PLAIN_TRAIN = r'''#!/usr/bin/env python3
import json, os, pathlib, sys
config = pathlib.Path("/opt/ml/input/config")
files = {p.name: json.loads(p.read_text()) for p in sorted(config.glob("*.json"))}
host = files["resourceconfig.json"]["current_host"]
def read(path):
    try:
        return pathlib.Path(path).read_text().strip()
    except OSError:
        return None
data = pathlib.Path("/opt/ml/input/data")
report = {"argv": sys.argv[1:], "config": files,
          "env": {k: v for k, v in os.environ.items() if k.startswith(("TRAINING_JOB", "MY_"))},
          "sm_env": sorted(k for k in os.environ if k.startswith("SM_")),
          "cpu_quota": read("/sys/fs/cgroup/cpu.max") or
                       read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
          "data": {c.name: sorted(f.name for f in c.iterdir()) for c in sorted(data.iterdir())
                   if c.is_dir()}}
pathlib.Path("/opt/ml/model", host + ".json").write_text(json.dumps(report))
pathlib.Path("/opt/ml/output/data/summary.txt").write_text("trained on " + host)
print("plain trainer done on", host, flush=True)
'''


# -- unit tests (no engine) -------------------------------------------------------------------

def test_instance_types_table_is_sane() -> None:
    assert lookup("ml.m5.xlarge") is not None and lookup("ml.m5.xlarge").vcpus == 4
    assert lookup("ml.p3.2xlarge").memory_gib == 61
    assert lookup("local") is None and lookup("ml.nope.xlarge") is None
    for name, kind in INSTANCE_TYPES.items():
        assert name.startswith("ml.") and kind.name == name
        assert kind.vcpus >= 2 and kind.memory_gib >= 4


def test_limits_follow_the_type_when_the_machine_is_big_enough() -> None:
    limits = limits_for("ml.m5.xlarge", Machine(cpus=64, memory_bytes=512 * GIB))
    assert limits.cpus == 4 and limits.nano_cpus == 4_000_000_000
    assert limits.memory_bytes == 16 * GIB and limits.warning is None


def test_limits_are_capped_to_the_machine_with_a_warning() -> None:
    limits = limits_for("ml.p3.16xlarge", Machine(cpus=2, memory_bytes=24 * GIB))
    assert limits.cpus == 2 and limits.memory_bytes == 24 * GIB
    assert limits.warning is not None and "ml.p3.16xlarge" in limits.warning


@pytest.mark.parametrize("name", ["local", "local_gpu", "ml.unknown.large"])
def test_local_and_unknown_types_are_unlimited(name: str) -> None:
    limits = limits_for(name, Machine(cpus=2, memory_bytes=GIB))
    assert limits.cpus is None and limits.nano_cpus is None and limits.memory_bytes is None


def test_machine_reads_nproc_and_memtotal(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemFree: 1 kB\nMemTotal:       2048 kB\n")
    machine = Machine.current(meminfo)
    assert machine.memory_bytes == 2048 * 1024
    assert machine.cpus == len(os.sched_getaffinity(0))


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=40)), max_size=40))
@settings(max_examples=200, deadline=None)
def test_line_assembler_never_splits_or_loses_a_line(frames: list[tuple[int, bytes]]) -> None:
    assembler = LineAssembler()
    lines: dict[int, list[bytes]] = {1: [], 2: []}
    for stream, data in frames:
        lines[stream].extend(assembler.feed(stream, data))
    rest = assembler.flush()
    for stream in (1, 2):
        whole = b"".join(data for s, data in frames if s == stream)
        expected = [part + b"\n" for part in whole.split(b"\n")]
        expected[-1] = expected[-1][:-1]
        if not expected[-1]:
            expected.pop()
        got = lines[stream]
        assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in got)
        if expected and not expected[-1].endswith(b"\n"):
            assert expected[-1] in rest
            expected = expected[:-1]
        assert got == expected
    assert assembler.flush() == []


def _spec(**algorithm: Any) -> TrainingJobSpec:
    request = {
        "TrainingJobName": "j", "AlgorithmSpecification": {"TrainingImage": "img",
                                                           "TrainingInputMode": "File",
                                                           **algorithm},
        "OutputDataConfig": {"S3OutputPath": "file:///tmp/out"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1},
        "InputDataConfig": [
            {"ChannelName": "fast", "InputMode": "FastFile",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "file:///d"}}},
            {"ChannelName": "train",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "file:///d"}}}],
        "CheckpointConfig": {"S3Uri": "file:///ck", "LocalPath": "/checkpoints/here"},
    }
    return TrainingJobSpec.from_request(request)


def test_container_command_follows_the_contract() -> None:
    assert container_command(_spec()) == (None, ["train"])
    assert container_command(_spec(ContainerArguments=["fit", "--x"])) == (None, ["fit", "--x"])
    assert container_command(_spec(ContainerEntrypoint=["python3", "t.py"])) == \
        (["python3", "t.py"], [])
    assert container_command(_spec(ContainerEntrypoint=["sh"], ContainerArguments=["-c", "x"])
                             ) == (["sh"], ["-c", "x"])


def test_mounts_only_the_platform_directories(tmp_path: Path) -> None:
    """input, model, output and the checkpoint path: never /opt/ml itself, which would hide the
    image's own /opt/ml/code."""
    host = Host("algo-1", 0, 1, Layout(tmp_path / "algo-1"))
    mounts = {m.target: m for m in host_mounts(_spec(), host)}
    root = (tmp_path / "algo-1").resolve()
    assert "/opt/ml" not in mounts and "/opt/ml/code" not in mounts
    for name in ("input", "model", "output"):
        assert mounts[f"/opt/ml/{name}"].source == root / name
        assert not mounts[f"/opt/ml/{name}"].read_only
    assert mounts["/opt/ml/input/data/fast"].read_only
    assert "/opt/ml/input/data/train" not in mounts  # File mode lives in the input mount
    assert mounts["/checkpoints/here"].source == root / "_abs" / "checkpoints" / "here"
    assert mounts["/checkpoints/here"].as_docker()["ReadOnly"] is False
    assert set(mounts) == {"/opt/ml/input", "/opt/ml/model", "/opt/ml/output",
                           "/opt/ml/input/data/fast", "/checkpoints/here"}


def test_checkpoints_are_mounted_only_when_the_job_configures_them(tmp_path: Path) -> None:
    host = Host("algo-1", 0, 1, Layout(tmp_path / "algo-1"))
    request = {
        "TrainingJobName": "j", "AlgorithmSpecification": {"TrainingImage": "img",
                                                           "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "file:///tmp/out"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1},
    }
    plain = {m.target for m in host_mounts(TrainingJobSpec.from_request(request), host)}
    assert plain == {"/opt/ml/input", "/opt/ml/model", "/opt/ml/output"}
    request["CheckpointConfig"] = {"S3Uri": "file:///ck"}
    default = {m.target: m for m in host_mounts(TrainingJobSpec.from_request(request), host)}
    assert default["/opt/ml/checkpoints"].source == \
        (tmp_path / "algo-1" / "checkpoints").resolve()
    request["CheckpointConfig"] = {"S3Uri": "file:///ck", "LocalPath": "/opt/ml/model/ck"}
    inside = {m.target for m in host_mounts(TrainingJobSpec.from_request(request), host)}
    assert inside == plain  # already inside the model mount


# -- engine fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def trainer_images(docker_client: docker.DockerClient) -> dict[str, str]:
    harness.ensure_images(docker_client, ("base",))
    local = harness.build_in_memory(
        docker_client, LOCAL_TRAINER,
        f"FROM {BASE}\nCOPY program /opt/ml/code\n",
        {"program/probe.py": (PROBE_PY, 0o644), "program/pipe.py": (PIPE_PY, 0o644),
         "program/sleep.py": (SLEEP_PY, 0o644), "program/fail.py": (FAIL_PY, 0o644)})
    plain = harness.build_in_memory(
        docker_client, PLAIN_TRAINER,
        f"FROM {harness.STANDIN_BASE}\nCOPY train /usr/local/bin/train\n",
        {"train": (PLAIN_TRAIN, 0o755)})
    return {"base": BASE, "local": local, "plain": plain}


class Jobs:
    """Create jobs through the local client, wait for them, read their artifacts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.output = root / "output"
        env = dict(os.environ, OPTML_LOCAL_STOP_GRACE_SECONDS="5")
        self.client = SageMakerClient(Settings.from_environ(env), state_dir=root / "state",
                                      backend="docker")
        self.names: list[str] = []

    def create(self, image: str, *, count: int = 1, instance_type: str = "local",
               channels: list[dict[str, Any]] | None = None, **extra: Any) -> str:
        name = f"{JOB_PREFIX}{uuid.uuid4().hex[:10]}"
        algorithm = {"TrainingImage": image, "TrainingInputMode": "File",
                     **extra.pop("algorithm", {})}
        self.client.create_training_job(
            TrainingJobName=name, RoleArn="arn:aws:iam::000000000000:role/local",
            AlgorithmSpecification=algorithm,
            OutputDataConfig={"S3OutputPath": self.output.as_uri()},
            ResourceConfig={"InstanceType": instance_type, "InstanceCount": count,
                            "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 600},
            **({"InputDataConfig": channels} if channels else {}), **extra)
        self.names.append(name)
        return name

    def wait(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + JOB_WAIT_SECONDS
        while True:
            description = self.client.describe_training_job(TrainingJobName=name)
            if description["TrainingJobStatus"] in TERMINAL:
                return description
            assert time.monotonic() < deadline, f"job {name} never ended:\n{self.log(name)}"
            time.sleep(0.1)

    def run(self, image: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        name = self.create(image, **kwargs)
        return name, self.wait(name)

    def log(self, name: str, host: str = "all") -> str:
        path = self.root / "state" / "training-jobs" / name / "logs" / f"{host}.log"
        return path.read_text(errors="replace") if path.exists() else "(no log)"

    def archive(self, name: str, which: str = "model") -> dict[str, bytes]:
        path = self.output / name / "output" / f"{which}.tar.gz"
        with tarfile.open(path) as archive:
            return {m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
                    for m in archive.getmembers() if m.isfile()}

    def stop_all(self) -> None:
        for name in self.names:
            if self.client.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] \
                    not in TERMINAL:
                self.client.stop_training_job(TrainingJobName=name)
                self.wait(name)


def _leftovers(client: docker.DockerClient, names: list[str]) -> list[str]:
    """Containers and networks still labelled with one of ``names`` (other runs of this file
    may have jobs of their own going on at the same time: only ours count)."""
    found = []
    for container in client.containers.list(all=True, filters={"label": JOB_LABEL}):
        if container.labels.get(JOB_LABEL) in names:
            found.append(f"container {container.name}")
    for network in client.networks.list(filters={"label": JOB_LABEL}):
        if (network.attrs.get("Labels") or {}).get(JOB_LABEL) in names:
            found.append(f"network {network.name}")
    return found


@pytest.fixture
def jobs(tmp_path: Path, docker_client: docker.DockerClient,
         trainer_images: dict[str, str]) -> Iterator[Jobs]:
    runner = Jobs(tmp_path)
    try:
        yield runner
        runner.stop_all()
        assert _leftovers(docker_client, runner.names) == []
    finally:
        for name in runner.names:
            sweep(docker_client, {JOB_LABEL: name})


def _channel(name: str, uri: str, **fields: Any) -> dict[str, Any]:
    distribution = fields.pop("distribution", "FullyReplicated")
    return {"ChannelName": name, **fields,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                            "S3DataDistributionType": distribution}}}


def _data_dir(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def _source_tarball(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


# -- jobs -------------------------------------------------------------------------------------

@pytest.mark.docker
def test_single_host_job_on_optml_base_with_code_tarball_and_limits(jobs: Jobs,
                                                                    tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    _source_tarball(code / "sourcedir.tar.gz", {"probe.py": PROBE_PY})
    train = _data_dir(tmp_path / "train", {"a.csv": "1,2\n", "b.csv": "3,4\n"})
    name, result = jobs.run(
        BASE, instance_type="ml.t3.medium",
        channels=[_channel("code", code.as_uri()),
                  _channel("train", train.as_uri(), InputMode="FastFile")],
        HyperParameters={"sagemaker_program": "probe.py", "epochs": "3",
                         "sagemaker_submit_directory":
                             "file:///opt/ml/input/data/code/sourcedir.tar.gz"},
        Environment={"MY_VAR": "from-the-job"})
    assert result["TrainingJobStatus"] == "Completed", (result, jobs.log(name))
    report = json.loads(jobs.archive(name)["algo-1.json"])
    assert report["argv"] == ["--epochs", "3"]
    assert report["hostname"] == "algo-1"
    assert report["platform_env"] == {"TRAINING_JOB_NAME": name, "MY_VAR": "from-the-job",
                                      "TRAINING_JOB_ARN": result["TrainingJobArn"]}
    assert report["channel_files"] == ["a.csv", "b.csv"]
    assert report["channel_writable"] is False  # FastFile is mounted read-only
    assert report["config"]["inputdataconfig.json"]["train"]["TrainingInputMode"] == "FastFile"
    limits = limits_for("ml.t3.medium", Machine.current())
    assert limits.cpus is not None and limits.memory_bytes is not None
    # the cgroup (v2 cpu.max / v1 cfs quota) holds the type's limits, and SM_NUM_CPUS agrees
    assert report["cpu_limit"] == limits.cpus
    assert report["memory_limit"] == limits.memory_bytes
    assert report["num_cpus"] == str(math.ceil(limits.cpus))
    # a 200000-character line arrives whole, on its own line
    assert ("long:" + "x" * 200000 + "\n") in jobs.log(name, "algo-1").splitlines(keepends=True)


@pytest.mark.docker
def test_two_hosts_resolve_each_other_and_merge_their_models(jobs: Jobs) -> None:
    name, result = jobs.run(LOCAL_TRAINER, count=2, instance_type="ml.m5.large",
                            Environment={"SAGEMAKER_PROGRAM": "probe.py"})
    assert result["TrainingJobStatus"] == "Completed", (result, jobs.log(name))
    model = jobs.archive(name)
    assert sorted(model) == ["algo-1.json", "algo-2.json", "shared.txt"]
    assert model["shared.txt"] == b"algo-1"  # both wrote it: the master's copy wins
    for host in ("algo-1", "algo-2"):
        report = json.loads(model[f"{host}.json"])
        assert report["hostname"] == host
        assert sorted(report["resolved"]) == ["algo-1", "algo-2"]
        assert report["resolved"]["algo-1"] != report["resolved"]["algo-2"]
        assert report["training_env"]["master_hostname"] == "algo-1"
        assert report["training_env"]["is_master"] is (host == "algo-1")
        assert report["config"]["resourceconfig.json"]["current_host"] == host
        assert report["config"]["resourceconfig.json"]["network_interface_name"] == "eth0"


@pytest.mark.docker
def test_pipe_mode_sharded_over_three_hosts_delivers_every_object_once(jobs: Jobs,
                                                                       tmp_path: Path) -> None:
    objects = {f"part-{i:02d}": f"object-{i:02d}\n" for i in range(7)}
    data = _data_dir(tmp_path / "pipe", objects)
    name, result = jobs.run(
        LOCAL_TRAINER, count=3,
        channels=[_channel("train", data.as_uri(), InputMode="Pipe",
                           distribution="ShardedByS3Key")],
        Environment={"SAGEMAKER_PROGRAM": "pipe.py"})
    assert result["TrainingJobStatus"] == "Completed", (result, jobs.log(name))
    model = jobs.archive(name)
    assert sorted(model) == ["algo-1.txt", "algo-2.txt", "algo-3.txt"]
    received = [line for body in model.values() for line in body.decode().splitlines()]
    assert sorted(received) == sorted(text.strip() for text in objects.values())
    assert all(body for body in model.values())  # each host got a share


@pytest.mark.docker
def test_an_image_without_optml_runs_the_same(jobs: Jobs, tmp_path: Path) -> None:
    train = _data_dir(tmp_path / "train", {"x.txt": "x"})
    name, result = jobs.run(PLAIN_TRAINER, channels=[_channel("train", train.as_uri())],
                            HyperParameters={"alpha": "0.5"}, Environment={"MY_VAR": "v"})
    assert result["TrainingJobStatus"] == "Completed", (result, jobs.log(name))
    report = json.loads(jobs.archive(name)["algo-1.json"])
    assert report["argv"] == []  # `train` was argv[0]: no ENTRYPOINT, so train ran from PATH
    assert report["config"]["hyperparameters.json"] == {"alpha": "0.5"}
    assert report["config"]["resourceconfig.json"]["hosts"] == ["algo-1"]
    assert report["env"] == {"MY_VAR": "v", "TRAINING_JOB_NAME": name,
                             "TRAINING_JOB_ARN": result["TrainingJobArn"]}
    assert report["sm_env"] == []  # the platform sets no SM_* variables; toolkits do
    assert report["data"] == {"train": ["x.txt"]}
    assert report["cpu_quota"] in ("max 100000", "-1")  # InstanceType local: no CPU limit
    assert jobs.archive(name, "output") == {"summary.txt": b"trained on algo-1"}
    assert "plain trainer done on algo-1" in jobs.log(name, "algo-1")


@pytest.mark.docker
def test_container_entrypoint_and_arguments(jobs: Jobs) -> None:
    both = jobs.create(PLAIN_TRAINER, algorithm={
        "ContainerEntrypoint": ["python3", "/usr/local/bin/train"],
        "ContainerArguments": ["--from", "entrypoint"]})
    arguments = jobs.create(PLAIN_TRAINER, algorithm={
        "ContainerArguments": ["train", "--only", "arguments"]})
    for name, argv in ((both, ["--from", "entrypoint"]),
                       (arguments, ["--only", "arguments"])):
        result = jobs.wait(name)
        assert result["TrainingJobStatus"] == "Completed", (result, jobs.log(name))
        assert json.loads(jobs.archive(name)["algo-1.json"])["argv"] == argv


@pytest.mark.docker
def test_an_entrypoint_that_cannot_start_fails_the_job_naming_it(
        jobs: Jobs, docker_client: docker.DockerClient) -> None:
    name = jobs.create(PLAIN_TRAINER, algorithm={"ContainerEntrypoint": ["/no/such/program"]})
    result = jobs.wait(name)
    assert result["TrainingJobStatus"] == "Failed", (result, jobs.log(name))
    assert "/no/such/program" in result["FailureReason"], result["FailureReason"]
    assert docker_client.containers.list(all=True,
                                         filters={"label": f"{JOB_LABEL}={name}"}) == []


@pytest.mark.docker
def test_stop_ends_stopped_with_the_container_gone(jobs: Jobs,
                                                   docker_client: docker.DockerClient) -> None:
    name = jobs.create(LOCAL_TRAINER, Environment={"SAGEMAKER_PROGRAM": "sleep.py"})
    deadline = time.monotonic() + JOB_WAIT_SECONDS
    while "ready to be stopped" not in jobs.log(name, "algo-1"):
        assert time.monotonic() < deadline, jobs.log(name)
        time.sleep(0.1)
    assert docker_client.containers.list(filters={"label": f"{JOB_LABEL}={name}"})
    jobs.client.stop_training_job(TrainingJobName=name)
    result = jobs.wait(name)
    assert result["TrainingJobStatus"] == "Stopped", (result, jobs.log(name))
    assert docker_client.containers.list(all=True,
                                         filters={"label": f"{JOB_LABEL}={name}"}) == []


@pytest.mark.docker
def test_failing_script_fails_the_job_with_its_traceback(jobs: Jobs) -> None:
    name, result = jobs.run(LOCAL_TRAINER, Environment={"SAGEMAKER_PROGRAM": "fail.py"})
    assert result["TrainingJobStatus"] == "Failed", (result, jobs.log(name))
    assert "boom-marker" in result["FailureReason"]
    assert "ValueError" in result["FailureReason"]


@pytest.mark.docker
def test_missing_image_is_refused_with_a_reason_naming_it(jobs: Jobs) -> None:
    image = "optml-test/does-not-exist:never"
    with pytest.raises(ValidationException) as caught:
        jobs.create(image)
    assert image in caught.value.message and "never pulls" in caught.value.message
    assert jobs.client.list_training_jobs()["TrainingJobSummaries"] == []


@pytest.mark.docker
def test_reclaim_ownership_hands_container_files_back(tmp_path: Path,
                                                      docker_client: docker.DockerClient,
                                                      trainer_images: dict[str, str]) -> None:
    tree = tmp_path / "tree"
    (tree / "model").mkdir(parents=True)
    (tree / "model" / "weights").write_text("w")
    labels = {JOB_LABEL: f"{JOB_PREFIX}reclaim"}
    try:
        # an image with an ENTRYPOINT (optml's): the helper container must bypass it
        reclaim_ownership(docker_client, LOCAL_TRAINER, tree, 4321, 4321, labels)
        assert {p.stat().st_uid for p in [tree, *tree.rglob("*")]} == {4321}
        reclaim_ownership(docker_client, PLAIN_TRAINER, tree, os.getuid(), os.getgid(), labels)
        assert {p.stat().st_uid for p in [tree, *tree.rglob("*")]} == {os.getuid()}
    finally:
        sweep(docker_client, labels)
    assert _leftovers(docker_client, [labels[JOB_LABEL]]) == []


# -- parity with the SageMaker Python SDK's local mode ----------------------------------------

# Runs in the SDK's interpreter after sdk_local.PRELUDE (session, ARGS, report).
SDK_JOB = r'''
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput

image, train_uri, stream_uri, output_uri = ARGS
estimator = Estimator(image_uri=image, role="arn:aws:iam::000000000000:role/local",
                      instance_count=1, instance_type="local", output_path=output_uri,
                      sagemaker_session=session, hyperparameters={"alpha": "0.5"},
                      environment={"MY_VAR": "v"})
estimator.fit({"train": TrainingInput(train_uri),
               "stream": TrainingInput(stream_uri, input_mode="Pipe")}, logs=False)
'''


def _run_sdk_local_mode(tmp_path: Path, image: str, train: Path, stream: Path) -> Path:
    """Run the SDK's local mode (docker-compose underneath) on ``image``; its output dir.

    :func:`tests.docker.sdk_local.run_sdk` keeps it offline and removes what docker-compose
    leaves behind, also when the run fails.
    """
    output = tmp_path / "sdk-output"
    workdir = tmp_path / "sdk"
    sdk_local.run_sdk(SDK_JOB, [image, train.as_uri(), stream.as_uri(), output.as_uri()],
                      workdir, timeout=JOB_WAIT_SECONDS).check()
    return output


def _read_archive(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
                for m in archive.getmembers() if m.isfile()}


@pytest.mark.docker
def test_same_image_and_job_match_the_sdk_local_mode(jobs: Jobs, tmp_path: Path) -> None:
    train = _data_dir(tmp_path / "train", {"x.txt": "x"})
    stream = _data_dir(tmp_path / "stream", {"s.txt": "s"})
    sdk_output = _run_sdk_local_mode(tmp_path, PLAIN_TRAINER, train, stream)
    sdk_model = _read_archive(sdk_output / "model.tar.gz")
    (sdk_file,) = sdk_model
    sdk = json.loads(sdk_model[sdk_file])

    name, result = jobs.run(PLAIN_TRAINER, HyperParameters={"alpha": "0.5"},
                            Environment={"MY_VAR": "v"},
                            channels=[_channel("train", train.as_uri()),
                                      _channel("stream", stream.as_uri(), InputMode="Pipe")])
    assert result["TrainingJobStatus"] == "Completed", (result, jobs.log(name))
    ours = json.loads(jobs.archive(name)["algo-1.json"])

    # the same invocation and hyperparameters
    assert ours["argv"] == sdk["argv"] == []
    assert ours["config"]["hyperparameters.json"] == sdk["config"]["hyperparameters.json"]
    assert ours["sm_env"] == sdk["sm_env"] == []
    assert ours["data"]["train"] == sdk["data"]["train"] == ["x.txt"]
    # resourceconfig.json: the SDK names hosts algo-1-<random>; we use the service's algo-1
    sdk_resources = sdk["config"]["resourceconfig.json"]
    ours_resources = ours["config"]["resourceconfig.json"]
    assert sdk_resources["current_host"].startswith("algo-1-")
    assert sdk_resources["hosts"] == [sdk_resources["current_host"]]
    assert ours_resources["current_host"] == "algo-1" and ours_resources["hosts"] == ["algo-1"]
    assert ours_resources["network_interface_name"] == \
        sdk_resources["network_interface_name"] == "eth0"
    assert set(sdk_resources) <= set(ours_resources)  # we add current_group_name, groups
    # inputdataconfig.json: the SDK turns Pipe into File and omits the distribution fields
    sdk_inputs = sdk["config"]["inputdataconfig.json"]
    ours_inputs = ours["config"]["inputdataconfig.json"]
    assert sdk_inputs["stream"]["TrainingInputMode"] == "File"
    assert ours_inputs["stream"]["TrainingInputMode"] == "Pipe"
    assert sdk["data"]["stream"] == ["s.txt"] and "stream" not in ours["data"]  # a FIFO
    for channel in ("train", "stream"):
        assert set(sdk_inputs[channel]) <= set(ours_inputs[channel])
    assert ours_inputs["train"]["S3DistributionType"] == "FullyReplicated"
    # environment: both pass the job's Environment and TRAINING_JOB_NAME; the SDK has no ARN
    assert sdk["env"]["MY_VAR"] == ours["env"]["MY_VAR"] == "v"
    assert "TRAINING_JOB_ARN" not in sdk["env"] and "TRAINING_JOB_ARN" in ours["env"]
    # artifacts: the same model file; the SDK nests output/data under data/ in output.tar.gz
    assert sdk_file.startswith("algo-1-")
    sdk_output_files = _read_archive(sdk_output / "output.tar.gz")
    assert sdk_output_files == {"data/summary.txt": f"trained on {sdk_file[:-5]}".encode()}
    assert jobs.archive(name, "output") == {"summary.txt": b"trained on algo-1"}
