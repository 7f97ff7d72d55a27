"""The autoscaling example (examples/autoscaling-endpoint) on the Docker backend, run as a user
runs it: the endpoint's instances are containers of the example's image, started behind the
router on scale-out and stopped on scale-in.

The checks are the process backend's (tests/integration/test_examples_autoscaling_process.py,
:func:`check_run`): scaled out to 3 and back to 1, no failed request, the CloudWatch sums equal
the requests sent, the scaling activities and alarms as the service's, a cost estimate from the
packaged prices. Here also: the handlers are the image's own, and no container or network of
the run is left.
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from tests.docker.test_examples import no_containers_left
from tests.integration.test_examples_autoscaling_process import ENDPOINT, check_run, run_example


@pytest.mark.docker
def test_autoscaling_example_on_docker(images: dict[str, str],
                                       docker_client: docker.DockerClient,
                                       tmp_path: Path) -> None:
    out, root, summary = run_example("docker", tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "docker"
    assert "serving: docker" in out
    check_run(root, out, summary)
    for instance in ("main-1", "main-2", "main-3"):  # the image's handlers on every instance
        log = (root / "logs" / f"{instance}.log").read_text()
        assert "model_fn from /opt/ml/code/inference.py" in log, instance
    no_containers_left(docker_client, f"optml.endpoint={ENDPOINT}")
    state = f"optml.state={root / 'state'}"
    assert docker_client.containers.list(all=True, filters={"label": state}) == []
    assert docker_client.networks.list(filters={"label": state}) == []
