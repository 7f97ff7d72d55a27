"""Whether a process id (or a process group) still names a running process.

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


def group_alive(pgid: int) -> list[int]:
    """The live (non-zombie) processes of process group ``pgid``: what is left of a server
    and the workers it forked once it was told to stop. Zombies count as gone, as in
    :func:`pid_alive` (their parent, or whoever inherits them, reaps them in its own time)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    if not os.path.isdir("/proc"):  # no procfs (macOS): signal 0 is the best answer there
        return [pgid]
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return members
