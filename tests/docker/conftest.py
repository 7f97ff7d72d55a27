"""Session fixtures of the Docker tier: the images (built once), a client, leftover sweeping."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.docker import harness


@pytest.fixture(scope="session")
def docker_client(docker_engine: None) -> Iterator[docker.DockerClient]:
    client = docker.from_env(timeout=600)
    harness.sweep(client)
    try:
        yield client
    finally:
        harness.sweep(client)
        client.close()


@pytest.fixture(scope="session")
def images(docker_client: docker.DockerClient) -> dict[str, str]:
    """Every optml image, built once per session by scripts/build-images.sh (cached layers)."""
    return harness.build_images()
