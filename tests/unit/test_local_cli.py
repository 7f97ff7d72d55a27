"""``optml local`` error paths (click's runner) and the log tail it follows jobs with."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from local_mode.cli import local
from local_mode.cli.errors import EXIT_INVALID
from local_mode.cli.logs import LinePrinter, LogOptions, LogSet, print_logs
from local_mode.cli.processing import PROCESSING_JOBS

ROLE = "arn:aws:iam::000000000000:role/optml-local"


def _job(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "TrainingJobName": "cli-unit",
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "file:///tmp/out"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def _invoke(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(local, [*args, "--state-dir", str(tmp_path / "state")],
                              catch_exceptions=False)


@pytest.mark.parametrize(("content", "suffix", "expected"), [
    ("{not json", ".json", "invalid JSON at line 1, column 2"),
    ("a: [unclosed", ".yaml", "invalid YAML at line"),
    ("[1, 2]", ".json", "must hold one request object"),
    (json.dumps(_job(RoleArn=None)), ".json", "RoleArn"),
    (json.dumps(_job(TrainingJobName="bad_name")), ".json", "TrainingJobName"),
    (json.dumps(_job(ResourceConfig={"InstanceType": "ml.nope", "InstanceCount": 1,
                                     "VolumeSizeInGB": 1})), ".json",
     "'ml.nope' at 'ResourceConfig.InstanceType'"),
    (json.dumps(_job(OutputDataConfig={"S3OutputPath": "ftp://x/y"})), ".json",
     "OutputDataConfig.S3OutputPath"),
])
def test_bad_job_files_name_the_file_and_field(tmp_path: Path, content: str, suffix: str,
                                               expected: str) -> None:
    path = tmp_path / f"job{suffix}"
    path.write_text(content)
    result = _invoke(tmp_path, "train", str(path), "--backend", "process")
    assert result.exit_code == EXIT_INVALID
    assert f"Error: {path}: " in result.output
    assert expected in result.output
    assert not (tmp_path / "state" / "training-jobs").exists() or \
        not any((tmp_path / "state" / "training-jobs").iterdir())


def test_a_missing_job_file(tmp_path: Path) -> None:
    result = _invoke(tmp_path, "train", str(tmp_path / "absent.json"))
    assert result.exit_code == EXIT_INVALID
    assert "absent.json: no such file" in result.output


@pytest.mark.parametrize("command", ["describe", "logs", "stop", "metrics"])
def test_unknown_job_names(tmp_path: Path, command: str) -> None:
    result = _invoke(tmp_path, command, "ghost")
    assert result.exit_code == 1
    assert "no local training job named 'ghost'" in result.output


def test_jobs_on_an_empty_state_dir(tmp_path: Path) -> None:
    result = _invoke(tmp_path, "jobs")
    assert result.exit_code == 0 and "no training jobs" in result.output


def test_bad_backend_choice_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(_job()))
    result = _invoke(tmp_path, "train", str(path), "--backend", "kubernetes")
    assert result.exit_code == 2 and "kubernetes" in result.output


@pytest.mark.parametrize(("training", "processing"), [
    ("train", "process"), ("jobs", "processing-jobs"), ("describe", "describe-processing-job"),
    ("logs", "processing-logs"), ("stop", "stop-processing-job")])
def test_processing_commands_take_what_their_training_twins_take(training: str,
                                                                 processing: str) -> None:
    def options(name: str) -> list[tuple[str, ...]]:
        return [(*p.opts, *p.secondary_opts) for p in local.commands[name].params]
    assert options(processing) == options(training)


def test_a_processing_job_file_missing_a_member_names_the_file_and_member(
        tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(f"ProcessingJobName: p\nRoleArn: {ROLE}\nProcessingResources:\n"
                    "  ClusterConfig: {InstanceCount: 1, InstanceType: ml.m5.large, "
                    "VolumeSizeInGB: 1}\n")
    result = _invoke(tmp_path, "process", str(path), "--backend", "process")
    assert result.exit_code == EXIT_INVALID
    assert result.output.startswith(f"Error: {path}: ")
    assert '"AppSpecification"' in result.output and len(result.output.splitlines()) == 1
    assert not (tmp_path / "state" / "processing-jobs").exists() or \
        not any((tmp_path / "state" / "processing-jobs").iterdir())


@pytest.mark.parametrize("command", ["describe-processing-job", "processing-logs",
                                     "stop-processing-job"])
def test_unknown_processing_job_names(tmp_path: Path, command: str) -> None:
    result = _invoke(tmp_path, command, "ghost")
    assert result.exit_code == 1
    assert "no local processing job named 'ghost'" in result.output


def test_processing_jobs_on_an_empty_state_dir(tmp_path: Path) -> None:
    result = _invoke(tmp_path, "processing-jobs")
    assert result.exit_code == 0 and "no processing jobs" in result.output


def test_how_a_finished_processing_job_reads() -> None:
    started = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    outputs = {"Outputs": [{"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}},
                           {"OutputName": "app", "AppManaged": True}]}
    completed = {"ProcessingJobName": "p", "ProcessingJobStatus": "Completed",
                 "ProcessingStartTime": started,
                 "ProcessingEndTime": started + timedelta(seconds=41.6),
                 "ExitMessage": "done", "ProcessingOutputConfig": outputs}
    assert PROCESSING_JOBS.outcome(completed) == (
        "Processing job p: Completed after 42 s",
        ["ExitMessage: done", "Output train: s3://b/train"])
    timed_out = {"ProcessingJobName": "p", "ProcessingJobStatus": "Stopped",
                 "FailureReason": "MaxRuntimeExceeded: the job ran longer than ...",
                 "ProcessingOutputConfig": outputs}  # stopped before it started: no duration
    assert PROCESSING_JOBS.outcome(timed_out) == (
        "Processing job p: Stopped (MaxRuntimeExceeded: the job ran longer than ...)", [])


def _read(logs: LogSet, final: bool = False) -> list[bytes]:
    return [line for _, line in logs.read(LogOptions(), final)]


def test_a_log_set_returns_only_complete_lines_and_the_rest_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "all.log"
    logs = LogSet(tmp_path, job_log=True)
    assert _read(logs) == []  # not created yet
    path.write_bytes(b"one\ntw")
    assert _read(logs) == [b"one\n"]
    with path.open("ab") as handle:
        handle.write(b"o\nthree")
    assert _read(logs) == [b"two\n"]
    assert _read(logs, final=True) == [b"three\n"]
    assert _read(logs, final=True) == []


def test_following_reads_what_was_written_before_the_end(tmp_path: Path) -> None:
    path = tmp_path / "all.log"
    path.write_bytes(b"a\n")
    calls = iter([False, True])

    def ended() -> bool:
        finished = next(calls)
        if finished:
            with path.open("ab") as handle:  # written after the last check: still read
                handle.write(b"late\n")
        return finished

    out: list[bytes] = []
    print_logs(LogSet(tmp_path, job_log=True), LogOptions(), follow_until=ended,
               printer=out.append)
    assert out == [b"a\n", b"late\n"]


@given(st.lists(st.binary(max_size=20), max_size=12))
def test_a_log_set_reassembles_any_chunking(chunks: list[bytes]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "all.log"
        path.write_bytes(b"")
        logs = LogSet(Path(scratch), job_log=True)
        got: list[bytes] = []
        for chunk in chunks:
            with path.open("ab") as handle:
                handle.write(chunk)
            got.extend(_read(logs))
        got.extend(_read(logs, final=True))
        data = b"".join(chunks)
        expected = [line + b"\n" for line in data.split(b"\n")]
        if data.endswith(b"\n") or not data:
            expected = expected[:-1]
        assert got == expected


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_lines_overwrite_each_other_on_a_terminal() -> None:
    stream = _Tty()
    printer = LinePrinter(stream)
    printer(b"optml | h: channel train: 10 bytes staged so far\n")
    printer(b"optml | h: channel train: 20 bytes staged so far\n")
    printer(b"optml | h: channel train: 30 bytes staged\n")
    assert stream.getvalue() == ("\r\x1b[Koptml | h: channel train: 10 bytes staged so far"
                                 "\r\x1b[Koptml | h: channel train: 20 bytes staged so far"
                                 "\r\x1b[Koptml | h: channel train: 30 bytes staged\n")
    plain = io.StringIO()
    LinePrinter(plain)(b"optml | h: channel train: 10 bytes staged so far\n")
    assert plain.getvalue() == "optml | h: channel train: 10 bytes staged so far\n"
