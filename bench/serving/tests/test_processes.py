"""Process groups are stopped completely; readiness is measured against a real HTTP server."""

from __future__ import annotations

import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.serving.processes import (
    PORT_RANGE,
    ManagedProcess,
    ServerStartError,
    _group_members,
    free_port,
    group_cpu_seconds,
    http_status,
    wait_ready,
)

# A parent that spawns a grandchild in the same group, then both sleep: stopping the parent
# alone would leave the grandchild running.
_SPAWNER = textwrap.dedent("""
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    time.sleep(60)
""")

_SERVER = textwrap.dedent("""
    import http.server, sys
    class H(http.server.BaseHTTPRequestHandler):
        def _ok(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        do_GET = do_POST = _ok
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
""")


def _proc(tmp_path: Path, name: str, argv: list[str]) -> ManagedProcess:
    return ManagedProcess(name=name, argv=argv, env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                          log_path=tmp_path / f"{name}.log")


def test_free_port_is_in_range_and_bindable() -> None:
    port = free_port()
    assert PORT_RANGE[0] <= port <= PORT_RANGE[1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_stop_ends_the_whole_group_including_grandchildren(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "spawner", [sys.executable, "-c", _SPAWNER]).start()
    try:
        for _ in range(200):
            if len(_group_members(proc.pid)) >= 2:
                break
            time.sleep(0.02)
        assert len(_group_members(proc.pid)) == 2
        assert group_cpu_seconds(proc.pid) >= 0.0
    finally:
        proc.stop(grace_seconds=5.0)
    assert _group_members(proc.pid) == []
    assert proc.exited() is not None


def test_wait_ready_measures_ping_then_invocation(tmp_path: Path) -> None:
    port = free_port()
    proc = _proc(tmp_path, "tiny", [sys.executable, "-c", _SERVER, str(port)]).start()
    try:
        ready = wait_ready(proc, port, b"{}", "application/json", timeout_seconds=30)
        assert 0 < ready.ping_seconds <= ready.invocation_seconds
        assert http_status(port, "POST", "/invocations", b"{}") == 200
    finally:
        proc.stop()


def test_wait_ready_reports_an_early_exit_with_the_log_tail(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "crasher", [sys.executable, "-c",
                                       "import sys; print('model missing'); sys.exit(3)"]).start()
    try:
        with pytest.raises(ServerStartError, match=r"(?s)status 3.*model missing"):
            wait_ready(proc, free_port(), b"{}", "application/json", timeout_seconds=30)
    finally:
        proc.stop()


def test_http_status_is_none_when_nothing_listens() -> None:
    assert http_status(free_port(), "GET", "/ping", timeout=1.0) is None
