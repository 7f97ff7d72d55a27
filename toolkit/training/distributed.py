"""Multi-host training: wait for peers to resolve and build the ``torchrun`` command."""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from toolkit.errors import OptmlError

log = logging.getLogger(__name__)


class HostResolutionError(OptmlError):
    """A host of the cluster did not resolve in time."""


def wait_for_hosts(hosts: Sequence[str], timeout: float, *,
                   resolve: Callable[[str], object] = socket.gethostbyname,
                   sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic,
                   initial_delay: float = 0.1, max_delay: float = 5.0) -> None:
    """Block until every host resolves, backing off exponentially up to ``timeout`` seconds.

    Container DNS entries of the other hosts appear a moment after ours; failing at once would
    turn a race into a failed job.
    """
    deadline = clock() + timeout
    pending = list(dict.fromkeys(hosts))
    delay = initial_delay
    while True:
        still: list[str] = []
        for host in pending:
            try:
                resolve(host)
            except (OSError, UnicodeError):
                still.append(host)
        if not still:
            return
        pending = still
        remaining = deadline - clock()
        if remaining <= 0:
            raise HostResolutionError(
                f"host(s) {', '.join(pending)} did not resolve within {timeout:g} s")
        log.info("waiting for host(s) to resolve: %s", ", ".join(pending))
        sleep(min(delay, remaining))
        delay = min(delay * 2, max_delay)


@dataclass(frozen=True)
class TorchrunPlan:
    """Where this host sits in a torchrun job."""

    nnodes: int
    nproc_per_node: int
    node_rank: int
    master_addr: str
    master_port: int

    def command(self, entry: Sequence[str], *, python: str = sys.executable,
                is_python: bool = True) -> list[str]:
        """``python -m torch.distributed.run ... <entry>``; ``entry`` is the script (or ``-m
        module``) and its arguments. A non-Python executable runs with ``--no-python``."""
        argv = [python, "-m", "torch.distributed.run",
                "--nnodes", str(self.nnodes),
                "--nproc-per-node", str(self.nproc_per_node),
                "--node-rank", str(self.node_rank),
                "--master-addr", self.master_addr,
                "--master-port", str(self.master_port)]
        if not is_python:
            argv.append("--no-python")
        return argv + list(entry)

    def environment(self, network_interface: str | None) -> dict[str, str]:
        env = {"MASTER_ADDR": self.master_addr, "MASTER_PORT": str(self.master_port),
               "NODE_RANK": str(self.node_rank), "NNODES": str(self.nnodes),
               "WORLD_SIZE": str(self.nnodes * self.nproc_per_node)}
        if network_interface:
            env["GLOO_SOCKET_IFNAME"] = network_interface
            env["NCCL_SOCKET_IFNAME"] = network_interface
        return env
