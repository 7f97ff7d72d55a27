"""Run one image build with a live status line: which image of how many, its elapsed time and the
build step it is on.

scripts/build-images.sh uses this only when its stdout is a terminal (a CI log keeps the plain
lines). The build's own output goes to a log file, as without this helper; the status line is
transient, so what stays on the screen is the script's plain "built ... in Ns" line.

Usage: python scripts/lib/build_progress.py INDEX TOTAL LABEL LOG_FILE -- COMMAND [ARG...]
Exit status: the command's.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

STEP = re.compile(r"^#\d+ (\[[^\]]*\] .*)$")
"""A BuildKit plain-progress step header, e.g. ``#7 [2/5] RUN pip install ...``."""
REFRESH_SECONDS = 0.5


def last_step(log_file: Path) -> str:
    """The newest step header in the build log so far ('' before the first)."""
    try:
        with log_file.open("rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 16384))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    steps = [m.group(1) for m in map(STEP.match, tail.splitlines()) if m]
    return steps[-1] if steps else ""


def run(index: int, total: int, label: str, log_file: Path, command: list[str]) -> int:
    console = Console()
    started = time.monotonic()
    with log_file.open("wb") as log:
        build = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    with console.status("", spinner="dots") as status:
        while build.poll() is None:
            elapsed = int(time.monotonic() - started)
            step = last_step(log_file)
            width = max(10, console.width - len(label) - 30)
            status.update(f"[{index}/{total}] building [bold]{label}[/] {elapsed}s"
                          + (f"  [dim]{step[:width]}[/]" if step else ""))
            time.sleep(REFRESH_SECONDS)
    return build.returncode


def main(argv: list[str]) -> int:
    if len(argv) < 6 or argv[4] != "--" or not argv[0].isdigit() or not argv[1].isdigit():
        print("usage: build_progress.py INDEX TOTAL LABEL LOG_FILE -- COMMAND [ARG...]",
              file=sys.stderr)
        return 2
    try:
        return run(int(argv[0]), int(argv[1]), argv[2], Path(argv[3]), argv[5:])
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # the build command could not be started
        print(f"build_progress: {argv[5]}: {exc.strerror or exc}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
