"""Printing and following logs: ``logs NAME [-f] [--tail N] [--since WHEN] [--timestamps]`` for
every kind that has logs, and ``train --wait`` / ``process --wait``.

A job's log is its ``all.log`` (every host's lines, each prefixed with its host); an endpoint's
or a transform job's are one file per instance, shown with the instance's name as the prefix.
Line times come from the sidecar files of :mod:`local_mode.log_times`; a line that has none (a
log from an older release) takes the time of the line before it in its file, or is shown
without one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from local_mode.cli.options import parse_duration

FOLLOW_INTERVAL = 0.1
"""How often a follower looks for new log bytes and for the end of the job (seconds)."""
PROGRESS_SUFFIX = b"bytes staged so far"


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

JOB_LOG = "all.log"
"""The file that holds a training or processing job's whole log, host-prefixed."""


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: a duration back from now (``90s``, ``10m``, ``2h``, ``1d``) or an ISO 8601
    time (``2026-12-03T10:00:00``, local time unless it names its zone)."""
    back = parse_duration(text)
    if back is not None:
        return (now or datetime.now(timezone.utc)) - back
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a duration such as 10m, 2h or 1d nor an "
                                 "ISO 8601 time", param_hint="--since") from None
    return value if value.tzinfo else value.astimezone()


@dataclass
class Source:
    """One log file and the prefix its lines get (None: they carry their own)."""

    path: Path
    prefix: str | None
    position: int = 0
    last_stamp: int | None = None
    stamps: dict[int, int] = field(default_factory=dict)
    """The line times read so far (line offset -> epoch ms)."""
    times_position: int = 0
    """Where the next read of the sidecar starts."""


def sources(logs_dir: Path, job_log: bool) -> list[Source]:
    """The log files of a resource: ``all.log`` for a job, else every ``*.log`` (instances)."""
    if job_log:
        return [Source(logs_dir / JOB_LOG, None)]
    if not logs_dir.is_dir():
        return []
    return [Source(path, path.stem) for path in sorted(logs_dir.glob("*.log"))]


@dataclass(frozen=True)
class LogOptions:
    """What the user asked of ``logs``."""

    tail: int | None = None
    since: datetime | None = None
    timestamps: bool = False


def _stamp_text(stamp: int | None) -> str:
    if stamp is None:
        return " " * 23 + " "
    when = datetime.fromtimestamp(stamp / 1000, timezone.utc).astimezone()
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp % 1000:03d} "


def read_new(source: Source, options: LogOptions,
             final: bool = False) -> list[tuple[int | None, bytes]]:
    """The complete lines appended to ``source`` since the last read that ``options`` keeps,
    as ``(epoch ms, text)``; ``final``: the last line too, even without its newline."""
    from local_mode.log_times import read_times_from, timed_lines

    lines = []
    cutoff = options.since.timestamp() * 1000 if options.since else None
    # the sidecar first: a line is always written before its time, so a line read after this
    # whose time is not in yet takes its predecessor's (it is at most a moment later)
    fresh, source.times_position = read_times_from(source.path, source.times_position)
    # only times of lines not read yet are kept: a follower holds a few, however long the log
    source.stamps.update((o, s) for o, s in fresh.items() if o >= source.position)
    for start, end, stamp, line in timed_lines(source.path, source.position, source.stamps,
                                               final=final):
        source.stamps.pop(start, None)
        source.position = end
        if stamp is None:
            stamp = source.last_stamp
        source.last_stamp = stamp
        if cutoff is not None and (stamp is None or stamp < cutoff):
            continue
        if source.prefix is not None:
            line = source.prefix.encode() + b" | " + line
        lines.append((stamp, line))
    return lines


class LogSet:
    """The log files of one resource, found again on every read (an endpoint's replaced
    instance starts a new file)."""

    def __init__(self, logs_dir: Path, job_log: bool) -> None:
        self.logs_dir, self.job_log = logs_dir, job_log
        self.files: dict[Path, Source] = {}

    def read(self, options: LogOptions, final: bool = False) -> list[tuple[int | None, bytes]]:
        for source in sources(self.logs_dir, self.job_log):
            self.files.setdefault(source.path, source)
        lines = [line for source in self.files.values()
                 for line in read_new(source, options, final)]
        if len(self.files) > 1:  # merged by time; untimed lines first, each file in its order
            lines.sort(key=lambda item: item[0] if item[0] is not None else -1)
        return lines


def print_logs(logs: LogSet, options: LogOptions, *,
               follow_until: Callable[[], bool] | None = None,
               printer: LinePrinter | None = None) -> None:
    """Print the logs (their last ``options.tail`` lines, those since ``options.since``),
    merged by time; with ``follow_until``, keep printing new lines until it says the resource
    has ended and all was read."""
    printer = printer or LinePrinter()

    def emit(batch: Sequence[tuple[int | None, bytes]]) -> None:
        for stamp, line in batch:
            printer(_stamp_text(stamp).encode() + line if options.timestamps else line)

    finished = follow_until is None or follow_until()
    first = logs.read(options, final=finished)
    if options.tail is not None:
        first = first[-options.tail:] if options.tail else []
    emit(first)
    while follow_until is not None and not finished:
        finished = follow_until()  # sampled before reading: the last lines are never missed
        batch = logs.read(options, final=finished)
        emit(batch)
        if not batch and not finished:
            time.sleep(FOLLOW_INTERVAL)


__all__ = ["FOLLOW_INTERVAL", "JOB_LOG", "LinePrinter", "LogOptions", "LogSet", "Source", "parse_since", "print_logs", "read_new", "sources"]
