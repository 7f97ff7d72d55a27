"""local_mode.cli.errors.request_errors: the one way every command reports a refused request,
and the unreadable-file paths of ``optml local`` and ``optml check`` that lead to it."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from click.testing import CliRunner

from local_mode.check import CheckInputError, jobs, run_checks
from local_mode.check.serving_checks import read_sample
from local_mode.cli import check, local
from local_mode.cli.errors import EXIT_INVALID, request_errors
from local_mode.errors import ValidationException
from local_mode.request_files import RequestFileError
from tests.unreadable import unreadable_file, without_read_permission
from toolkit.settings import Settings

LOADED_BEFORE_FORK = (run_checks, Settings)
"""What the commands load lazily, loaded here: the unprivileged child may not be able to read
the interpreter's own library (it can live in root's home)."""


def _command(error: Exception, **options: object) -> click.Command:
    @click.command()
    def command() -> None:
        with request_errors(**options):  # type: ignore[arg-type]
            raise error
    return command


@pytest.mark.parametrize(("error", "source", "line"), [
    (ParamValidationError(report='Missing required parameter in input: "ModelName"\n'
                                 'Unknown parameter in input: "Nope"'),
     "job.json", 'Error: job.json: Parameter validation failed: Missing required parameter in '
                 'input: "ModelName" Unknown parameter in input: "Nope"'),
    (ValidationException("Value 'x' at 'ModelName'\nmust match"), "job.json",
     "Error: job.json: Value 'x' at 'ModelName' must match"),
    (ClientError({"Error": {"Code": "ResourceInUse", "Message": "in use"}}, "CreateEndpoint"),
     None, "Error: in use"),
    (RequestFileError(Path("job.json"), "no such file"), Path("job.json"),
     "Error: job.json: no such file"),  # names the file once
])
def test_a_refusal_is_one_line_naming_the_file_and_exit_2(error: Exception,
                                                          source: str | Path | None,
                                                          line: str) -> None:
    result = CliRunner().invoke(_command(error, source=source))
    assert result.exit_code == EXIT_INVALID
    assert result.stderr.splitlines() == [line]
    assert result.stdout == ""


def test_service_errors_may_map_to_another_status_but_bad_input_never() -> None:
    refused = ValidationException("no such endpoint")
    assert CliRunner().invoke(_command(refused, service_error_status=1)).exit_code == 1
    invalid = ParamValidationError(report="Invalid type")
    assert CliRunner().invoke(_command(invalid, service_error_status=1)).exit_code == 2


def test_named_extra_errors_and_label() -> None:
    result = CliRunner().invoke(_command(CheckInputError("--grace must be > 0"),
                                         label="optml check", also=(CheckInputError,)))
    assert (result.exit_code, result.stderr) == (2, "optml check: --grace must be > 0\n")


def test_anything_else_is_a_bug_and_keeps_its_traceback() -> None:
    result = CliRunner().invoke(_command(AttributeError("a bug")))
    assert result.exit_code == 1 and isinstance(result.exception, AttributeError)


def _cli(command: click.Command, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(command, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_unreadable_job_file_for_optml_local_train(tmp_path: Path) -> None:
    with unreadable_file("job.json") as path:
        state = str(tmp_path / "state")
        status, out, err = without_read_permission(
            lambda: _cli(local, "train", str(path), "--state-dir", state))
    assert (status, out, err) == (2, "", f"Error: {path}: Permission denied\n")


@pytest.mark.parametrize("option", ["--job", "--failing-job", "--sample"])
def test_unreadable_files_for_optml_check(option: str) -> None:
    with unreadable_file("file.json") as path:
        status, out, err = without_read_permission(
            lambda: _cli(check, "img", option, str(path), "--content-type", "text/csv"))
    assert (status, out, err) == (2, "", f"optml check: {option} {path}: Permission denied\n")


def test_unreadable_job_and_sample_in_the_check_api(tmp_path: Path) -> None:
    def errors() -> list[str]:
        found = []
        for call in (lambda: jobs.load_job(path, "img", tmp_path), lambda: read_sample(path)):
            try:
                call()
            except CheckInputError as exc:
                found.append(str(exc))
        return found

    with unreadable_file("job.json") as path:
        assert without_read_permission(errors) == [f"{path}: Permission denied",
                                                   f"--sample {path}: Permission denied"]
