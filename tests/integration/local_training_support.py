"""Shared helpers for the local-mode training tests: requests, a process-backend client on a temp
state directory, waiting, reading artifacts, and the "nothing left behind" check."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import textwrap
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_mode import runners
from local_mode.sagemaker import SageMakerClient
from toolkit.settings import Settings

ROLE = "arn:aws:iam::000000000000:role/optml-local"
END_TIMEOUT = 120.0


def job_name(prefix: str = "job") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def write_code(directory: Path, script: str, name: str = "train.py") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(textwrap.dedent(script))
    return directory


def channel(name: str, uri: str, **extra: Any) -> dict[str, Any]:
    """An InputDataConfig entry; ``extra`` keys go into S3DataSource when they belong there."""
    source_keys = {"S3DataType", "S3DataDistributionType", "AttributeNames"}
    source = {"S3DataType": "S3Prefix", "S3Uri": uri,
              **{k: v for k, v in extra.items() if k in source_keys}}
    return {"ChannelName": name, "DataSource": {"S3DataSource": source},
            **{k: v for k, v in extra.items() if k not in source_keys}}


def request(name: str, code_dir: Path, output_uri: str, *, channels: list[dict[str, Any]] = (),
            hyperparameters: Mapping[str, str] | None = None, instance_count: int = 1,
            max_runtime: int = 120, **extra: Any) -> dict[str, Any]:
    """A CreateTrainingJob request that runs ``train.py`` from ``code_dir``."""
    body: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "optml/local-test:latest",
                                   "TrainingInputMode": "File"},
        "HyperParameters": {"sagemaker_program": "train.py",
                            "sagemaker_submit_directory": str(code_dir),
                            **(hyperparameters or {})},
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": instance_count,
                           "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }
    if channels:
        body["InputDataConfig"] = list(channels)
    body.update(extra)
    return body


@dataclass
class LocalEnv:
    """A process-backend client on its own state directory, plus scratch folders."""

    root: Path
    client: SageMakerClient

    @property
    def state_dir(self) -> Path:
        return self.client.store.root

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_uri(self) -> str:
        return f"file://{self.output_dir}"

    def wait(self, name: str, timeout: float = END_TIMEOUT) -> dict[str, Any]:
        """Wait until the job is terminal *and* its runner has exited; return describe."""
        wait_until_ended(self.client, runners.TRAINING, name, timeout)
        return self.client.describe_training_job(TrainingJobName=name)

    def wait_for_log(self, name: str, text: str, timeout: float = END_TIMEOUT) -> None:
        path = self.state_dir / "training-jobs" / name / "logs" / "all.log"
        deadline = time.monotonic() + timeout
        while not (path.exists() and text in path.read_text(errors="replace")):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared in {path}")
            time.sleep(0.05)

    def log(self, name: str) -> str:
        return (self.state_dir / "training-jobs" / name / "logs" / "all.log").read_text()

    def artifacts(self, name: str, which: str = "model.tar.gz") -> dict[str, bytes]:
        return read_tarball(self.output_dir / name / "output" / which)


def wait_until_ended(client: SageMakerClient, lifecycle: runners.Lifecycle, name: str,
                     timeout: float = END_TIMEOUT) -> None:
    """Wait until a job of ``lifecycle``'s kind is terminal *and* its runner has exited."""
    resource = client.store.get(lifecycle.kind, name)
    deadline = time.monotonic() + timeout
    while not runners.ended(resource, lifecycle):
        if time.monotonic() > deadline:
            raise AssertionError(f"{lifecycle.what} {name} did not end within {timeout} s: "
                                 f"{runners.describe_live(resource, lifecycle)}")
        time.sleep(0.05)


def make_env(root: Path, extra_environ: Mapping[str, str] | None = None,
             grace: float = 2.0) -> LocalEnv:
    environ = {**os.environ, "OPTML_LOCAL_STOP_GRACE_SECONDS": str(grace),
               **(extra_environ or {})}
    settings = Settings.from_environ(environ)
    client = SageMakerClient(settings, state_dir=root / "state", backend="process")
    return LocalEnv(root, client)


@pytest.fixture
def local_env(tmp_path: Path) -> Iterator[LocalEnv]:
    env = make_env(tmp_path)
    try:
        yield env
    finally:
        stop_everything(env)


def stop_everything(env: LocalEnv) -> None:
    """Stop any job a failed test left running, wait for it, then check nothing is left."""
    for resource in env.client.store.list("training-jobs"):
        if env.client.describe_training_job(TrainingJobName=resource.name)[
                "TrainingJobStatus"] in ("InProgress", "Stopping"):
            with contextlib.suppress(Exception):  # it may have ended meanwhile
                env.client.stop_training_job(TrainingJobName=resource.name)
        env.wait(resource.name)
    assert_nothing_left(env.state_dir)


def read_tarball(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()  # type: ignore[union-attr]
                if m.isfile()}


def tarball_bytes(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def processes_using(path: Path) -> list[str]:
    """Live processes whose command line mentions ``path`` or whose cwd is below it."""
    found = []
    text = str(path)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if status == "Z":
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            cwd, environ = "", ""
        outputs = []
        for fd in ("1", "2"):
            with contextlib.suppress(OSError):
                outputs.append(os.readlink(entry / "fd" / fd))
        # host processes run with SAGEMAKER_BASE_DIR inside the state dir, the user's children
        # inherit it; a cold runner has the state dir on its command line, a warm-started one
        # (local_mode.warm_runners) writes its output to the resource's runner.log
        if text in cmdline or text in environ or cwd == text or cwd.startswith(text + "/") \
                or any(out.startswith(text + "/") for out in outputs):
            found.append(f"{entry.name}: {cmdline.strip()} (cwd {cwd})")
    return found


def fifos_below(path: Path) -> list[Path]:
    import stat

    return [p for p in path.rglob("*") if not p.is_symlink() and stat.S_ISFIFO(p.lstat().st_mode)]


def assert_nothing_left(state_dir: Path) -> None:
    """No runner or host process, no FIFO and no work directory is left after a job ends."""
    # the runner removes its pid file just before its interpreter exits: give it that moment
    deadline = time.monotonic() + 10
    while (leftovers := processes_using(state_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leftovers, f"processes left behind: {leftovers}"
    assert not fifos_below(state_dir), f"FIFOs left behind: {fifos_below(state_dir)}"
    for kind in ("training-jobs", "processing-jobs"):
        jobs = state_dir / kind
        if not jobs.is_dir():
            continue
        works = [p / "work" for p in jobs.iterdir() if (p / "work").exists()]
        assert not works, f"work directories left behind: {works}"
        scratch = [p / "artifacts" for p in jobs.iterdir() if (p / "artifacts").exists()]
        assert not scratch, f"artifact scratch left behind: {scratch}"


def read_json_member(files: Mapping[str, bytes], name: str) -> Any:
    return json.loads(files[name])
