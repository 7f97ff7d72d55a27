"""Following a local job's log from a shell (``train --wait``, ``logs -f``, ``process --wait``,
...): the lines appended so far, until the job has ended and all of it was read.

Nothing beyond the standard library is imported up front; the runner bookkeeping loads when a
job is looked at.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local_mode.runners import Lifecycle
    from local_mode.state import ResourceDir

FOLLOW_INTERVAL = 0.1
"""How often a follower looks for new log bytes and for the end of the job (seconds)."""
PROGRESS_SUFFIX = b"bytes staged so far"


class LogTail:
    """The complete lines appended to a log file since the last read (the file may not exist
    yet). Keeps its position, so a follower interrupted by Ctrl-C resumes without repeats."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.position = 0
        self._pending = b""

    def read_lines(self) -> list[bytes]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.position)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self.position += len(chunk)
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        return [line + b"\n" for line in lines]

    def rest(self) -> list[bytes]:
        """What is left once the writer is gone: the last line even without its newline."""
        lines = self.read_lines()
        if self._pending:
            lines.append(self._pending + b"\n")
            self._pending = b""
        return lines


def follow_lines(tail: LogTail, ended: Callable[[], bool],
                 interval: float = FOLLOW_INTERVAL) -> Iterator[bytes]:
    """Yield the lines of ``tail`` as they are appended until ``ended()`` is true and all that
    was written before has been read."""
    while True:
        finished = ended()  # sample *before* reading, so the last lines are never missed
        if finished:
            yield from tail.rest()
            return
        lines = tail.read_lines()
        yield from lines
        if not lines:
            time.sleep(interval)


class LinePrinter:
    """Write log lines to stdout; staging-progress lines overwrite each other on a terminal."""

    def __init__(self, stream: Any | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._progress_shown = False

    def __call__(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip("\n")
        if self.tty and line.rstrip().endswith(PROGRESS_SUFFIX):
            self.stream.write("\r\x1b[K" + text)
            self._progress_shown = True
        else:
            if self._progress_shown:
                self.stream.write("\r\x1b[K")
                self._progress_shown = False
            self.stream.write(text + "\n")
        self.stream.flush()


def follow(resource: ResourceDir, lifecycle: Lifecycle, tail: LogTail | None = None,
           printer: LinePrinter | None = None) -> None:
    """Print the job's log (``all.log``) as it grows, until the job (a resource of
    ``lifecycle``'s kind) has ended."""
    from local_mode import runners  # with the state store: botocore loads only when used

    tail = tail or LogTail(resource.logs_dir / "all.log")
    printer = printer or LinePrinter()
    for line in follow_lines(tail, lambda: runners.ended(resource, lifecycle)):
        printer(line)


__all__ = ["FOLLOW_INTERVAL", "LinePrinter", "LogTail", "follow", "follow_lines"]
