"""Helpers of the Docker-tier tests: /opt/ml trees on the host, labelled containers, cleanup.

Everything a test creates carries :data:`LABEL`, so :func:`sweep` can remove leftovers of an
interrupted run; tests still remove their own objects in ``finally`` blocks. Containers may write
root-owned files into mounted directories: :func:`reclaim` hands them back to the test's user
(a no-op when the tests run as root) so tmp_path cleanup never fails on them.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from docker.models.containers import Container

REPO = Path(__file__).resolve().parents[2]
LABEL = "org.optml.test"
LABEL_VALUE = "docker-tier"
LABELS = {LABEL: LABEL_VALUE}
STANDIN_BASE = "optml/python-standin:bookworm"
READY_WAIT_SECONDS = 180.0
"""How long a server may take to answer /ping: a readiness bound, not a speed assertion."""


def build_images(names: Sequence[str] = ()) -> dict[str, str]:
    """Run scripts/build-images.sh against the stand-in base; return ``{name: tag}``."""
    command = [str(REPO / "scripts" / "build-images.sh"), "--base-image", STANDIN_BASE, *names]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n"
                           f"{result.stderr[-4000:]}\n{result.stdout[-2000:]}")
    wanted = names or ("base", "sklearn", "onnx", "xgboost", "pytorch")
    return {name: f"optml/{name}:latest" for name in wanted}


def ensure_images(client: docker.DockerClient, names: Sequence[str]) -> None:
    """Make sure ``optml/<name>:latest`` for each of ``names`` and the Debian stand-in exist:
    run :func:`build_images` (which builds base and the stand-in too) only if one is missing,
    so a test module's fixture costs nothing when the images are already there."""
    try:
        for tag in [f"optml/{name}:latest" for name in names] + [STANDIN_BASE]:
            client.images.get(tag)
    except docker.errors.ImageNotFound:
        build_images(names)


def build_in_memory(client: docker.DockerClient, tag: str, dockerfile: str,
                    files: Mapping[str, tuple[str, int]]) -> str:
    """Build ``tag`` from a context made in memory: ``dockerfile`` plus ``files`` (``{path:
    (text, mode)}``). Fixed mtimes keep the context identical across runs, so the engine's
    cache answers repeated builds; offline (``network_mode="none"``). Returns ``tag``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as context:
        for name, (text, mode) in {"Dockerfile": (dockerfile, 0o644), **files}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            context.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    client.images.build(fileobj=buffer, custom_context=True, tag=tag, rm=True, forcerm=True,
                        network_mode="none")
    return tag


def sweep(client: docker.DockerClient) -> None:
    """Remove every container, network and volume a (possibly crashed) test run left behind."""
    selector = {"label": f"{LABEL}={LABEL_VALUE}"}
    for container in client.containers.list(all=True, filters=selector):
        remove(container)
    for network in client.networks.list(filters=selector):
        network.remove()
    for volume in client.volumes.list(filters=selector):
        volume.remove(force=True)


@dataclass(frozen=True)
class OptMlTree:
    """A host directory laid out like /opt/ml, to bind-mount into a container."""

    root: Path

    @classmethod
    def create(cls, root: Path, *, hyperparameters: Mapping[str, str] | None = None,
               channels: Mapping[str, Mapping[str, str]] | None = None,
               code: Mapping[str, str] | None = None, current_host: str = "algo-1",
               hosts: Sequence[str] = ("algo-1",)) -> OptMlTree:
        """Write config JSON, channel files (``{channel: {file name: text}}``) and code."""
        config = root / "input" / "config"
        config.mkdir(parents=True)
        channels = channels or {}
        (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters or {})))
        (config / "inputdataconfig.json").write_text(json.dumps({
            name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                   "RecordWrapperType": "None"} for name in channels}))
        (config / "resourceconfig.json").write_text(json.dumps({
            "current_host": current_host, "hosts": list(hosts),
            "network_interface_name": "eth0"}))
        for name, files in channels.items():
            directory = root / "input" / "data" / name
            directory.mkdir(parents=True)
            for file_name, text in files.items():
                (directory / file_name).write_text(text)
        (root / "code").mkdir()
        for file_name, text in (code or {}).items():
            (root / "code" / file_name).write_text(text)
        for sub in ("model", "output"):
            (root / sub).mkdir()
        # World-writable, so the same tree also works for containers run as --user 1000:1000.
        for path in [root, *root.rglob("*")]:
            if path.is_dir():
                path.chmod(0o777)
        return cls(root)

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"

    def volumes(self) -> dict[str, dict[str, str]]:
        return {str(self.root): {"bind": "/opt/ml", "mode": "rw"}}


def reclaim(client: docker.DockerClient, image: str, path: Path) -> None:
    """Give files a container wrote under ``path`` back to us (only needed when not root)."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0 or all(p.lstat().st_uid == uid for p in path.rglob("*")):
        return
    client.containers.run(image, ["chown", "-R", f"{uid}:{gid}", "/reclaim"], entrypoint=[],
                          user="0:0", volumes={str(path): {"bind": "/reclaim", "mode": "rw"}},
                          labels=LABELS, remove=True)


def remove(container: Container) -> None:
    """Force-remove ``container``; tolerate it being gone or already being removed."""
    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: the engine is already removing it
            raise
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            container.reload()
        except docker.errors.NotFound:
            return
        time.sleep(0.2)
    raise AssertionError(f"container {container.short_id} was not removed within 60 s")


@contextmanager
def running(client: docker.DockerClient, image: str, command: Sequence[str],
            **kwargs: Any) -> Iterator[Container]:
    """A detached, labelled container that is removed (forcibly if need be) on exit."""
    container = client.containers.run(image, list(command), detach=True, labels=LABELS,
                                      **kwargs)
    try:
        yield container
    finally:
        remove(container)


def run_to_completion(client: docker.DockerClient, image: str, command: Sequence[str],
                      timeout: float = 600, **kwargs: Any) -> tuple[int, str]:
    """Run a container to its end; return its exit status and its whole log."""
    with running(client, image, command, **kwargs) as container:
        status = container.wait(timeout=timeout)["StatusCode"]
        return status, container.logs().decode(errors="replace")


def published_port(container: Container, port: str = "8080/tcp") -> int:
    """The host port docker picked for ``port`` (race-free, unlike picking one ourselves)."""
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"][port][0]["HostPort"])


def wait_until_ready(container: Container, url: str,
                     timeout: float = READY_WAIT_SECONDS) -> requests.Response:
    """Poll ``GET url`` until 200; fail with the container's log if it exits or never gets there."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except requests.RequestException:
            pass
        container.reload()
        if container.status not in {"created", "running"} or time.monotonic() > deadline:
            raise AssertionError(f"{url} never answered 200 (container {container.status}):\n"
                                 f"{container.logs().decode(errors='replace')[-4000:]}")
        time.sleep(0.1)


def csv_text(rows: Sequence[Sequence[float]]) -> str:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows)
