"""``optml check IMAGE``: run the /opt/ml contract checks against any image in the local engine.

The Python API is what the command uses, so tests (and conformance suites) call it directly::

    from local_mode.check import CheckOptions, run_checks

    report = run_checks("my/image:latest", CheckOptions(sample=Path("row.csv"),
                                                        content_type="text/csv"))
    assert report.passed(), format_table(report)

See docs/check.md for what each check does and why.
"""

from __future__ import annotations

from local_mode.check.checks import run_checks
from local_mode.check.containers import sweep
from local_mode.check.errors import CheckInputError
from local_mode.check.options import ALL_CHECKS, SERVE_CHECKS, TRAIN_CHECKS, CheckOptions
from local_mode.check.report import CheckResult, Report, Status, format_table

__all__ = ["ALL_CHECKS", "SERVE_CHECKS", "TRAIN_CHECKS", "CheckInputError", "CheckOptions",
           "CheckResult", "Report", "Status", "format_table", "run_checks", "sweep"]
