"""Session fixture of the conformance suite: its third-party images, built once and cached."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.docker import harness
from tests.docker.conformance.local import LocalMode

BUILD_SCRIPT = harness.REPO / "scripts" / "build-conformance-images.sh"


@pytest.fixture(scope="session")
def conformance_images(docker_client: docker.DockerClient) -> dict[str, str]:
    """``{name: tag}`` of every image under tests/docker/conformance/images, made by
    scripts/build-conformance-images.sh: a second or so when nothing changed, since each image
    carries the hash of what decides it; from scratch (wheels, Debian packages) about 2.5 minutes."""
    harness.ensure_images(docker_client, ("sklearn",))  # three-line is FROM optml/sklearn
    result = subprocess.run([str(BUILD_SCRIPT)], cwd=harness.REPO, capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{BUILD_SCRIPT.name} failed ({result.returncode}):\n"
                           f"{result.stderr[-4000:]}")
    return dict(line.split("=", 1) for line in result.stdout.split())


@pytest.fixture
def local(tmp_path: Path, docker_client: docker.DockerClient,
          conformance_images: dict[str, str]) -> Iterator[LocalMode]:
    """Local mode on the Docker backend on a private state directory; afterwards no container
    or network of it may be left (what was left is removed, and fails the test)."""
    mode = LocalMode(tmp_path, docker_client)
    try:
        yield mode
    finally:
        left = mode.close()
    assert left == []
