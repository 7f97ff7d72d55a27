"""local_mode.cli.errors: :func:`request_errors`, the one way every command reports a refused
request, and the unreadable-file paths of ``optml local`` and ``optml check`` that lead to it;
:func:`cli_errors` (through :class:`OneLineGroup` / :class:`OneLineCommand`), the one wrapper that
ends a bad environment, a missing extra, an unusable given path or a bad option value on one
line; and the extras table held to pyproject.toml."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import re
import tempfile
from pathlib import Path

import click
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from click.testing import CliRunner

from local_mode.check import CheckInputError, jobs, run_checks
from local_mode.check.serving_checks import read_sample
from local_mode.cli import check, local
from local_mode.cli.errors import (
    EXIT_INVALID,
    EXTRAS,
    OneLineCommand,
    OneLineGroup,
    bad_path,
    environment_error,
    extras_providing,
    missing_extra,
    request_errors,
)
from local_mode.errors import ValidationException
from local_mode.request_files import RequestFileError
from tests.unreadable import unreadable_file, without_read_permission
from toolkit.errors import ConfigError
from toolkit.settings import LocalModeSettings, Settings

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mypy, a dev dependency, brings tomli
    import tomli as tomllib  # type: ignore[no-redef]

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


def test_a_name_in_use_is_one_line_and_exit_1_whatever_the_source() -> None:
    """Nothing in the file is wrong when its name is taken: 1, as for deploy's own check."""
    error = ClientError({"Error": {"Code": "ResourceInUse", "Message": "in use"}},
                        "CreateTrainingJob")
    result = CliRunner().invoke(_command(error, source=Path("job.json")))
    assert (result.exit_code, result.stderr) == (1, "Error: job.json: in use\n")


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


