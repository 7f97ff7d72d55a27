"""Helpers for the ``optml serve`` integration tests: a model tree and a real server process.

(No tests here; the module is imported by the test_serve_* modules next to it.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def model_tree(root: Path, inference: str, files: dict[str, str] | None = None) -> Path:
    """``root`` as an /opt/ml tree with ``model/code/inference.py`` (dedented)."""
    code = root / "model" / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "inference.py").write_text(textwrap.dedent(inference))
    for name, text in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


class Server:
    """``python -m toolkit.cli serve`` on 127.0.0.1:<free port>, always stopped by the fixture."""

    def __init__(self, base_dir: Path, *, env: dict[str, str] | None = None,
                 args: list[str] | None = None) -> None:
        self.base_dir = base_dir
        self.port = free_port()
        self.log_path = base_dir / "server.log"
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SAGEMAKER_", "OPTML_"))}
        environ.update({"SAGEMAKER_BASE_DIR": str(base_dir),
                        "SAGEMAKER_BIND_TO_PORT": str(self.port),
                        "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
                        "OPTML_INSTALL_REQUIREMENTS": "false",
                        "PYTHONPATH": str(REPO)})
        environ.update(env or {})
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "toolkit.cli", "serve", *(args or [])], env=environ,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, cwd=base_dir)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_status(self, status: int, timeout: float = 60.0) -> requests.Response:
        """Poll /ping until it answers ``status`` (connection errors are retried)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log}")
            try:
                response = requests.get(self.url("/ping"), timeout=10)
                if response.status_code == status:
                    return response
                if b"model_load_failed" in response.content:
                    raise AssertionError(f"the model failed to load:\n{self.log}")
                last = response.status_code
            except requests.ConnectionError as exc:
                last = exc
            time.sleep(0.05)
        raise AssertionError(f"/ping never answered {status} (last: {last}):\n{self.log}")

    def wait_ready(self, timeout: float = 60.0) -> Server:
        self.wait_status(200, timeout)
        return self

    def worker_pids(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop for good: SIGTERM, then SIGKILL of this server's process group."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=35)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # stray workers of this server only
            if self.proc.poll() is None:
                self.proc.wait(timeout=10)
        finally:
            self._log.close()
