"""``optml local process | processing-jobs | describe-processing-job | processing-logs |
stop-processing-job`` as real subprocesses driving real processing jobs on the process backend.

The job files are YAML, as a user writes them: a Python script staged from a ``file://`` code
input and run through ``ContainerEntrypoint`` (what the process backend needs), ``file://`` data
in and out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.local_training_support import (
    END_TIMEOUT,
    ROLE,
    LocalEnv,
    assert_nothing_left,
    job_name,
    make_env,
)
from tests.integration.processing_support import stop_processing_jobs

CODE = "/opt/ml/processing/input/code"
DATA = "/opt/ml/processing/input/data"
OUT = "/opt/ml/processing/output/result"

UPPER_SCRIPT = """
    import os
    import sys
    from pathlib import Path

    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    for path in sorted(source.iterdir()):
        print(f"processing {path.name}", flush=True)
        (target / f"{path.stem}.upper").write_text(path.read_text().upper())
    Path(os.environ["SAGEMAKER_BASE_DIR"], "output", "message").write_text("2 files upper-cased")
"""
SLEEP_SCRIPT = """
    import time
    print("sleeping", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def env(tmp_path: Path) -> Iterator[LocalEnv]:
    """A process-backend state directory; any job a failed test left running is stopped."""
    local = make_env(tmp_path)
    try:
        yield local
    finally:
        stop_processing_jobs(local.client)
        assert_nothing_left(local.state_dir)


def _environ() -> dict[str, str]:
    return {**os.environ, "OPTML_LOCAL_STOP_GRACE_SECONDS": "2", "OPTML_LOCAL_BACKEND": "process"}


def _argv(env: LocalEnv, *args: str) -> list[str]:
    return [sys.executable, "-m", "toolkit.cli", "local", *args, "--state-dir", str(env.state_dir)]


def optml(env: LocalEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(env, *args), capture_output=True, text=True, env=_environ(),
                          timeout=180, check=False)


def _job_file(env: LocalEnv, script: str) -> tuple[str, Path]:
    """A YAML CreateProcessingJob request running ``script`` on ``data/`` into ``out/``."""
    name = job_name("proc-cli")
    code = env.root / f"code-{name}"
    code.mkdir()
    (code / "process.py").write_text(textwrap.dedent(script))
    data = env.root / "data"
    data.mkdir(exist_ok=True)
    (data / "a.txt").write_text("alpha\n")
    (data / "b.txt").write_text("beta\n")
    body: dict[str, Any] = {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": "optml/local-test:latest",
                             "ContainerEntrypoint": [sys.executable, f"{CODE}/process.py"],
                             "ContainerArguments": [DATA, OUT]},
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
        "ProcessingInputs": [
            {"InputName": "code", "S3Input": {"S3Uri": code.as_uri(), "LocalPath": CODE,
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            {"InputName": "data", "S3Input": {"S3Uri": data.as_uri(), "LocalPath": DATA,
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        "ProcessingOutputConfig": {"Outputs": [
            {"OutputName": "result", "S3Output": {"S3Uri": _out(env).as_uri(),
                                                  "LocalPath": OUT,
                                                  "S3UploadMode": "EndOfJob"}}]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }
    path = env.root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False, width=1 << 16))
    return name, path


def _out(env: LocalEnv) -> Path:
    return env.root / "out"


def _wait_for_log(env: LocalEnv, name: str, text: str) -> None:
    path = env.state_dir / "processing-jobs" / name / "logs" / "all.log"
    deadline = time.monotonic() + END_TIMEOUT
    while not (path.exists() and text in path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.05)


def _status(env: LocalEnv, name: str) -> str:
    status: str = env.client.describe_processing_job(
        ProcessingJobName=name)["ProcessingJobStatus"]
    return status


def test_process_wait_runs_the_job_and_every_read_command_shows_it(env: LocalEnv) -> None:
    _, job = _job_file(env, UPPER_SCRIPT)
    name = job_name("renamed")  # --name wins over the file's ProcessingJobName
    run = optml(env, "process", str(job), "--wait", "--backend", "process", "--name", name)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"Created processing job {name} (arn:")
    assert "optml | Processing: running the container on every instance" in lines
    assert "127.0.0.1 | processing a.txt" in lines and "127.0.0.1 | processing b.txt" in lines
    assert lines[-3:] == [f"Processing job {name}: Completed after {_seconds(lines[-3])} s",
                          "ExitMessage: 2 files upper-cased",
                          f"Output result: {_out(env).as_uri()}"]
    assert {p.name: p.read_text() for p in _out(env).iterdir()} == {
        "a.upper": "ALPHA\n", "b.upper": "BETA\n"}
    assert_nothing_left(env.state_dir)

    listed = optml(env, "processing-jobs")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "STATUS", "CREATED", "ENDED", "BACKEND", "EXIT", "MESSAGE"]
    assert row.startswith(f"{name}  Completed  ") and row.endswith("process  2 files upper-cased")
    assert optml(env, "processing-jobs", "--status", "failed").stderr == \
        "no processing jobs with status Failed\n"
    listed_json = json.loads(optml(env, "processing-jobs", "ls", "-o", "json").stdout)
    assert [s["ProcessingJobName"] for s in listed_json["ProcessingJobSummaries"]] == [name]
    assert optml(env, "jobs").stderr == "no training jobs\n"  # the kinds are kept apart

    described = optml(env, "describe-processing-job", name)
    assert described.returncode == 0, described.stderr
    description = json.loads(described.stdout)
    assert description["ProcessingJobStatus"] == "Completed"
    assert description["ExitMessage"] == "2 files upper-cased"
    assert "ResponseMetadata" not in description

    logs = optml(env, "processing-logs", name)
    assert logs.returncode == 0
    assert "127.0.0.1 | processing a.txt\n" in logs.stdout
    assert logs.stdout.rstrip().endswith("optml | Completed: processing job completed")
    followed = optml(env, "processing-logs", name, "-f")
    assert (followed.returncode, followed.stdout) == (0, logs.stdout)
    assert (env.state_dir / "processing-jobs" / name / "logs" / "127.0.0.1.log").exists()


def _seconds(line: str) -> str:
    return line.rsplit(" after ", 1)[1].split()[0]


def test_a_failing_script_exits_1_with_the_failure_reason(env: LocalEnv) -> None:
    name, job = _job_file(env, """
        import os
        from pathlib import Path
        Path(os.environ["SAGEMAKER_BASE_DIR"], "output", "message").write_text("row 7 is bad")
        raise SystemExit("cannot parse row 7")
    """)
    run = optml(env, "process", str(job), "--wait")
    assert run.returncode == 1
    assert "127.0.0.1 | cannot parse row 7" in run.stdout
    assert run.stderr.splitlines() == [
        f"Processing job {name}: Failed after {_seconds(run.stderr.splitlines()[0])} s",
        "FailureReason: AlgorithmError: See job logs for more information "
        "(host 127.0.0.1 exited with code 1)",
        "ExitMessage: row 7 is bad"]
    assert not _out(env).exists()  # a failed job uploads nothing
    row = optml(env, "processing-jobs").stdout.splitlines()[1]
    assert row.startswith(f"{name}  Failed  ") and row.endswith("row 7 is bad")


@pytest.mark.parametrize(("text", "replace", "field"), [
    (f"LocalPath: {OUT}", "LocalPath: /tmp/elsewhere",
     "ProcessingOutputConfig.Outputs[0].S3Output.LocalPath must be an absolute path that begins "
     "with /opt/ml/processing/, got '/tmp/elsewhere'"),
    # file://dir/... is relative to the job file, as in a training job file: not there
    ("S3Uri: file:///", "S3Uri: file://", "given in input data source"),
    ("ml.m5.large", "ml.nope", "'ml.nope' at 'ProcessingResources.ClusterConfig.InstanceType'"),
])
def test_an_invalid_job_file_is_one_line_naming_the_file_and_field(
        env: LocalEnv, text: str, replace: str, field: str) -> None:
    _, job = _job_file(env, UPPER_SCRIPT)
    job.write_text(job.read_text().replace(text, replace, 1))
    run = optml(env, "process", str(job), "--wait")
    assert run.returncode == 2
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f"Error: {job}: ")
    assert field in run.stderr
    assert run.stdout == ""
    assert not env.client.store.list("processing-jobs")


def test_a_missing_job_file_and_an_unknown_job(env: LocalEnv) -> None:
    missing = optml(env, "process", str(env.root / "absent.yaml"))
    assert (missing.returncode, missing.stderr) == (2, f"Error: {env.root}/absent.yaml: "
                                                       "no such file\n")
    unknown = optml(env, "describe-processing-job", "ghost")  # the others: tests/unit
    assert unknown.returncode == 1
    assert unknown.stderr == f"Error: no local processing job named 'ghost' in {env.state_dir}\n"


def test_stop_from_another_shell_ends_the_waiting_cli_with_3(env: LocalEnv) -> None:
    name, job = _job_file(env, SLEEP_SCRIPT)
    waiting = subprocess.Popen(_argv(env, "process", str(job), "--wait"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_environ())
    try:
        _wait_for_log(env, name, "127.0.0.1 | sleeping")
        stopped = optml(env, "stop-processing-job", name, "--wait")
        out, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert stopped.returncode == 3, stopped.stderr
    assert f"Stopping processing job {name}" in stopped.stderr
    assert stopped.stdout.startswith(f"Processing job {name}: Stopped after ")
    assert waiting.returncode == 3, err
    assert "127.0.0.1 | sleeping" in out
    assert out.splitlines()[-2] == "optml | Stopped: processing job stopped"
    assert out.splitlines()[-1].startswith(f"Processing job {name}: Stopped after ")
    assert _status(env, name) == "Stopped"
    assert not _out(env).exists()
    again = optml(env, "stop-processing-job", name)
    assert again.returncode == 1 and "already stopped" in again.stderr
    assert_nothing_left(env.state_dir)


def test_ctrl_c_of_a_waiting_cli_stops_the_job_and_exits_130(env: LocalEnv) -> None:
    name, job = _job_file(env, SLEEP_SCRIPT)
    cli = subprocess.Popen(_argv(env, "process", str(job), "--wait"), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=_environ())
    try:
        _wait_for_log(env, name, "127.0.0.1 | sleeping")
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 130, err
    assert f"optml | interrupted: stopping processing job {name}" in err
    assert out.splitlines()[-1].startswith(f"Processing job {name}: Stopped after ")
    assert _status(env, name) == "Stopped"
    assert_nothing_left(env.state_dir)
