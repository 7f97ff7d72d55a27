"""Start, probe and stop the server processes of the benchmark.

Every server runs in its own session (process group) so that one ``killpg`` reaches everything it
spawned, including daemons that outlive their parent (``multi-model-server --start`` forks Java
and exits; Java forks Python workers). Stopping sends SIGTERM to the group, waits a bounded time
for every member to go, then SIGKILLs what is left: a benchmark must never leave servers behind.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"


class ServerStartError(RuntimeError):
    """A server exited or never became ready; the message carries the tail of its log."""


PORT_RANGE = (20000, 32766)
"""Ports handed to servers. Multi Model Server rejects ports >= 32767, and staying below the
kernel's ephemeral range (32768+) avoids colliding with wrk's own client ports."""


def free_port(low: int = PORT_RANGE[0], high: int = PORT_RANGE[1], attempts: int = 200) -> int:
    """A TCP port in ``[low, high]`` that is free on 127.0.0.1 right now."""
    rng = random.Random()
    for _ in range(attempts):
        port = rng.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {low}-{high} on {LOOPBACK} after {attempts} attempts")


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``, read from /proc.

    ``killpg(pgid, 0)`` also succeeds for zombies that nobody reaps (orphans in a container
    without an init), so it cannot tell "stopped" from "still running".
    """
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ')'.
        rest = stat[stat.rfind(")") + 2:].split()
        state, pgrp = rest[0], int(rest[2])
        if pgrp == pgid and state not in {"Z", "X"}:
            members.append(int(entry))
    return members


def group_cpu_by_pid(pgid: int) -> dict[int, float]:
    """User + system CPU seconds so far of each live member of process group ``pgid``.

    Differenced over a load run, it shows how the work was shared: for ``optml serve`` the
    master and each worker; for MMS, Java and its Python workers.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    usage = {}
    for pid in _group_members(pgid):
        try:
            stat = Path("/proc", str(pid), "stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        usage[pid] = (int(rest[11]) + int(rest[12])) / ticks  # utime, stime (fields 14, 15)
    return usage


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds used so far by the live members of process group ``pgid``.

    Taken before and after a load run, the difference divided by the requests served is the
    server's CPU cost per request: a figure that the other tenants of a shared machine disturb
    far less than requests/s.
    """
    return sum(group_cpu_by_pid(pgid).values())


@dataclass
class ManagedProcess:
    """One server process group, with its log file and the moment it was started."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    log_path: Path
    started_at: float = 0.0
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> ManagedProcess:
        """Spawn the process in a new session, stdout and stderr to :attr:`log_path`."""
        with open(self.log_path, "ab") as log:
            self.started_at = time.monotonic()
            self.popen = subprocess.Popen(
                list(self.argv), env=dict(self.env), cwd=self.cwd, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """CPU seconds of this process group's live members (see :func:`group_cpu_seconds`)."""
        return 0.0 if self.popen is None else group_cpu_seconds(self.popen.pid)

    def cpu_by_pid(self) -> dict[int, float]:
        """CPU seconds of each live member of this process group (:func:`group_cpu_by_pid`)."""
        return {} if self.popen is None else group_cpu_by_pid(self.popen.pid)

    def exited(self) -> int | None:
        """The exit status of the leader, or ``None`` while it runs."""
        return None if self.popen is None else self.popen.poll()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_seconds: float = 10.0) -> None:
        """SIGTERM the whole group, wait up to ``grace_seconds``, then SIGKILL the rest."""
        if self.popen is None:
            return
        pgid = self.popen.pid
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            self.popen.poll()
            if not _group_members(pgid):
                break
            time.sleep(0.05)
        else:
            _signal_group(pgid, signal.SIGKILL)
            kill_deadline = time.monotonic() + 5.0
            while _group_members(pgid) and time.monotonic() < kill_deadline:
                self.popen.poll()
                time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored
            self.popen.wait(timeout=5.0)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def http_status(port: int, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout: float = 2.0) -> int | None:
    """One request on a fresh connection; ``None`` when the connection fails or times out."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@dataclass(frozen=True)
class Readiness:
    """Seconds from process start to the first 200 on /ping, and to the first 200 invocation.

    They differ when a server answers /ping before its model is loaded (the reference model
    servers do); optml answers 200 only once a worker can serve.
    """

    ping_seconds: float
    invocation_seconds: float


def wait_ready(proc: ManagedProcess, port: int, body: bytes, content_type: str,
               timeout_seconds: float, poll_seconds: float = 0.01) -> Readiness:
    """Poll /ping, then POST /invocations, until both answer 200; bounded by ``timeout_seconds``.

    Raises :class:`ServerStartError` (with the server's log tail) when the process exits or the
    deadline passes.
    """
    deadline = proc.started_at + timeout_seconds
    ping_at: float | None = None
    while time.monotonic() < deadline:
        status = proc.exited()
        if status is not None:
            raise ServerStartError(
                f"{proc.name} exited with status {status} before it was ready; log "
                f"{proc.log_path}:\n{proc.log_tail()}")
        if ping_at is None:
            if http_status(port, "GET", "/ping", timeout=2.0) == 200:
                ping_at = time.monotonic()
                continue
        elif http_status(port, "POST", "/invocations", body=body,
                         headers={"Content-Type": content_type, "Accept": content_type},
                         timeout=10.0) == 200:
            return Readiness(ping_seconds=ping_at - proc.started_at,
                             invocation_seconds=time.monotonic() - proc.started_at)
        time.sleep(poll_seconds)
    stage = "/ping" if ping_at is None else "POST /invocations"
    raise ServerStartError(
        f"{proc.name} did not answer 200 on {stage} within {timeout_seconds:.0f} s; log "
        f"{proc.log_path}:\n{proc.log_tail()}")
