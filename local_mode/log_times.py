"""When each line of a local log file was written, kept beside it in ``<log>.times``.

Log files are plain text that users (and the service's log readers, through CloudWatch Logs'
shapes) read as they are, so the time of a line cannot go into the line. Whoever appends a line
to a log local mode writes itself (a job's ``all.log``, a serving container's output) also
appends ``<offset> <epoch milliseconds>`` of that line to the sidecar file; ``optml local logs
--timestamps`` and ``--since`` read the two together. Every log local mode keeps is written this
way (job hosts, serving containers and serving processes); a log without a sidecar (one left by
an older release) has lines without a time (``None``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

SUFFIX = ".times"


def times_path(log: Path) -> Path:
    return log.with_name(log.name + SUFFIX)


def append_line(handle: BinaryIO, times: BinaryIO, line: bytes, when: float | None = None) -> None:
    """Append ``line`` to the log open as ``handle`` (append mode) and its time to ``times``."""
    offset = handle.seek(0, 2)
    handle.write(line)
    stamp = int((time.time() if when is None else when) * 1000)
    times.write(b"%d %d\n" % (offset, stamp))


def read_times_from(log: Path, start: int = 0) -> tuple[dict[int, int], int]:
    """Offset of a line in ``log`` -> when it was written (epoch ms): the entries of ``log``'s sidecar from byte ``start`` on (complete entries only), and
    where the next read starts: a follower reads each entry once, however long the log grows."""
    try:
        with times_path(log).open("rb") as handle:
            handle.seek(start)
            raw = handle.read()
    except FileNotFoundError:
        return {}, start
    complete = raw[:raw.rfind(b"\n") + 1]
    stamps = {}
    for entry in complete.splitlines():
        offset, _, stamp = entry.partition(b" ")
        if offset.isdigit() and stamp.isdigit():
            stamps[int(offset)] = int(stamp)
    return stamps, start + len(complete)


def timed_lines(log: Path, start: int = 0, stamps: dict[int, int] | None = None, *,
                final: bool = False) -> Iterator[tuple[int, int, int | None, bytes]]:
    """``(offset, end offset, epoch ms or None, line)`` of each complete line of ``log`` from ``start``;
    ``final`` (the writer is gone): the last line too, even without its newline."""
    stamps = read_times_from(log)[0] if stamps is None else stamps
    try:
        with log.open("rb") as handle:
            handle.seek(start)
            offset = start
            for line in handle:
                if not line.endswith(b"\n"):
                    if final:
                        yield offset, offset + len(line), stamps.get(offset), line + b"\n"
                    return
                yield offset, offset + len(line), stamps.get(offset), line
                offset += len(line)
    except FileNotFoundError:
        return


__all__ = ["SUFFIX", "append_line", "read_times_from", "timed_lines", "times_path"]
