"""The lint gate: ruff, with the rules pyproject.toml selects, over the whole repository.

Part of the test command (and so of CI) rather than a separate step, so a change that breaks a
rule fails where every other check fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
