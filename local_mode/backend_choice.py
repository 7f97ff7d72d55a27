"""Which backend runs a job when the caller asked for ``auto``: Docker when an engine answers.

Shared by every resource kind's API (training jobs, endpoints, transform jobs), so it lives
below all of them rather than in the client that composes them.
"""

from __future__ import annotations

from local_mode.docker_engine import docker_reachable


def choose_backend(requested: str) -> str:
    """``auto`` is Docker when an engine answers, else the process backend (documented)."""
    if requested != "auto":
        return requested
    return "docker" if docker_reachable() else "process"
