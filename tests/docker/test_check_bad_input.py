"""``optml check IMAGE --job FILE`` with a job file of the wrong shape, as a user runs it: the
image exists, so the job is read; it is refused on one line naming the file and field, before any
container runs. Costs no container: only the stand-in base image has to be there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from tests.docker import harness

pytestmark = pytest.mark.docker


@pytest.mark.parametrize(("job", "expected"), [
    ({"AlgorithmSpecification": {"TrainingImage": "x", "TrainingInputMode": "File"},
      "ResourceConfig": "x"}, "Invalid type for parameter ResourceConfig, value: x"),
    ({"AlgorithmSpecification": {"TrainingImage": "x", "TrainingInputMode": "File"},
      "ResourceConfig": {"InstanceType": "ml.nope", "InstanceCount": 1, "VolumeSizeInGB": 1}},
     "'ml.nope' at 'ResourceConfig.InstanceType'"),
])
def test_a_job_file_of_the_wrong_shape_is_one_line_and_exit_2(
        docker_client: docker.DockerClient, tmp_path: Path, job: dict[str, object],
        expected: str) -> None:
    harness.ensure_images(docker_client, ())
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    before = _runs_of(docker_client, harness.STANDIN_BASE)
    run = subprocess.run([sys.executable, "-m", "toolkit.cli", "check", harness.STANDIN_BASE,
                          "--job", str(path)], capture_output=True, text=True, timeout=120,
                         check=False)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith(f"optml check: {path}: ") and expected in line, line
    assert _runs_of(docker_client, harness.STANDIN_BASE) == before  # nothing was started


def _runs_of(client: docker.DockerClient, image: str) -> set[str]:
    return {c.id for c in client.containers.list(all=True) if c.attrs["Config"]["Image"] == image}
