"""The base image's contract: entrypoint dispatch, shims, labels, non-root use, nothing left over."""

from __future__ import annotations

import docker
import pytest

from tests.docker import harness

pytestmark = pytest.mark.docker


def _run(client: docker.DockerClient, image: str, command: list[str], **kwargs: object) -> str:
    status, logs = harness.run_to_completion(client, image, command, timeout=120, **kwargs)
    assert status == 0, logs
    return logs


def test_entrypoint_runs_any_command_and_forwards_its_status(
        docker_client: docker.DockerClient, images: dict[str, str]) -> None:
    assert _run(docker_client, images["base"],
                ["python", "-c", "import toolkit, sys; print('ok', sys.version_info[:2])"]
                ).startswith("ok (3, 11)")
    status, _ = harness.run_to_completion(docker_client, images["base"],
                                          ["python", "-c", "raise SystemExit(7)"], timeout=120)
    assert status == 7


def test_image_config_follows_the_contract(docker_client: docker.DockerClient,
                                           images: dict[str, str]) -> None:
    for name, tag in images.items():
        config = docker_client.images.get(tag).attrs["Config"]
        assert config["Entrypoint"] == ["optml", "entrypoint"], name
        labels = config["Labels"]
        assert labels["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
        assert labels["com.amazonaws.sagemaker.capabilities.multi-models"] == "true"
        env = dict(item.split("=", 1) for item in config["Env"])
        assert env["PYTHONUNBUFFERED"] == "1" and env["PYTHONDONTWRITEBYTECODE"] == "1"
        assert env["PATH"].startswith("/opt/optml/venv/bin:")
        if name != "base":
            assert env["OPTML_DEFAULT_HANDLERS"] == \
                f"/opt/optml/handlers/optml_{name}_handlers.py"


def test_train_and_serve_shims_for_entrypoint_overrides(docker_client: docker.DockerClient,
                                                        images: dict[str, str]) -> None:
    script = ("for s in train serve; do head -n 3 /usr/local/bin/$s | tail -n 1; done; "
              "train --help >/dev/null && serve --help >/dev/null && echo shims-ok")
    logs = _run(docker_client, images["base"], ["sh", "-c", script], entrypoint=[])
    assert 'exec optml train "$@"' in logs and 'exec optml serve "$@"' in logs
    assert logs.rstrip().endswith("shims-ok")


def test_works_as_uid_1000_without_mounts(docker_client: docker.DockerClient,
                                          images: dict[str, str]) -> None:
    script = ("import os, pathlib; "
              "[pathlib.Path(p, 'probe').write_text('x') for p in "
              "('/opt/ml/model', '/opt/ml/output', '/opt/ml/output/data', os.environ['HOME'])]; "
              "print(os.getuid(), os.environ['HOME'])")
    logs = _run(docker_client, images["base"], ["python", "-c", script], user="1000:1000")
    assert logs.strip() == "1000 /home/optml"


def test_images_hold_no_wheelhouse_pip_cache_or_compiler(docker_client: docker.DockerClient,
                                                         images: dict[str, str]) -> None:
    script = ("test ! -e /root/.cache/pip && test ! -e /mnt/requirements.txt && "
              "! command -v gcc && ! command -v cc && "
              "test -z \"$(find / -xdev -name '*.whl' -not -path '/usr/share/python-wheels/*')\" "
              "&& echo clean")
    for tag in images.values():
        assert _run(docker_client, tag, ["sh", "-c", script], entrypoint=[]).strip() == "clean"
