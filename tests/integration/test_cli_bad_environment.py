"""A bad environment, a missing extra and an unusable path, as a user meets them (real ``optml``
processes): one line on stderr naming the culprit, exit status 2, never a traceback. Plus
``optml serve --help`` / ``optml train --help`` saying what the commands take. (A state directory
the user may not write is in tests/unit/test_cli_errors.py: as root that takes ``nobody``, who may
not be able to run this interpreter, so it runs in a forked child.)

The variables are not a hand-picked few: :func:`validated_variables` reads them out of
toolkit/settings.py, so a variable added there is walked here too (and one validated in a way
this file cannot guess a bad value for fails :func:`test_every_validated_variable_has_a_bad_value`
until :data:`CUSTOM_BAD_VALUES` says how).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

import toolkit.settings
from tests.integration.test_cli_bad_input import assert_refused
from toolkit.serving import gunicorn_app
from toolkit.serving.server import WORKER_CLASSES, option_parser

EXIT_INVALID = 2
SECTIONS = {"TrainingSettings": "train", "ServingSettings": "serve",
            "LocalModeSettings": "local"}
"""The settings classes whose ``from_environ`` validates variables, and the command reading each."""
GETTER_BAD_VALUES = {"_get_int": "many", "_get_float": "soon", "_get_bool": "maybe",
                     "_get_log_level": "loud", "_get_dir": "<a file>"}
"""A bad value for every variable read through one of settings.py's validating getters
(``_get_str`` takes any text, so it validates nothing)."""
CUSTOM_BAD_VALUES = {"SAGEMAKER_SAFE_PORT_RANGE": "9000", "SAGEMAKER_BATCH_STRATEGY": "ALL",
                     "OPTML_UNIX_SOCKET": "relative.sock", "OPTML_LOCAL_BACKEND": "bogus"}
"""Variables a ``from_environ`` checks itself (a ``ConfigError(..., field=NAME)``)."""
ROLE = "arn:aws:iam::000000000000:role/optml-local"


def validated_variables() -> list[tuple[str, str, str]]:
    """(command, variable, bad value) for every variable settings.py validates, by section."""
    tree = ast.parse(Path(toolkit.settings.__file__).read_text())
    found: dict[tuple[str, str], str] = {}
    for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
        if cls.name not in SECTIONS:
            continue
        for call in (node for node in ast.walk(cls) if isinstance(node, ast.Call)):
            name = call.func.id if isinstance(call.func, ast.Name) else None
            if name in GETTER_BAD_VALUES and len(call.args) >= 2 and \
                    isinstance(call.args[1], ast.Constant):
                found[(SECTIONS[cls.name], call.args[1].value)] = GETTER_BAD_VALUES[name]
            if name == "ConfigError":
                for keyword in call.keywords:
                    if keyword.arg == "field" and isinstance(keyword.value, ast.Constant):
                        variable = keyword.value.value
                        found.setdefault((SECTIONS[cls.name], variable),
                                         CUSTOM_BAD_VALUES.get(variable, ""))
    return sorted((command, variable, bad) for (command, variable), bad in found.items())


VARIABLES = validated_variables()


def test_every_validated_variable_has_a_bad_value() -> None:
    names = {variable for _, variable, _ in VARIABLES}
    assert len(VARIABLES) >= 25, VARIABLES  # the walk found the variables, not a few
    assert {"OPTML_LOCAL_BACKEND", "OPTML_LOCAL_STOP_GRACE_SECONDS", "OPTML_MASTER_PORT",
            "SAGEMAKER_MODEL_SERVER_WORKERS", "SAGEMAKER_BATCH_STRATEGY"} <= names
    assert {command for command, _, _ in VARIABLES} == set(SECTIONS.values())
    assert [v for _, v, bad in VARIABLES if not bad] == [], "add them to CUSTOM_BAD_VALUES"
    assert set(CUSTOM_BAD_VALUES) <= names, "stale CUSTOM_BAD_VALUES"


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without any variable settings.py reads, plus ``extra``."""
    names = {variable for _, variable, _ in VARIABLES} | {"SAGEMAKER_BASE_DIR", "PYTHONPATH"}
    return {**{k: v for k, v in os.environ.items() if k not in names}, **extra}


