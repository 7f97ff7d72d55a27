"""Local endpoints and batch transform on the Docker backend: real containers of real images.

The first tests need no engine (ports, environment, the model cache's container paths, lazy
construction). The ``docker`` ones deploy through :class:`local_mode.sagemaker.SageMakerClient`:
a scikit-learn model (fitted here, on the host, with the same scikit-learn the optml/sklearn
image has) on ``optml/sklearn``; and ``optml-test/plain-server``, an image that knows nothing of
optml (the Debian stand-in, a stdlib HTTP server and a ``serve`` script on PATH). Every test
ends with no container or network of its state directory left, whatever happened.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from local_mode.docker_engine import ENDPOINT_LABEL, STATE_LABEL, TRANSFORM_LABEL
from local_mode.endpoints.backends.choice import make_backend
from local_mode.endpoints.backends.docker import (
    BIND_TO_PORT_LABEL,
    MODELS_MOUNT,
    DockerServeContainer,
    container_environment,
    container_port,
    published_port,
)
from local_mode.endpoints.spec import ContainerSpec
from local_mode.runtime import RuntimeClient
from local_mode.sagemaker import SageMakerClient
from tests.docker import harness
from toolkit.settings import Settings

SKLEARN = "optml/sklearn:latest"
PLAIN = "optml-test/plain-server:latest"
FAST_ENV = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "OPTML_INSTALL_REQUIREMENTS": "false"}
WAIT_SECONDS = 180.0
"""A liveness bound (a hung endpoint fails the test instead of hanging it), not a speed check."""

# A server that follows the serving contract with the standard library only.
PLAIN_SERVER = r'''#!/usr/bin/env python3
import json, os, pathlib, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

model = pathlib.Path("/opt/ml/model")
try:
    (model / "probe").write_text("x")
    writable = True
except OSError:
    writable = False

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ping":
            self._answer(200, b"", "text/plain")
        else:
            self._answer(404, b"{}", "application/json")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/invocations":
            return self._answer(404, b"{}", "application/json")
        out = {"argv": sys.argv[1:], "body": body.decode()[::-1],
               "greeting": (model / "greeting.txt").read_text(),
               "model_writable": writable, "env": os.environ.get("PLAIN_SETTING"),
               "variant": os.environ.get("SAGEMAKER_VARIANT_NAME"),
               "content_type": self.headers.get("Content-Type")}
        self._answer(200, json.dumps(out).encode(), "application/x-plain")

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("SAGEMAKER_BIND_TO_PORT", 8080))),
                             Handler)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
print("plain server up", flush=True)
server.serve_forever()
'''


# -- unit tests (no engine) -------------------------------------------------------------------

def test_container_port_only_when_the_image_accepts_one() -> None:
    assert container_port({}, 0) is None
    assert container_port({BIND_TO_PORT_LABEL: "false"}, 1) is None
    assert container_port({BIND_TO_PORT_LABEL: "true"}, 0) == 8080
    assert container_port({BIND_TO_PORT_LABEL: "True"}, 2) == 8082


def test_environment_platform_wins_and_multi_model_is_announced() -> None:
    spec = ContainerSpec("primary", "img", "s3://b/p/", {"A": "1", "SAGEMAKER_BATCH": "no"},
                         mode="MultiModel")
    env = container_environment(spec, {"SAGEMAKER_BATCH": "true"}, 8081)
    assert env == {"A": "1", "SAGEMAKER_BATCH": "true", "SAGEMAKER_MULTI_MODEL": "true",
                   "SAGEMAKER_BIND_TO_PORT": "8081"}
    assert "SAGEMAKER_BIND_TO_PORT" not in container_environment(
        ContainerSpec("primary", "img", None), {}, None)


def test_published_port_reads_the_loopback_binding() -> None:
    attrs = {"NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1",
                                                         "HostPort": "49153"}]}}}
    assert published_port(attrs, 8080) == 49153
    assert published_port(attrs, 8081) == 0
    assert published_port({"NetworkSettings": {"Ports": {}}}, 8080) == 0  # exited already


def test_model_url_maps_the_cache_into_the_container(tmp_path: Path) -> None:
    serving = DockerServeContainer("primary", "id", tmp_path / "log", None, None,
                                   models_root=tmp_path / "cache")
    assert serving.model_url(tmp_path / "cache" / "a.tar.gz") == f"{MODELS_MOUNT}/a.tar.gz"
    plain = DockerServeContainer("primary", "id", tmp_path / "log", None, None)
    assert plain.model_url(tmp_path / "x") == str(tmp_path / "x")


def test_make_backend_is_lazy_and_names_its_owner() -> None:
    backend = make_backend("docker", {}, owner=(TRANSFORM_LABEL, "job"), state_dir="/s")
    assert backend.name == "docker"
    assert backend.labels == {TRANSFORM_LABEL: "job", STATE_LABEL: "/s"}  # type: ignore[attr-defined]
    backend.close()  # never connected: nothing to do


# -- engine fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def serving_images(docker_client: docker.DockerClient) -> dict[str, str]:
    harness.ensure_images(docker_client, ("sklearn",))
    plain = harness.build_in_memory(
        docker_client, PLAIN, f"FROM {harness.STANDIN_BASE}\nCOPY serve /usr/local/bin/serve\n",
        {"serve": (PLAIN_SERVER, 0o755)})
    return {"sklearn": SKLEARN, "plain": plain}


def _ours(client: docker.DockerClient, state: Path) -> list[str]:
    selector = {"label": f"{STATE_LABEL}={state}"}
    return [f"container {c.name}" for c in client.containers.list(all=True, filters=selector)] + \
        [f"network {n.name}" for n in client.networks.list(filters=selector)]


class DockerLocal:
    """Local clients on the Docker backend, on a private state directory."""

    def __init__(self, root: Path, backend: str = "docker") -> None:
        self.root = root
        self.state = (root / "state").absolute()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "OPTML_"))}
        env.update(OPTML_LOCAL_STATE_DIR=str(self.state), OPTML_LOCAL_STOP_GRACE_SECONDS="2")
        settings = Settings.from_environ(env)
        self.sm = SageMakerClient(settings, backend=backend)
        self.rt = RuntimeClient(settings)

    def deploy(self, name: str, image: str, model_data: Path, count: int = 1,
               instance_type: str = "local", env: dict[str, str] | None = None) -> None:
        self.sm.create_model(ModelName=name, PrimaryContainer={
            "Image": image, "ModelDataUrl": model_data.as_uri(),
            "Environment": {**FAST_ENV, **(env or {})}})
        self.config(name, name, count, instance_type)
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)

    def config(self, name: str, model: str, count: int, instance_type: str = "local") -> None:
        self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": count,
            "InstanceType": instance_type, "InitialVariantWeight": 1.0}])

    def wait(self, name: str, *statuses: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            described = self.sm.describe_endpoint(EndpointName=name)
            if described["EndpointStatus"] in statuses:
                return described
            assert described["EndpointStatus"] != "Failed", \
                f"{described.get('FailureReason')}\n{self.runner_log(name)}"
            assert time.monotonic() < deadline, f"{name}: {described}\n{self.runner_log(name)}"
            time.sleep(0.05)

    def instances(self, name: str) -> list[dict[str, Any]]:
        return list(self.sm.store.get("endpoints", name).describe().get("Instances") or [])

    def runner_log(self, name: str) -> str:
        path = self.state / "endpoints" / name / "runner.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def invoke(self, name: str, body: bytes, content_type: str = "text/csv") -> dict[str, Any]:
        response = self.rt.invoke_endpoint(EndpointName=name, Body=body,
                                           ContentType=content_type, Accept="text/csv")
        response["Data"] = response["Body"].read()
        return response

    def cleanup(self) -> None:
        self.rt.close()
        for resource in self.sm.store.list("endpoints"):
            self.sm.delete_endpoint(EndpointName=resource.name)
        for resource in self.sm.store.list("transform-jobs"):
            if resource.describe()["TransformJobStatus"] not in ("Completed", "Failed",
                                                                  "Stopped"):
                self.sm.stop_transform_job(TransformJobName=resource.name)


@pytest.fixture
def dlocal(tmp_path: Path, docker_client: docker.DockerClient,
           serving_images: dict[str, str]) -> Iterator[DockerLocal]:
    env = DockerLocal(tmp_path)
    try:
        yield env
        env.cleanup()
        deadline = time.monotonic() + 60  # a stopped transform runner tears down on its own
        while _ours(docker_client, env.state) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _ours(docker_client, env.state) == []
    finally:  # whatever a failed test left: everything carries the state directory's label
        for container in docker_client.containers.list(
                all=True, filters={"label": f"{STATE_LABEL}={env.state}"}):
            harness.remove(container)
        for network in docker_client.networks.list(
                filters={"label": f"{STATE_LABEL}={env.state}"}):
            network.remove()


def _tarball(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def sklearn_model(tmp_path: Path) -> tuple[Path, Any]:
    """A fitted decision tree as ``model.joblib`` in a model.tar.gz, and the estimator."""
    import joblib
    import numpy as np
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(7)
    features = rng.normal(size=(200, 3))
    target = features @ np.array([1.5, -2.0, 0.5]) + 3.0
    model = DecisionTreeRegressor(max_depth=6, random_state=0).fit(features, target)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return _tarball(tmp_path / "artifacts" / "model.tar.gz",
                    {"model.joblib": buffer.getvalue()}), model


def _rows(count: int, seed: int) -> list[list[float]]:
    import numpy as np

    return np.random.default_rng(seed).normal(size=(count, 3)).round(6).tolist()


def _csv(rows: list[list[float]]) -> bytes:
    return "".join(",".join(repr(v) for v in row) + "\n" for row in rows).encode()


def _predictions(data: bytes) -> list[float]:
    return [float(line) for line in data.decode().split()]


def _containers(client: docker.DockerClient, state: Path, label: str, name: str) -> list[Any]:
    return client.containers.list(all=True, filters={"label": [f"{label}={name}",
                                                               f"{STATE_LABEL}={state}"]})


class Load:
    """Background invocations on a few threads; every failure is kept."""

    def __init__(self, local: DockerLocal, name: str, body: bytes, threads: int = 3) -> None:
        self.local, self.name, self.body = local, name, body
        self.ok = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.local.invoke(self.name, self.body)
                self.ok += 1
            except BaseException as exc:  # noqa: BLE001 - every failure is recorded
                self.errors.append(exc)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def until(self, requests: int) -> None:
        target = self.ok + requests
        deadline = time.monotonic() + WAIT_SECONDS
        while self.ok < target and not self.errors:
            assert time.monotonic() < deadline, "the load made no progress"
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


@contextmanager
def loading(local: DockerLocal, name: str, body: bytes) -> Iterator[Load]:
    """Invocations in the background for the duration of the block."""
    load = Load(local, name, body)
    load.start()
    try:
        yield load
    finally:
        load.stop()


# -- endpoints --------------------------------------------------------------------------------

@pytest.mark.docker
def test_sklearn_two_instances_predict_and_a_killed_one_is_replaced(
        dlocal: DockerLocal, docker_client: docker.DockerClient,
        sklearn_model: tuple[Path, Any]) -> None:
    tar, model = sklearn_model
    dlocal.deploy("sk", SKLEARN, tar, count=2, instance_type="ml.m5.large")
    dlocal.wait("sk", "InService")
    rows = _rows(25, seed=1)
    response = dlocal.invoke("sk", _csv(rows))
    assert _predictions(response["Data"]) == pytest.approx(model.predict(rows).tolist())
    assert response["InvokedProductionVariant"] == "AllTraffic"

    containers = _containers(docker_client, dlocal.state, ENDPOINT_LABEL, "sk")
    assert len(containers) == 2
    for container in containers:
        attrs = container.attrs
        assert attrs["Config"]["Cmd"] == ["serve"]
        bindings = attrs["HostConfig"]["PortBindings"]
        assert [b["HostIp"] for v in bindings.values() for b in v] == ["127.0.0.1"]
        assert attrs["HostConfig"]["NanoCpus"] > 0 and attrs["HostConfig"]["Memory"] > 0
        mounts = {m["Destination"]: m for m in attrs["Mounts"]}
        assert mounts["/opt/ml/model"]["RW"] is False
        assert "SAGEMAKER_ENDPOINT_NAME=sk" in attrs["Config"]["Env"]
        # the router's shortcut past the port proxy: an optml image listens on a Unix socket
        # in a mounted directory of this side, which the router then prefers to the port
        assert mounts["/run/optml-local"]["RW"] is True
        assert "OPTML_UNIX_SOCKET=/run/optml-local/serve.sock" in attrs["Config"]["Env"]
        socket_file = Path(mounts["/run/optml-local"]["Source"]) / "serve.sock"
        assert socket_file.is_socket()
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(socket_file))
            probe.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
            assert probe.recv(64).split(b"\r\n")[0].endswith(b" 200 OK")

    before = dlocal.instances("sk")
    victim_port = before[0]["Ports"][0]
    victim = next(c for c in containers if harness.published_port(c) == victim_port)
    with loading(dlocal, "sk", _csv(rows[:3])) as load:
        load.until(20)
        victim.kill()
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            now = dlocal.instances("sk")
            if len(now) == 2 and all(i["Healthy"] for i in now) and \
                    before[0]["Id"] not in {i["Id"] for i in now}:
                break
            assert time.monotonic() < deadline, dlocal.runner_log("sk")
            time.sleep(0.05)
        load.until(20)
    assert load.errors == [], load.errors[:3]
    ids = {c.id for c in _containers(docker_client, dlocal.state, ENDPOINT_LABEL, "sk")}
    assert victim.id not in ids and len(ids) == 2


@pytest.mark.docker
def test_update_without_a_failed_request_and_delete_leaves_nothing(
        dlocal: DockerLocal, docker_client: docker.DockerClient,
        sklearn_model: tuple[Path, Any]) -> None:
    tar, model = sklearn_model
    dlocal.deploy("up", SKLEARN, tar, count=1)
    dlocal.wait("up", "InService")
    old = {c.id for c in _containers(docker_client, dlocal.state, ENDPOINT_LABEL, "up")}
    dlocal.config("up-v2", "up", 2, "ml.c5.xlarge")
    rows = _rows(4, seed=2)
    with loading(dlocal, "up", _csv(rows)) as load:
        load.until(10)
        dlocal.sm.update_endpoint(EndpointName="up", EndpointConfigName="up-v2")
        assert dlocal.sm.describe_endpoint(EndpointName="up")["EndpointStatus"] == "Updating"
        described = dlocal.wait("up", "InService")
        # InService only once the old fleet drained and its container was removed
        new = {c.id for c in _containers(docker_client, dlocal.state, ENDPOINT_LABEL, "up")}
        load.until(20)
    assert load.errors == [], load.errors[:3]
    assert described["EndpointConfigName"] == "up-v2"
    assert len(new) == 2 and not old & new, dlocal.runner_log("up")
    assert _predictions(dlocal.invoke("up", _csv(rows))["Data"]) == \
        pytest.approx(model.predict(rows).tolist())
    dlocal.sm.delete_endpoint(EndpointName="up")
    assert _ours(docker_client, dlocal.state) == []  # no container, no network


@pytest.mark.docker
def test_plain_contract_image_serves_through_the_router_on_auto(
        tmp_path: Path, docker_client: docker.DockerClient,
        serving_images: dict[str, str]) -> None:
    local = DockerLocal(tmp_path, backend="auto")  # an engine answers: auto is Docker
    try:
        tar = _tarball(tmp_path / "plain" / "model.tar.gz", {"greeting.txt": b"hi from tar"})
        local.deploy("plain", PLAIN, tar, env={"PLAIN_SETTING": "on"})
        local.wait("plain", "InService")
        assert local.sm.store.get("endpoints", "plain").describe()["Backend"] == "docker"
        response = local.invoke("plain", b"abc", content_type="text/plain")
        answer = json.loads(response["Data"])
        assert answer == {"argv": [], "body": "cba", "greeting": "hi from tar",
                          "model_writable": False, "env": "on", "variant": "AllTraffic",
                          "content_type": "text/plain"}
        assert response["ContentType"] == "application/x-plain"
        # the container's own port is reachable on 127.0.0.1 only, never on a fixed port
        port = local.instances("plain")[0]["Ports"][0]
        assert port != 8080
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/ping")
        assert connection.getresponse().status == 200
        connection.close()
        # an image without optml ignores OPTML_UNIX_SOCKET: the router used the port
        container = _containers(docker_client, local.state, ENDPOINT_LABEL, "plain")[0]
        mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
        assert not (Path(mounts["/run/optml-local"]["Source"]) / "serve.sock").exists()
    finally:
        local.cleanup()
        leftovers = _ours(docker_client, local.state)
        for container in docker_client.containers.list(
                all=True, filters={"label": f"{STATE_LABEL}={local.state}"}):
            harness.remove(container)
    assert leftovers == []


@pytest.mark.docker
def test_missing_image_fails_the_endpoint_with_a_clear_reason(
        dlocal: DockerLocal, docker_client: docker.DockerClient, tmp_path: Path) -> None:
    tar = _tarball(tmp_path / "m" / "model.tar.gz", {"x": b"y"})
    # CreateModel on Docker refuses an image the engine lacks (test_local_create_checks_docker);
    # an image gone after CreateModel (made here where images are not checked) fails the endpoint
    SageMakerClient(dlocal.sm.settings, backend="process").create_model(
        ModelName="nope", PrimaryContainer={"Image": "optml-test/does-not-exist:1",
                                            "ModelDataUrl": tar.as_uri()})
    dlocal.config("nope", "nope", 1)
    dlocal.sm.create_endpoint(EndpointName="nope", EndpointConfigName="nope")
    described = dlocal.wait("nope", "Failed")
    reason = described["FailureReason"]
    assert "optml-test/does-not-exist:1" in reason and "never pulls" in reason
    assert _containers(docker_client, dlocal.state, ENDPOINT_LABEL, "nope") == []


# -- batch transform --------------------------------------------------------------------------

@pytest.mark.docker
def test_transform_line_multirecord_outputs_in_input_order(
        dlocal: DockerLocal, tmp_path: Path, sklearn_model: tuple[Path, Any]) -> None:
    tar, model = sklearn_model
    dlocal.sm.create_model(ModelName="skt", PrimaryContainer={
        "Image": SKLEARN, "ModelDataUrl": tar.as_uri(), "Environment": FAST_ENV})
    inputs = tmp_path / "in"
    inputs.mkdir()
    files = {"a.csv": _rows(300, seed=3), "b.csv": _rows(7, seed=4)}
    for name, rows in files.items():
        (inputs / name).write_bytes(_csv(rows))
    output = tmp_path / "out"
    dlocal.sm.create_transform_job(
        TransformJobName="tj", ModelName="skt", BatchStrategy="MultiRecord", MaxPayloadInMB=1,
        MaxConcurrentTransforms=2,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": inputs.as_uri()}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": output.as_uri(), "AssembleWith": "Line",
                         "Accept": "text/csv"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    deadline = time.monotonic() + WAIT_SECONDS
    while (described := dlocal.sm.describe_transform_job(TransformJobName="tj"))[
            "TransformJobStatus"] not in ("Completed", "Failed", "Stopped"):
        assert time.monotonic() < deadline, described
        time.sleep(0.1)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert described["BatchStrategy"] == "MultiRecord"
    for name, rows in files.items():
        assert _predictions((output / f"{name}.out").read_bytes()) == \
            pytest.approx(model.predict(rows).tolist())
