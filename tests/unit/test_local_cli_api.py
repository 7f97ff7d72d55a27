"""``optml local api`` refusals and its answers about the server of a state directory (click's
runner on the real command group; the one server here runs in this process, never in the
background, and nothing here stops a process)."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from local_mode.cli.api import api
from local_mode.cli.errors import EXIT_INVALID
from local_mode.wire.endpoint import RECORD_NAME, ApiEndpoint
from local_mode.wire.server import ApiServer
from local_mode.wire.sigv4 import Credentials
from toolkit.cli import cli
from toolkit.settings import Settings

NO_KEYS: dict[str, str | None] = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None,
                                  "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None}


def _optml(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def _one_error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _api_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "optml-api"]


@pytest.mark.parametrize("keys", [
    {},
    {"AWS_ACCESS_KEY_ID": "LOCLONLYTHEKEY000000"},
    {"AWS_SECRET_ACCESS_KEY": "only-the-secret"},
    {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
], ids=["neither", "key-only", "secret-only", "empty"])
def test_environment_credentials_without_keys_is_one_line_and_exit_2(
        tmp_path: Path, keys: dict[str, str]) -> None:
    state = tmp_path / "state"
    env: dict[str, str | None] = {**NO_KEYS, **keys}
    result = _optml("local", "api", "--credentials", "environment", "--state-dir", str(state),
                    env=env)
    assert result.exit_code == EXIT_INVALID
    line = _one_error_line(result)
    assert "AWS_ACCESS_KEY_ID" in line and "AWS_SECRET_ACCESS_KEY" in line
    assert result.stdout == ""  # no variables printed for a server that is not there
    assert not (state / RECORD_NAME).exists() and _api_threads() == []


def test_the_command_object_refuses_the_same_way(tmp_path: Path) -> None:
    result = CliRunner().invoke(api, ["--credentials", "environment", "--state-dir",
                                      str(tmp_path)], env=NO_KEYS, catch_exceptions=False)
    assert result.exit_code == EXIT_INVALID
    _one_error_line(result)


def test_env_with_environment_credentials_without_keys_is_refused_the_same_way(
        tmp_path: Path) -> None:
    """``--env`` starts the server in the background; the option is just as invalid there,
    and says so the same way (not as a background server's failure)."""
    state = tmp_path / "state"
    result = _optml("local", "api", "--env", "--credentials", "environment", "--state-dir",
                    str(state), env=NO_KEYS)
    line = _one_error_line(result)
    assert "AWS_ACCESS_KEY_ID" in line
    assert result.exit_code == EXIT_INVALID, line
    assert ApiEndpoint.read(state) is None


def test_stop_without_a_server_says_so(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = _optml("local", "api", "--stop", "--state-dir", str(state))
    assert result.exit_code == 0
    assert result.stderr.strip() == f"no API server serves {state}"
    assert result.stdout == ""


def test_stop_with_the_record_of_a_dead_server_says_so(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    state = tmp_path / "state"
    ApiEndpoint("http://127.0.0.1:1", "us-east-1", "LOCLX", "s", None, child.pid).write(state)
    result = _optml("local", "api", "--stop", "--state-dir", str(state))
    assert result.exit_code == 0
    assert result.stderr.strip() == f"no API server serves {state}"


@pytest.fixture()
def running(tmp_path: Path) -> Any:
    """A server of ``tmp_path/state`` in this process (its record names this process)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SAGEMAKER_", "OPTML_"))}
    server = ApiServer(Settings.from_environ(env | {"HOME": str(tmp_path)}),
                       state_dir=tmp_path / "state", s3_store="aws", backend="process",
                       credentials=Credentials("LOCLTESTKEY", "secret"))
    with server:
        yield server


def test_a_second_foreground_server_is_refused(tmp_path: Path, running: ApiServer) -> None:
    result = _optml("local", "api", "--state-dir", str(tmp_path / "state"))
    assert result.exit_code == EXIT_INVALID
    line = _one_error_line(result)
    assert running.url in line and "--env" in line
    assert len(_api_threads()) == 1


def test_env_prints_the_running_servers_variables(tmp_path: Path, running: ApiServer) -> None:
    result = _optml("local", "api", "--env", "--state-dir", str(tmp_path / "state"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == running.endpoint.shell()
    assert f"export AWS_ENDPOINT_URL_SAGEMAKER={running.url}" in result.stdout.splitlines()
    assert len(_api_threads()) == 1  # nothing else was started


def test_stop_lists_what_still_runs(tmp_path: Path, running: ApiServer) -> None:
    """Stopping the server stops none of what it started; --stop says what still runs."""
    from local_mode.state import StateStore, now

    store = StateStore(tmp_path / "state")
    store.create("endpoints", "still-up", {"EndpointName": "still-up",
                                           "EndpointStatus": "InService",
                                           "CreationTime": now()}, {})
    store.create("training-jobs", "ended", {"TrainingJobName": "ended",
                                            "TrainingJobStatus": "Completed",
                                            "CreationTime": now()}, {})
    from local_mode.cli.api import _still_running

    assert _still_running(tmp_path / "state") == ["endpoint still-up (InService)"]
