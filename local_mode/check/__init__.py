"""``optml check IMAGE``: run the /opt/ml contract checks against any image in the local engine.

The Python API is what the command uses, so tests (and conformance suites) call it directly::

    from local_mode.check import CheckOptions, run_checks

    report = run_checks("my/image:latest", CheckOptions(sample=Path("row.csv"),
                                                        content_type="text/csv"))
    assert report.passed(), format_table(report)

See docs/check.md for what each check does and why.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local_mode.check.checks import run_checks
    from local_mode.check.containers import sweep
    from local_mode.check.errors import CheckInputError
    from local_mode.check.names import ALL_CHECKS, SERVE_CHECKS, TRAIN_CHECKS
    from local_mode.check.options import CheckOptions
    from local_mode.check.report import CheckResult, Report, Status, format_table

_HOMES = {
    "run_checks": "checks", "sweep": "containers", "CheckInputError": "errors",
    "ALL_CHECKS": "names", "SERVE_CHECKS": "names", "TRAIN_CHECKS": "names",
    "CheckOptions": "options", "CheckResult": "report", "Report": "report", "Status": "report",
    "format_table": "report",
}
"""Where each public name lives, loaded on first use: ``optml`` imports the command (and so
this package) on every invocation, ``optml train`` inside each container included, which must
not pay for Docker, the training backends or even the report."""


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ALL_CHECKS", "SERVE_CHECKS", "TRAIN_CHECKS", "CheckInputError", "CheckOptions",
           "CheckResult", "Report", "Status", "format_table", "run_checks", "sweep"]