def optml(*args: str, env: Mapping[str, str],
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "toolkit.cli", *args], capture_output=True,
                          text=True, env=dict(env), timeout=timeout, check=False)


def training_tree(root: Path) -> Path:
    """A valid /opt/ml tree under ``root`` whose job would print and exit 0."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text("{}")
    (config / "inputdataconfig.json").write_text("{}")
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    (root / "code").mkdir()
    (root / "code" / "train.py").write_text("print('trained')\n")
    return root


@pytest.mark.parametrize(("command", "variable", "bad"), VARIABLES,
                         ids=[f"{c}-{v}" for c, v, _ in VARIABLES])
def test_a_bad_variable_is_one_line_naming_it(tmp_path: Path, command: str, variable: str,
                                              bad: str) -> None:
    if bad == "<a file>":
        bad = str(tmp_path / "a-file")
        Path(bad).write_text("not a directory")
    if command == "local":
        env = clean_environ(**{"OPTML_LOCAL_BACKEND": "process", variable: bad})
        args = ["local", "jobs"] + ([] if variable == "OPTML_LOCAL_STATE_DIR"
                                    else ["--state-dir", str(tmp_path / "state")])
        line = assert_refused(optml(*args, env=env), f"Error: environment variable {variable}:")
        assert not (tmp_path / "state").exists()
    elif command == "train":
        root = training_tree(tmp_path / "ml")
        env = clean_environ(SAGEMAKER_BASE_DIR=str(root),
                            SAGEMAKER_SUBMIT_DIRECTORY=str(root / "code"), **{variable: bad})
        run = optml("train", env=env)
        line = assert_refused(run, "ConfigError", variable)
        assert "trained" not in run.stdout
        assert variable in (root / "output" / "failure").read_text()
    else:
        # a value the walk failed to refuse would start a server: the timeout ends the test
        env = clean_environ(SAGEMAKER_BASE_DIR=str(tmp_path / "ml"), **{variable: bad})
        line = assert_refused(optml("serve", env=env, timeout=30), "optml serve: ", variable)
    assert repr(bad) in line, line  # what was wrong, as given


def test_a_state_dir_variable_below_a_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    env = clean_environ(OPTML_LOCAL_STATE_DIR=str(tmp_path / "file" / "state"))
    assert_refused(optml("local", "jobs", env=env),
                    "Error: environment variable OPTML_LOCAL_STATE_DIR:", f"{tmp_path}/file'")


def without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment whose PYTHONPATH makes importing each of ``modules`` fail as it would
    were it not installed (the ModuleNotFoundError Python raises, naming the module)."""
    shadow = tmp_path / "shadow"
    for module in modules:
        (shadow / module).mkdir(parents=True)
        (shadow / module / "__init__.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{module}'\", name={module!r})\n")
    return clean_environ(PYTHONPATH=str(shadow), OPTML_LOCAL_BACKEND="process")


EXTRA_LINE = "needs the 'local' extra ({} is not installed): pip install 'optml[local]'"


def test_optml_local_without_its_extra(tmp_path: Path) -> None:
    run = optml("local", "jobs", "--state-dir", str(tmp_path / "state"),
                env=without(tmp_path, "botocore", "docker", "yaml"))
    assert_refused(run, "Error: optml local " + EXTRA_LINE.format("botocore"))


