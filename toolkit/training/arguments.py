"""Turn hyperparameters into command-line arguments.

Differences from the reference toolkit, on purpose: the job's order is kept (not sorted), every
value is its own argv item (no shell string, so spaces and quotes survive), and lists/dicts are
passed as JSON (not Python repr) so any language can parse them. Scalars keep the reference's
Python spelling (``True``/``False``/``None``) because existing argparse scripts expect it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def format_value(value: Any) -> str:
    """The argv spelling of one decoded hyperparameter value."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "None"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def to_arguments(hyperparameters: Mapping[str, Any]) -> list[str]:
    """``{"lr": 0.1, "layers": [1, 2]}`` → ``["--lr", "0.1", "--layers", "[1,2]"]``."""
    argv: list[str] = []
    for name, value in hyperparameters.items():
        argv.append(f"--{name}")
        argv.append(format_value(value))
    return argv
