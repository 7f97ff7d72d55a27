"""Write ``/opt/ml/output/failure`` so the failure reason says what went wrong.

The service shows only the first 1024 characters, so the first line carries the most useful
part: the exception line of the traceback and the exit code. The command and the stderr tail
follow. A failure file the user's code wrote itself always wins.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SHOWN_CHARS = 1024
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*"
                             r"(?:Error|Exception|Exit|Interrupt|Failure|Warning|Group)(?::|$)")
#: ExceptionGroup tracebacks (3.11+) prefix every line with "  | " box drawing.
_GROUP_PREFIX = re.compile(r"^[ |]*\| ")
OOM_HINT = ("exit code 137: the process was killed with SIGKILL, most often by the out-of-memory "
            "killer; use a larger instance type or less memory (batch size, data loading)")


def summarize_stderr(stderr_tail: str) -> str | None:
    """The last line that looks like a Python exception, else the last non-empty line."""
    lines = [line.rstrip() for line in stderr_tail.splitlines() if line.strip()]
    for line in reversed(lines):
        line = _GROUP_PREFIX.sub("", line)
        if _EXCEPTION_LINE.match(line):
            return line
    return lines[-1].strip() if lines else None


def describe_exit(returncode: int) -> str:
    if returncode > 128:
        try:
            name = signal.Signals(returncode - 128).name
        except ValueError:
            return f"exit code {returncode}"
        return f"exit code {returncode} ({name})"
    return f"exit code {returncode}"


def user_failure_message(*, returncode: int, command: Sequence[str], stderr_tail: str,
                         stopped_by: int | None = None, killed_after_grace: bool = False,
                         grace_seconds: float | None = None) -> str:
    """Compose the failure reason of a user program that exited non-zero."""
    summary = summarize_stderr(stderr_tail)
    head = f"AlgorithmError: {describe_exit(returncode)}"
    if summary:
        head += f": {summary}"
    lines = [head]
    if stopped_by is not None:
        name = signal.Signals(stopped_by).name
        if killed_after_grace:
            grace = "" if grace_seconds is None else f"{grace_seconds:g} s "
            lines.append(f"Stopped: {name} received; the program did not exit within the "
                         f"{grace}grace period and was killed.")
        else:
            lines.append(f"Stopped: {name} received and forwarded to the program.")
    elif returncode == 137:
        lines.append(OOM_HINT)
    lines.append(f"Command: {shlex.join(command)}")
    if stderr_tail.strip():
        lines.append("Last lines of stderr:")
        lines.append(stderr_tail.rstrip("\n"))
    return "\n".join(lines) + "\n"


@dataclass
class FailureFile:
    """Remembers whether the user's code wrote the failure file itself during the run."""

    path: Path
    _before: tuple[int, int] | None = None

    @classmethod
    def prepare(cls, path: Path) -> FailureFile:
        """Drop a stale file from an earlier run of the same tree and remember the state."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return cls(path, None)

    def written_by_user(self) -> bool:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return False
        return st.st_size > 0 and (st.st_mtime_ns, st.st_size) != self._before

    def write(self, message: str) -> bool:
        """Write ``message`` unless user code wrote its own; returns whether it was written."""
        if self.written_by_user():
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(message, encoding="utf-8")
        os.replace(tmp, self.path)
        st = self.path.stat()
        self._before = (st.st_mtime_ns, st.st_size)
        return True
