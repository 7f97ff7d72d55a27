"""Which backend runs a job when the caller asked for ``auto``: Docker when an engine answers.

Shared by every resource kind's API (training jobs, endpoints, transform jobs), so it lives
below all of them rather than in the client that composes them.
"""

from __future__ import annotations


def docker_reachable() -> bool:
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return False
    return True


def choose_backend(requested: str) -> str:
    """``auto`` is Docker when an engine answers, else the process backend (documented)."""
    if requested != "auto":
        return requested
    return "docker" if docker_reachable() else "process"
