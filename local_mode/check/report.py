"""What ``optml check`` found: one result per check, the verdict, and the printed table.

Kept apart from the Docker driving so the verdict rules (what exit status a report means) and
the table are plain data, testable without an engine.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


class Status(enum.Enum):
    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, what it verifies (one line), the outcome and why."""

    name: str
    title: str
    status: Status
    reason: str
    seconds: float | None = None
    """How long the check's own container work took (None when nothing ran)."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "status": self.status.value,
                "reason": self.reason, "seconds": self.seconds}


@dataclass(frozen=True)
class Report:
    """Every check that was asked for, in the order they ran."""

    image: str
    results: tuple[CheckResult, ...] = field(default=())

    def result(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no check named {name!r} in this report "
                       f"(have: {', '.join(r.name for r in self.results)})")

    def count(self, status: Status) -> int:
        return count(self.results, status)

    def passed(self, allow_skip: bool = False) -> bool:
        """True when every check passed; a SKIP counts as not passed unless ``allow_skip``.

        A skipped check verified nothing, so by default it cannot vouch for the image: an
        image is only called conformant on evidence.
        """
        accepted = {Status.PASS, Status.SKIP} if allow_skip else {Status.PASS}
        return bool(self.results) and all(r.status in accepted for r in self.results)

    def exit_status(self, allow_skip: bool = False) -> int:
        return 0 if self.passed(allow_skip) else 1

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "results": [r.as_dict() for r in self.results]}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)


def _wrap(text: str, width: int) -> list[str]:
    """Split ``text`` into lines of at most ``width`` characters at spaces (long words cut)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split(" "):
            while len(word) > width:
                if current:
                    lines.append(current)
                    current = ""
                lines.append(word[:width])
                word = word[width:]
            candidate = f"{current} {word}" if current else word
            if len(candidate) > width:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
    return lines


def format_table(report: Report, width: int = 100) -> str:
    """The report as an aligned text table (reasons wrapped to fit ``width`` columns)."""
    names = [r.name for r in report.results] or ["CHECK"]
    name_width = max(len("CHECK"), *(len(n) for n in names))
    status_width = len("STATUS")
    time_width = 7
    reason_width = max(30, width - name_width - status_width - time_width - 6)
    lines = [f"optml check {report.image}", "",
             f"{'CHECK':<{name_width}}  {'STATUS':<{status_width}}  {'TIME':>{time_width}}"
             f"  REASON"]
    for result in report.results:
        took = "" if result.seconds is None else f"{result.seconds:.1f}s"
        reason = _wrap(result.reason, reason_width)
        lines.append(f"{result.name:<{name_width}}  {result.status.value:<{status_width}}  "
                     f"{took:>{time_width}}  {reason[0]}".rstrip())
        indent = " " * (name_width + status_width + time_width + 6)
        lines.extend(f"{indent}{more}".rstrip() for more in reason[1:])
    lines.append("")
    lines.append(summary_line(report.results))
    return "\n".join(lines)


def summary_line(results: Iterable[CheckResult]) -> str:
    results = list(results)
    counts = {s: count(results, s) for s in Status}
    return (f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, "
            f"{counts[Status.SKIP]} skipped")


def count(results: Iterable[CheckResult], status: Status) -> int:
    return sum(1 for r in results if r.status is status)


def select(names: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """The checks to run, in ``known``'s order; ValueError naming an unknown one."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r} (known: {', '.join(known)})")
    wanted = set(names) or set(known)
    return tuple(n for n in known if n in wanted)