# --- cli_errors: one wrapper around every command (environment, extras, paths, option values) ---

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _distribution(requirement: str) -> str:
    """``jsonpath-ng>=1.6`` -> ``jsonpath-ng``; ``moto[s3,server]>=5.1,<6`` -> ``moto``."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


def test_the_extras_table_is_pyprojects() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    declared.pop("dev")  # for working on optml, not for running it
    assert {extra: sorted(_distribution(r) for r in requirements)
            for extra, requirements in declared.items()} == \
        {extra: sorted(distributions) for extra, distributions in EXTRAS.items()}


def test_every_module_of_the_extras_table_is_what_its_distribution_installs() -> None:
    # the development install has every extra: each module named must be importable here
    for distributions in EXTRAS.values():
        for modules in distributions.values():
            for module in modules:
                assert importlib.util.find_spec(module) is not None, module


def test_extras_providing_a_module() -> None:
    assert extras_providing("botocore.exceptions") == ("s3", "local")
    assert extras_providing("yaml") == ("local",)
    assert extras_providing("matplotlib.pyplot") == ("plot",)
    assert extras_providing("flask") == ()  # a core dependency: missing means a broken install


def _missing(name: str) -> ModuleNotFoundError:
    return ModuleNotFoundError(f"No module named {name!r}", name=name)


def test_missing_extra_names_the_command_the_extra_and_the_install() -> None:
    assert missing_extra(_missing("botocore"), "optml local", "local", "jobs") == \
        "optml local needs the 'local' extra (botocore is not installed): " \
        "pip install 'optml[local]'"
    # another extra than the group's: only the subcommand needs it
    assert missing_extra(_missing("matplotlib"), "optml local", "local", "metrics") == \
        "optml local metrics needs the 'plot' extra (matplotlib is not installed): " \
        "pip install 'optml[plot]'"
    assert missing_extra(_missing("botocore.exceptions"), "", "local") == \
        "needs the 'local' extra (no module named 'botocore.exceptions'): " \
        "pip install 'optml[local]'"
    assert missing_extra(_missing("flask"), "optml local", "local") is None
    assert missing_extra(ModuleNotFoundError("no name"), "optml local", "local") is None


def test_environment_error_is_only_the_environments() -> None:
    bad = ConfigError("environment", "must be an integer, got 'x'", field="OPTML_MASTER_PORT")
    assert environment_error(bad) == \
        "environment variable OPTML_MASTER_PORT: must be an integer, got 'x'"
    assert environment_error(ConfigError("hyperparameters.json", "bad", field="x")) is None


def test_bad_path_matches_only_paths_the_command_line_gave(tmp_path: Path) -> None:
    given = [("--state-dir", tmp_path / "state")]
    denied = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "state"))
    assert bad_path(denied, given) == f"--state-dir {tmp_path}/state: Permission denied"
    inside = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "state" / "x"))
    assert bad_path(inside, given) == \
        f"--state-dir {tmp_path}/state: {tmp_path}/state/x: Permission denied"
    (tmp_path / "file").write_text("x")
    on_the_way = FileExistsError(errno.EEXIST, "File exists", str(tmp_path / "file"))
    assert bad_path(on_the_way, [("--state-dir", tmp_path / "file" / "state")]) == \
        f"--state-dir {tmp_path}/file/state: {tmp_path}/file: Not a directory"
    # inside it, but not a path that cannot be used: a bug's, keeps its traceback
    vanished = FileNotFoundError(errno.ENOENT, "No such file", str(tmp_path / "state" / "x"))
    assert bad_path(vanished, given) is None
    elsewhere = PermissionError(errno.EACCES, "Permission denied", "/etc/shadow")
    assert bad_path(elsewhere, given) is None
    assert bad_path(PermissionError(errno.EACCES, "Permission denied"), given) is None


def test_a_state_dir_variable_must_name_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert LocalModeSettings.from_environ(
        {"OPTML_LOCAL_STATE_DIR": str(tmp_path / "new" / "dir")}).state_dir == \
        tmp_path / "new" / "dir"
    for value in (tmp_path / "file", tmp_path / "file" / "below"):
        with pytest.raises(ConfigError, match=f"must name a directory, but '{tmp_path}/file'"):
            LocalModeSettings.from_environ({"OPTML_LOCAL_STATE_DIR": str(value)})


def _raising(error: BaseException) -> click.Command:
    @click.command("run")
    @click.option("--out", type=click.Path(path_type=Path), default=None)
    @click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
    def run(out: Path | None, state_dir: Path | None) -> None:
        raise error
    return run


def _group(error: BaseException) -> click.Group:
    return OneLineGroup("local", commands=[_raising(error)])


@pytest.mark.parametrize(("error", "line"), [
    (ConfigError("environment", "must be auto, docker or process, got 'x'",
                 field="OPTML_LOCAL_BACKEND"),
     "Error: environment variable OPTML_LOCAL_BACKEND: must be auto, docker or process, got 'x'"),
    (_missing("docker"),
     "Error: optml local needs the 'local' extra (docker is not installed): "
     "pip install 'optml[local]'"),
    (PermissionError(errno.EACCES, "Permission denied", "/given/out.png"),
     "Error: --out /given/out.png: Permission denied"),
    (click.BadParameter("'x' is not KEY=VALUE", param_hint="--env"),
     "Error: Invalid value for --env: 'x' is not KEY=VALUE"),
])
def test_the_group_ends_what_it_knows_with_one_line(error: BaseException, line: str) -> None:
    result = CliRunner().invoke(_group(error), ["run", "--out", "/given/out.png"])
    assert (result.exit_code, result.stdout, result.stderr) == (EXIT_INVALID, "", line + "\n")


@pytest.mark.parametrize("error", [
    ConfigError("hyperparameters.json", "bad", field="x"),  # a file's, not the environment's
    _missing("flask"),  # a core dependency: a broken install
    PermissionError(errno.EACCES, "Permission denied", "/elsewhere"),  # no path given
    AttributeError("a bug"),
])
def test_the_group_keeps_the_traceback_of_anything_else(error: BaseException) -> None:
    result = CliRunner().invoke(_group(error), ["run", "--out", "/given/out.png"])
    assert result.exception is error


def test_the_group_makes_every_usage_error_one_line() -> None:
    group = OneLineGroup("local", commands=[_raising(AssertionError("not run"))])
    bad = CliRunner().invoke(group, ["run", "--state-dir", __file__])
    assert (bad.exit_code, bad.stderr) == (
        2, f"Error: Invalid value for '--state-dir': Directory '{__file__}' is a file.\n")

    @click.command("named")
    @click.argument("name")
    def named(name: str) -> None:
        raise AssertionError("not run")

    missing = CliRunner().invoke(OneLineGroup("local", commands=[named]), ["named"])
    assert (missing.exit_code, missing.stderr) == (
        2, "Error: Missing argument 'NAME'. (see 'local named --help')\n")
    unknown = CliRunner().invoke(OneLineGroup("local", commands=[named]), ["named", "x", "-q"])
    assert (unknown.exit_code, unknown.stderr) == (
        2, "Error: No such option '-q'. (see 'local named --help')\n")
    assert "Error: Missing argument 'NAME'." in missing.stderr


def test_paths_given_to_a_nested_group_are_found_at_every_level() -> None:
    error = PermissionError(errno.EACCES, "Permission denied", "/given/state/kind")
    kind = click.Group("kind", commands=[_raising(error)])
    kind.params.append(click.Option(["--state-dir"], type=click.Path(path_type=Path)))
    group = OneLineGroup("local", commands=[kind])
    for args in (["kind", "run", "--state-dir", "/given/state"],
                 ["kind", "--state-dir", "/given/state", "run"]):
        result = CliRunner().invoke(group, args)
        assert (result.exit_code, result.stderr) == (
            2, "Error: --state-dir /given/state: /given/state/kind: Permission denied\n"), args


def test_the_default_state_dir_is_a_given_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTML_LOCAL_STATE_DIR", "/from/the/environment")
    error = PermissionError(errno.EACCES, "Permission denied", "/from/the/environment")
    result = CliRunner().invoke(_group(error), ["run"])
    assert (result.exit_code, result.stderr) == (
        2, "Error: OPTML_LOCAL_STATE_DIR /from/the/environment: Permission denied\n")


def test_one_command_with_its_own_label() -> None:
    @click.command("check", cls=OneLineCommand, label="optml check")
    @click.option("--grace", type=float, default=1.0)
    def command(grace: float) -> None:
        raise _missing("docker")

    assert CliRunner().invoke(command, ["--grace", "x"]).stderr == \
        "optml check: Invalid value for '--grace': 'x' is not a valid float.\n"
    assert CliRunner().invoke(command, []).stderr == \
        "optml check: needs the 'local' extra (docker is not installed): " \
        "pip install 'optml[local]'\n"


def test_a_state_dir_that_cannot_be_made_for_optml_local_train() -> None:
    """EACCES from the kernel: as ``nobody`` when this is root (see tests/unreadable.py; a
    subprocess cannot be used, ``nobody`` may not be able to run this interpreter)."""
    with tempfile.TemporaryDirectory(prefix="optml-locked-") as scratch:
        os.chmod(scratch, 0o755)
        root = Path(scratch)
        job = root / "job.json"
        job.write_text(json.dumps({
            "TrainingJobName": "locked", "RoleArn": "arn:aws:iam::000000000000:role/x",
            "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
            "HyperParameters": {"sagemaker_submit_directory": scratch},
            "OutputDataConfig": {"S3OutputPath": (root / "out").as_uri()},
            "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1,
                               "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60}}))
        (root / "file").write_text("x")
        locked = root / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        # The same command against a state dir below a file fails on the same path (mkdir)
        # with the same handling: it loads all the unprivileged child cannot import itself.
        below_a_file = str(root / "file" / "state")
        assert _cli(local, "train", str(job), "--backend", "process", "--state-dir",
                    below_a_file) == (2, "", f"Error: --state-dir {below_a_file}: "
                                             f"{root}/file: Not a directory\n")
        state = str(locked / "state")
        status, out, err = without_read_permission(
            lambda: _cli(local, "train", str(job), "--backend", "process", "--state-dir", state))
        assert (status, out, err) == (2, "", f"Error: --state-dir {state}: Permission denied\n")
        assert list(locked.iterdir()) == []
