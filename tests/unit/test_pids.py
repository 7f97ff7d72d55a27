"""toolkit.pids: running is alive, exited or zombie is dead, another user's is alive; a process
group is alive while one of its members is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from toolkit.pids import group_alive, pid_alive


def test_this_process_is_alive() -> None:
    assert pid_alive(os.getpid())


def test_a_reaped_child_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)


def test_a_zombie_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while pid_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)  # exited but not reaped: a zombie until wait() below
        assert not pid_alive(child.pid)
        assert os.path.exists(f"/proc/{child.pid}")  # still in the table, as a zombie
    finally:
        child.wait()


def test_a_process_we_may_not_signal_is_alive() -> None:
    if os.geteuid() == 0:  # root may signal anyone: check with PID 1 as an unprivileged user
        result = subprocess.run(
            [sys.executable, "-c", "import os, sys; os.setuid(65534); "
             "from toolkit.pids import pid_alive; sys.exit(0 if pid_alive(1) else 1)"],
            env=dict(os.environ, PYTHONPATH=os.getcwd()), check=False)
        assert result.returncode == 0
    else:
        assert pid_alive(1)


def test_group_alive_lists_a_group_until_its_last_member_is_gone() -> None:
    # a shell and its background child: two members of a new process group
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(group_alive(leader.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        members = group_alive(leader.pid)
        assert leader.pid in members and len(members) == 2
        os.killpg(leader.pid, signal.SIGKILL)
        while group_alive(leader.pid) and time.monotonic() < deadline:
            time.sleep(0.01)  # the leader, unreaped, is a zombie: not alive
        assert group_alive(leader.pid) == []
    finally:
        leader.wait()
    assert group_alive(leader.pid) == []
