"""Whether a process id still names a running process.

One answer for everyone who asks (the serving master about its workers, local mode about its
runners, tests about what they started): a zombie -- exited, not yet reaped by its parent -- is
dead, and a process we may not signal (another user's) is alive.
"""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no procfs (macOS): signal 0 is the best answer there
        return os.path.exists(f"/proc/{pid}") or not os.path.isdir("/proc")
