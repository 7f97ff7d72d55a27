"""The static gates: ruff and mypy, with the settings in pyproject.toml, over the repository.

Part of the test command (and so of CI) rather than a separate step, so a change that breaks a
rule or a type fails where every other check fails. Both must find nothing: a finding that is
not worth fixing gets a `noqa` naming its rule and a reason, or a `type: ignore[code]`, where it
stands (and RUF100 / warn_unused_ignores fail a directive that no longer applies).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True,
                          text=True, check=False)


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing_in_toolkit_and_local_mode() -> None:
    # the files, flags and per-module settings are pyproject.toml's [tool.mypy]
    result = _run("mypy", "--no-incremental")
    assert result.returncode == 0, result.stdout + result.stderr
