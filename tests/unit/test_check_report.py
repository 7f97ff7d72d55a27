"""``optml check``'s report, verdict and input handling, without Docker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from local_mode.check import ALL_CHECKS, CheckInputError, CheckOptions, jobs
from local_mode.check.probes import Answer
from local_mode.check.report import CheckResult, Report, Status, _wrap, format_table, select
from local_mode.check.serving_checks import garbage_problem
from local_mode.cli import check
from local_mode.cli.errors import EXIT_INVALID


def _result(name: str, status: Status, reason: str = "because") -> CheckResult:
    return CheckResult(name, f"title of {name}", status, reason, 1.25)


def test_cli_offers_every_check_without_loading_the_checks() -> None:
    only = next(p for p in check.params if p.name == "only")
    assert tuple(only.type.choices) == ALL_CHECKS  # type: ignore[attr-defined]
    # every optml check run imports the command: the checks (Docker, botocore) load only when run
    code = ("import sys, local_mode.cli; print(sorted(m for m in sys.modules if m.split('.')[0]"
            " in ('docker', 'botocore') or m.startswith('local_mode.check.')"
            " and m != 'local_mode.check.names'))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert loaded.stdout.strip() == "[]"


def test_every_public_name_of_the_package_loads_on_first_use() -> None:
    import local_mode.check as package

    assert sorted(package.__all__) == sorted(package._HOMES)
    for name in package.__all__:
        assert getattr(package, name) is not None


@pytest.mark.parametrize(("statuses", "allow_skip", "expected"), [
    ([Status.PASS, Status.PASS], False, 0),
    ([Status.PASS, Status.SKIP], False, 1),
    ([Status.PASS, Status.SKIP], True, 0),
    ([Status.PASS, Status.FAIL], True, 1),
    ([Status.SKIP], True, 0),
    ([], True, 1),  # nothing checked vouches for nothing
])
def test_exit_status_counts_skips_as_not_passed_unless_allowed(
        statuses: list[Status], allow_skip: bool, expected: int) -> None:
    report = Report("img", tuple(_result(f"c{i}", s) for i, s in enumerate(statuses)))
    assert report.exit_status(allow_skip) == expected


def test_table_lists_every_check_with_status_time_and_wrapped_reason() -> None:
    long_reason = "word " * 40
    report = Report("my/image:1", (_result("train", Status.PASS, "exited 0"),
                                   _result("serve-sigterm", Status.FAIL, long_reason)))
    table = format_table(report, width=80)
    lines = table.splitlines()
    assert lines[0] == "optml check my/image:1"
    assert lines[2].split() == ["CHECK", "STATUS", "TIME", "REASON"]
    assert lines[3].split() == ["train", "PASS", "1.2s", "exited", "0"]
    assert lines[4].startswith("serve-sigterm  FAIL")
    assert all(len(line) <= 80 for line in lines)
    continuation = [line for line in lines[5:] if line.startswith(" ")]
    assert continuation and all(line.split() == ["word"] * len(line.split())
                                for line in continuation)
    assert lines[-1] == "1 passed, 1 failed, 0 skipped"


def test_json_report_round_trips() -> None:
    report = Report("img", (_result("ping", Status.SKIP, "no server"),))
    data = json.loads(report.to_json())
    assert data == {"image": "img", "results": [{"name": "ping", "title": "title of ping",
                                                 "status": "SKIP", "reason": "no server",
                                                 "seconds": 1.25}]}


def test_report_result_names_the_missing_check() -> None:
    with pytest.raises(KeyError, match="no check named 'ping'.*have: train"):
        Report("img", (_result("train", Status.PASS),)).result("ping")


@given(st.text(alphabet=st.sampled_from("ab \n"), max_size=200), st.integers(1, 30))
def test_wrap_keeps_every_word_within_the_width(text: str, width: int) -> None:
    lines = _wrap(text, width)
    assert all(len(line) <= width for line in lines)
    assert "".join("".join(lines).split()) == "".join(text.split())


def test_select_keeps_the_run_order_and_names_an_unknown_check() -> None:
    assert select(["ping", "train"], ALL_CHECKS) == ("train", "ping")
    assert select([], ALL_CHECKS) == ALL_CHECKS
    with pytest.raises(ValueError, match="unknown check 'pong'"):
        select(["pong"], ALL_CHECKS)


@pytest.mark.parametrize(("answer", "problem"), [
    (Answer(400, "application/json", b'{"error": "bad"}', 0.1), None),
    (Answer(200, "application/json", b"[]", 0.1), None),
    (Answer(500, "application/json; charset=utf-8", b'{"error": "boom"}', 0.1), None),
    (Answer(500, "text/html", b"<html>Traceback</html>", 0.1), "without a JSON or text error"),
    (Answer(502, "application/json", b"", 0.1), "without a JSON or text error"),
])
def test_garbage_body_answers(answer: Answer, problem: str | None) -> None:
    found = garbage_problem(answer)
    assert found is None if problem is None else problem in str(found)


def test_generated_job_is_a_valid_one_host_file_mode_request(tmp_path: Path) -> None:
    request = jobs.generated_request("img", tmp_path / "data", tmp_path / "out",
                                     {"depth": "2"}, {"A": "b"})
    spec = jobs.job_spec(request)
    assert spec.image == "img" and spec.instance_count == 1
    assert [(c.name, c.input_mode) for c in spec.channels] == [("train", "File")]
    rows = (tmp_path / "data" / "train.csv").read_text().splitlines()
    assert len(rows) == jobs.GENERATED_ROWS
    assert all(len(row.split(",")) == jobs.GENERATED_FEATURES + 1 for row in rows)
    assert dict(spec.hyperparameters) == {"depth": "2"}
    assert jobs.job_spec(jobs.without_channels(request)).channels == ()


def test_job_file_runs_on_the_image_under_test(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("AlgorithmSpecification: {TrainingImage: other, TrainingInputMode: File}\n"
                    "HyperParameters: {a: '1'}\n"
                    "ResourceConfig: {InstanceType: local, InstanceCount: 1, VolumeSizeInGB: 1}\n")
    request = jobs.load_job(path, "img", tmp_path / "out", {"b": "2"})
    assert request["AlgorithmSpecification"]["TrainingImage"] == "img"
    assert request["HyperParameters"] == {"a": "1", "b": "2"}
    assert request["TrainingJobName"].startswith(jobs.JOB_NAME_PREFIX)


_RESOURCES = {"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1}
_PIPE_CHANNEL = {"ChannelName": "t", "InputMode": "Pipe", "DataSource": {"S3DataSource": {
    "S3DataType": "S3Prefix", "S3Uri": "file:///tmp/x"}}}


def _job_text(**fields: object) -> str:
    """A job file as the check takes it: no name, role, stopping condition or output path."""
    algorithm = {"TrainingImage": "replaced", "TrainingInputMode": "File"}
    return json.dumps({"AlgorithmSpecification": algorithm, "ResourceConfig": _RESOURCES,
                       **fields})


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "invalid JSON at line 1"),
    (_job_text(ResourceConfig={**_RESOURCES, "InstanceCount": 2}),
     "InstanceCount is 2; optml check runs one"),
    (_job_text(InputDataConfig=[_PIPE_CHANNEL]), "uses InputMode Pipe"),
    (_job_text(InputDataConfig=[{"ChannelName": "t", "DataSource": {}}]),
     "InputDataConfig[0].DataSource.S3DataSource is required"),
    ("[1, 2]", "must hold one request object, not a list"),
    # wrong types are named by botocore's model, not met as an AttributeError in the spec
    (_job_text(ResourceConfig="x"), "Invalid type for parameter ResourceConfig, value: x"),
    (_job_text(InputDataConfig={"ChannelName": "t"}), "Invalid type for parameter "
                                                      "InputDataConfig"),
    (_job_text(InputDataConfig=[{"ChannelName": "t"}]),
     'Missing required parameter in InputDataConfig[0]: "DataSource"'),
    (_job_text(ResourceConfig={**_RESOURCES, "InstanceType": "ml.nope"}),
     "'ml.nope' at 'ResourceConfig.InstanceType'"),
    (_job_text(HyperParameters=["a"]), "HyperParameters"),
])
def test_bad_job_files_are_named(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "job.json"
    path.write_text(content)
    with pytest.raises(CheckInputError, match="job.json") as caught:
        jobs.load_job(path, "img", tmp_path / "out")
    assert expected in str(caught.value)


@pytest.mark.parametrize(("options", "expected"), [
    (CheckOptions(sample=Path("/nonexistent/s.csv"), content_type="text/csv"),
     "--sample /nonexistent/s.csv: no such file"),
    (CheckOptions(job=Path("/nonexistent/job.json")), "--job /nonexistent/job.json: no such"),
    (CheckOptions(model_data="/nonexistent/model.tar.gz"), "--model-data /nonexistent"),
    (CheckOptions(grace=0), "--grace must be > 0"),
    (CheckOptions(checks=["pong"]), "--only: unknown check 'pong'"),
    (CheckOptions(failing_job=Path(__file__), failing_environment={"A": "1"}),
     "--failing-job and --failing-env/--failing-hyperparameter are two ways"),
])
def test_options_are_validated_before_anything_runs(options: CheckOptions,
                                                    expected: str) -> None:
    with pytest.raises(CheckInputError, match=expected.replace(".", r"\.")):
        options.validated()


def test_sample_needs_a_content_type_and_a_body(tmp_path: Path) -> None:
    sample = tmp_path / "s.csv"
    sample.write_bytes(b"")
    with pytest.raises(CheckInputError, match="needs --content-type"):
        CheckOptions(sample=sample).validated()
    with pytest.raises(CheckInputError, match="the file is empty"):
        CheckOptions(sample=sample, content_type="text/csv").validated()


@pytest.mark.parametrize(("args", "expected"), [
    (["--sample", "/nonexistent/s.csv", "--content-type", "text/csv"],
     "optml check: --sample /nonexistent/s.csv: no such file"),
    (["--grace", "-1"], "optml check: --grace must be > 0"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(check, ["img", *args], catch_exceptions=False)
    assert result.exit_code == EXIT_INVALID
    assert result.output.strip().splitlines() == [expected]


def test_cli_rejects_an_env_pair_without_equals() -> None:
    result = CliRunner().invoke(check, ["img", "-e", "NOEQUALS"])
    assert result.exit_code == 2
    assert "'NOEQUALS' is not KEY=VALUE" in result.output
