"""``optml``'s commands beyond the toolkit's own come from the ``optml.commands`` entry points:
the toolkit names no other package, and an install without one says so on one line."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import click
import pytest
from click.testing import CliRunner

from toolkit import cli as optml


def _registering(monkeypatch: pytest.MonkeyPatch, **commands: str) -> click.Group:
    """A fresh ``optml`` group whose installed packages register exactly ``commands``."""
    monkeypatch.setattr(optml, "registered_commands", lambda: {
        name: EntryPoint(name, value, optml.COMMAND_GROUP) for name, value in commands.items()})
    own = {name: optml.cli.commands[name] for name in ("entrypoint", "serve", "train")}
    return optml.OptmlGroup("optml", commands=own)


def test_this_install_registers_local_and_check() -> None:
    registered = optml.registered_commands()
    assert {"local", "check"} <= set(registered)
    assert registered["local"].load().name == "local"
    assert registered["check"].load().name == "check"


def test_a_registered_command_runs_and_is_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    group = _registering(monkeypatch, local="local_mode.cli:local")
    listed = CliRunner().invoke(group, ["--help"])
    assert listed.exit_code == 0 and "local" in listed.stdout
    result = CliRunner().invoke(group, ["local", "--help"])
    assert result.exit_code == 0 and "deploy" in result.stdout and "train" in result.stdout


def test_without_the_entry_point_optml_local_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(_registering(monkeypatch), ["local", "jobs"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: no command 'local' in this install (it has entrypoint, serve, train; packages "
        "add commands through the 'optml.commands' entry points)"]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_registered_command_that_cannot_load_is_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    group = _registering(monkeypatch, local="optml_no_such_package.cli:local")
    listed = CliRunner().invoke(group, ["--help"])  # help still works, without it
    assert listed.exit_code == 0 and "local" not in listed.stdout
    result = CliRunner().invoke(group, ["local"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: command 'local' is registered (optml_no_such_package.cli:local) but cannot be "
        "loaded here: No module named 'optml_no_such_package'"]


def test_unknown_options_are_still_click_usage_errors() -> None:
    result = CliRunner().invoke(optml.cli, ["--no-such-option"])
    assert result.exit_code == 2 and "No such option" in result.stderr


def test_the_toolkit_imports_no_local_mode_for_its_own_commands() -> None:
    code = ("import sys; sys.argv = ['optml', '--version']\n"
            "from toolkit.cli import main\n"
            "try:\n    main()\n"
            "finally:\n    print(sorted(m for m in sys.modules if m.startswith('local_mode')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert run.stdout.splitlines()[-1] == "[]"


def test_a_toolkit_only_install_says_so_for_optml_local() -> None:
    # The entry point is registered, the package is not there: what a partial install sees.
    code = ("import sys; sys.modules['local_mode'] = None\n"
            "sys.argv = ['optml', 'local', 'jobs']\n"
            "from toolkit.cli import main\nmain()")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith("Error: command 'local' is registered (local_mode.cli:local) but "
                           "cannot be loaded here: "), line
