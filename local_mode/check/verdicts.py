"""How results are worded: the PASS/FAIL/SKIP constructors and the text helpers every check
uses, so reasons read alike whichever check wrote them."""

from __future__ import annotations

from collections.abc import Sequence

from local_mode.check.options import TITLES
from local_mode.check.report import CheckResult, Status

LOG_TAIL_LINES = 6
"""How many of a container's last output lines a failed check quotes."""


def result(name: str, status: Status, reason: str, seconds: float | None) -> CheckResult:
    return CheckResult(name, TITLES[name], status, reason, seconds)


def pass_result(name: str, reason: str, seconds: float | None = None) -> CheckResult:
    return result(name, Status.PASS, reason, seconds)


def fail_result(name: str, reason: str, seconds: float | None = None) -> CheckResult:
    return result(name, Status.FAIL, reason, seconds)


def skip_result(name: str, reason: str, seconds: float | None = None) -> CheckResult:
    return result(name, Status.SKIP, reason, seconds)


def with_time(result: CheckResult, seconds: float) -> CheckResult:
    if result.seconds is not None:
        return result
    return CheckResult(result.name, result.title, result.status, result.reason, seconds)


def secs(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.1f} s"


def one_line(text: str | None, limit: int = 160) -> str:
    flat = " ".join((text or "").split())
    return repr(flat[:limit] + ("..." if len(flat) > limit else ""))


def file_list(names: Sequence[str]) -> str:
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{len(names)} file{'s' if len(names) != 1 else ''} ({shown})"


def log_excerpt(tail: str, lines: int = LOG_TAIL_LINES) -> str:
    kept = [line for line in tail.splitlines() if line.strip()][-lines:]
    return f"; last output: {' | '.join(kept)}" if kept else ""
