"""This machine's loopback, where local mode's own servers listen and containers publish ports.

Training's process backend (the hosts' master port) and the serving process backend (one port
per instance) both need a port nobody uses; neither may import the other, so it lives here.
"""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1: free now, not reserved, so whoever binds
    it a moment later can lose a race with another process (a serving instance that does is
    replaced on a new port)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])