def test_a_yaml_job_file_without_pyyaml(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("TrainingJobName: x\n")
    run = optml("local", "train", str(job), "--state-dir", str(tmp_path / "state"),
                env=without(tmp_path, "yaml"))
    assert_refused(run, "Error: optml local " + EXTRA_LINE.format("yaml"))
    assert not (tmp_path / "state").exists()


def test_optml_check_without_its_extra(tmp_path: Path) -> None:
    assert_refused(optml("check", "some/image", env=without(tmp_path, "botocore", "docker")),
                    "optml check: " + EXTRA_LINE.format("botocore"))


def test_state_dir_option_naming_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    env = clean_environ(OPTML_LOCAL_BACKEND="process")
    for args in (["local", "jobs"], ["local", "describe", "x"]):
        assert_refused(optml(*args, "--state-dir", str(tmp_path / "file"), env=env),
                        "Error: Invalid value for '--state-dir':", "is a file")


def job_file(root: Path) -> Path:
    """A valid CreateTrainingJob request in a directory anyone may read."""
    (root / "code").mkdir(parents=True)
    (root / "code" / "train.py").write_text("print('trained')\n")
    path = root / "job.json"
    path.write_text(json.dumps({
        "TrainingJobName": "bad-paths", "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "HyperParameters": {"sagemaker_program": "train.py",
                            "sagemaker_submit_directory": str(root / "code")},
        "OutputDataConfig": {"S3OutputPath": (root / "out").as_uri()},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60}}))
    return path


def test_state_dir_below_a_file(tmp_path: Path) -> None:
    job = job_file(tmp_path)
    (tmp_path / "file").write_text("x")
    state = tmp_path / "file" / "state"
    run = optml("local", "train", str(job), "--state-dir", str(state),
                env=clean_environ(OPTML_LOCAL_BACKEND="process"))
    assert_refused(run, f"Error: --state-dir {state}: {tmp_path}/file: Not a directory")


def test_job_file_that_is_a_directory(tmp_path: Path) -> None:
    run = optml("local", "train", str(tmp_path), "--state-dir", str(tmp_path / "state"),
                env=clean_environ(OPTML_LOCAL_BACKEND="process"))
    assert_refused(run, f"Error: {tmp_path}: is a directory")


def test_a_bad_option_value_is_one_line(tmp_path: Path) -> None:
    run = optml("local", "metrics", "x", "--plot", str(tmp_path), "--state-dir",
                str(tmp_path / "state"), env=clean_environ(OPTML_LOCAL_BACKEND="process"))
    assert_refused(run, "Error: Invalid value for '--plot':", "is a directory")


def test_serve_help_lists_every_option_of_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps help to the terminal's width
    env = clean_environ(COLUMNS="100")
    shown = optml("serve", "--help", env=env)
    assert (shown.returncode, shown.stderr) == (0, "")
    # the very parser `docker run IMAGE serve` uses: its every option, with its help text
    assert shown.stdout == option_parser().format_help()
    for text in ("--worker-class {gthread,gthread-plain,sync}", "--threads N",
                 "request threads per worker", "SAGEMAKER_BIND_TO_PORT",
                 "SAGEMAKER_MODEL_SERVER_WORKERS", "SAGEMAKER_MODEL_SERVER_TIMEOUT"):
        assert text in shown.stdout, text
    assert optml("serve", "-h", env=env).stdout == shown.stdout
    assert optml("entrypoint", "serve", "--help", env=env).stdout == shown.stdout


def test_serve_offers_every_worker_class_gunicorn_is_given() -> None:
    assert tuple(gunicorn_app.WORKER_CLASSES) == WORKER_CLASSES


@pytest.mark.parametrize(("args", "expected"), [
    (["--threads", "x"], "optml serve: argument --threads: must be an integer, got 'x'"),
    (["--threads", "0"], "optml serve: argument --threads: must be >= 1, got 0"),
    (["--worker-class", "async"], "optml serve: argument --worker-class: invalid choice"),
    (["--bogus"], "optml serve: unrecognized arguments: --bogus"),
])
def test_a_bad_serve_option_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    env = clean_environ(SAGEMAKER_BASE_DIR=str(tmp_path))
    assert_refused(optml("serve", *args, env=env, timeout=30), expected)


def test_train_help_says_what_train_takes() -> None:
    shown = optml("train", "--help", env=clean_environ())
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "ARGS are appended to the program's command line" in text
    assert "SAGEMAKER_PROGRAM" in text and "docs/training.md" in text
