"""Shared fixtures.

Docker policy: tests marked ``docker`` need a reachable engine. Locally they are skipped with a
reason when none runs; with ``CI=true`` a missing engine is a *failure*, never a silent skip.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.fixtures.s3_server"]


def _docker_reachable() -> str | None:
    try:
        import docker  # optional at import time
    except ImportError:
        return "the docker SDK is not installed"
    try:
        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        return f"no Docker engine reachable: {exc}"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Require a Docker engine: fail under CI=true, skip elsewhere."""
    problem = _docker_reachable()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {problem}; .ci/run must start dockerd")
    pytest.skip(problem)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("docker") and "docker_engine" not in item.fixturenames:
            item.fixturenames.insert(0, "docker_engine")
