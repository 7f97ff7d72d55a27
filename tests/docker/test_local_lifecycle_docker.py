"""The day-two lifecycle of tests/integration/test_local_lifecycle_cli.py on the Docker backend:
train (``optml/base`` with its code from a local directory), deploy, redeploy, invoke,
transform, ps, logs, rm, prune -- twice with the same names -- and then no record, no process,
no container and no network of the state directory is left."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from local_mode.docker_engine import STATE_LABEL
from tests.docker import harness
from tests.integration.local_training_support import processes_using
from tests.integration.test_local_endpoints_support import ECHO, make_model_tar
from tests.integration.test_local_lifecycle_cli import lifecycle, resources_left, run_optml

pytestmark = pytest.mark.docker


def left_on_engine(client: docker.DockerClient, state: Path) -> list[str]:
    selector = {"label": [f"{STATE_LABEL}={state.absolute()}"]}
    return [*(c.name for c in client.containers.list(all=True, filters=selector)),
            *(n.name for n in client.networks.list(filters=selector))]


def test_the_whole_lifecycle_on_docker_twice_leaves_nothing(
        docker_client: docker.DockerClient, tmp_path: Path) -> None:
    harness.ensure_images(docker_client, ("base",))
    state = tmp_path / "state"
    model_tar = make_model_tar(tmp_path / "model.tar.gz", ECHO, {"value.txt": "lc"})
    try:
        for round_ in (1, 2):
            lifecycle(state, tmp_path, model_tar, round_, backend="docker",
                      left_on_engine=lambda: left_on_engine(docker_client, state))
            assert left_on_engine(docker_client, state) == []
    finally:
        run_optml(state, "endpoints", "rm", "lc-endpoint", backend="docker")
        run_optml(state, "prune", "--yes", backend="docker")
    assert resources_left(state) == []
    assert processes_using(state) == []
    assert left_on_engine(docker_client, state) == []
