"""Progress for long waits, drawn by rich on stderr while stderr is a terminal -- and nothing of
it otherwise, so logs and pipes get only the outcome.

:func:`waiting` is a spinner with the awaited status and the elapsed time (``wait``, ``stop
--wait``, ``deploy``); :class:`TransformProgress` a bar of files done with records, records per
second and the time left (``transform --wait``). rich loads only when a terminal will show it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def on_terminal() -> bool:
    """Whether progress is shown: stderr (where it goes) is a terminal."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


@contextmanager
def waiting(what: str) -> Iterator[Callable[[str], None]]:
    """A spinner ``<what>: <status> (12 s)`` while the block runs; yields the function that
    sets the status."""
    if not on_terminal():
        yield lambda status: None
        return
    from rich.console import Console

    started = time.monotonic()
    console = Console(stderr=True, highlight=False)
    with console.status(what) as status:
        def show(text: str) -> None:
            status.update(f"{what}: {text} ({time.monotonic() - started:.0f} s)")
        yield show


class TransformProgress:
    """Files done of files total, with records, records/s and ETA, for one transform job."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._progress: Any = None
        self._task: Any = None
        self._started = time.monotonic()

    def __enter__(self) -> TransformProgress:
        if on_terminal():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("files"), TextColumn("{task.fields[records]} records"),
                TextColumn("{task.fields[rate]} rec/s"), TimeElapsedColumn(),
                TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self._progress.__enter__()
            self._task = self._progress.add_task(self.name, total=None, records=0, rate="-")
        return self

    def update(self, status: str, files_done: int, files_total: int, records: int) -> None:
        if self._progress is None:
            return
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self._progress.update(self._task, completed=files_done, total=files_total or None,
                              records=records, rate=f"{records / elapsed:,.0f}",
                              description=f"{self.name} {status}")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


__all__ = ["TransformProgress", "on_terminal", "waiting"]
