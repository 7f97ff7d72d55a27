"""Drive local mode on the Docker backend the way a user does: through ``local_mode.client``.

One :class:`LocalMode` per test, on a private state directory; it creates training jobs,
endpoints and transform jobs, waits for them within a liveness bound, reads what they produced,
and on :meth:`close` removes every container and network it caused, whatever happened.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
from botocore.exceptions import WaiterError

import local_mode
from local_mode.docker_engine import JOB_LABEL, STATE_LABEL, sweep
from tests.docker import harness
from toolkit.settings import Settings

WAIT_SECONDS = 300.0
"""A liveness bound (a hung job or endpoint fails the test instead of hanging it), not a speed
assertion."""
TERMINAL = {"Completed", "Failed", "Stopped"}
ROLE = "arn:aws:iam::000000000000:role/local"


SDK_FIT_FILE_AND_PIPE = r'''
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput

image, train_uri, stream_uri, output_uri, hyperparameters = ARGS
estimator = Estimator(image_uri=image, role="arn:aws:iam::000000000000:role/local",
                      instance_count=1, instance_type="local", output_path=output_uri,
                      sagemaker_session=session, hyperparameters=_json.loads(hyperparameters))
estimator.fit({"train": TrainingInput(train_uri),
               "stream": TrainingInput(stream_uri, input_mode="Pipe")}, logs=False)
report(estimator.model_data)
'''
"""The SDK's local mode training ``image`` on a File channel ``train`` and a Pipe channel
``stream`` (its local mode turns Pipe into File): the peer a conformance image is compared with.
Run with :func:`tests.docker.sdk_local.run_sdk`; ``ARGS`` are image, the two channel URIs, the
output URI and the hyperparameters as JSON."""


def channel(name: str, directory: Path, mode: str = "File", **fields: Any) -> dict[str, Any]:
    """An InputDataConfig entry reading every object under ``directory``."""
    return {"ChannelName": name, "InputMode": mode, **fields,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                            "S3Uri": directory.as_uri(),
                                            "S3DataDistributionType": "FullyReplicated"}}}


def files(directory: Path, contents: dict[str, str | bytes]) -> Path:
    """``directory`` holding ``contents`` (``{name: text or bytes}``)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return directory


def tarball(path: Path, contents: dict[str, str | bytes]) -> Path:
    """A model.tar.gz at ``path`` holding ``contents``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in contents.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(raw), 0o644
            archive.addfile(info, io.BytesIO(raw))
    return path


def read_tarball(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
                for m in archive.getmembers() if m.isfile()}


class LocalMode:
    """boto3-shaped local clients on the Docker backend, on ``root``/state."""

    def __init__(self, root: Path, docker_client: docker.DockerClient) -> None:
        self.root = root
        self.state = (root / "state").absolute()
        self.output = root / "output"
        self.docker = docker_client
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "OPTML_"))}
        env.update(OPTML_LOCAL_STOP_GRACE_SECONDS="2")
        settings = Settings.from_environ(env)
        self.sm = local_mode.client("sagemaker", settings=settings, backend="docker",
                                    state_dir=self.state)
        self.runtime = local_mode.client("sagemaker-runtime", settings=settings,
                                         state_dir=self.state)
        self.jobs: list[str] = []

    # -- training ------------------------------------------------------------------------------
    def train(self, name: str, image: str, *, count: int = 1, instance_type: str = "local",
              channels: list[dict[str, Any]] | None = None, **request: Any) -> dict[str, Any]:
        """Run a training job to its end; its final DescribeTrainingJob."""
        algorithm = {"TrainingImage": image, "TrainingInputMode": "File",
                     **request.pop("algorithm", {})}
        self.jobs.append(name)
        self.sm.create_training_job(
            TrainingJobName=name, RoleArn=ROLE, AlgorithmSpecification=algorithm,
            OutputDataConfig={"S3OutputPath": self.output.as_uri()},
            ResourceConfig={"InstanceType": instance_type, "InstanceCount": count,
                            "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 600},
            **({"InputDataConfig": channels} if channels else {}), **request)
        deadline = time.monotonic() + WAIT_SECONDS
        while (described := self.sm.describe_training_job(TrainingJobName=name))[
                "TrainingJobStatus"] not in TERMINAL:
            assert time.monotonic() < deadline, f"job {name} never ended:\n{self.job_log(name)}"
            time.sleep(0.1)
        return described

    def job_log(self, name: str, host: str = "all") -> str:
        path = self.state / "training-jobs" / name / "logs" / f"{host}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else "(no log)"

    def artifacts(self, name: str, which: str = "model") -> dict[str, bytes]:
        """The files of the job's ``model.tar.gz`` (or ``output.tar.gz``)."""
        return read_tarball(self.output / name / "output" / f"{which}.tar.gz")

    # -- models, endpoints, transform ----------------------------------------------------------
    def model(self, name: str, image: str, model_data: Path | None = None,
              env: dict[str, str] | None = None, mode: str | None = None) -> None:
        container: dict[str, Any] = {"Image": image, "Environment": dict(env or {})}
        if model_data is not None:
            container["ModelDataUrl"] = model_data.as_uri() + ("/" if mode else "")
        if mode:
            container["Mode"] = mode
        self.sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)

    def deploy(self, name: str, model: str, count: int = 1,
               instance_type: str = "local") -> dict[str, Any]:
        """Create an endpoint of ``model`` and wait until it is InService."""
        self.start_endpoint(name, model, count, instance_type)
        return self.wait_endpoint(name)

    def start_endpoint(self, name: str, model: str, count: int = 1,
                       instance_type: str = "local") -> None:
        """Create an endpoint (and its config, of the same name) of ``model``."""
        self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": count,
            "InstanceType": instance_type, "InitialVariantWeight": 1.0}])
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)

    def wait_endpoint(self, name: str) -> dict[str, Any]:
        """The endpoint's description once it is InService (fails if it failed)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while (described := self.sm.describe_endpoint(EndpointName=name))[
                "EndpointStatus"] not in ("InService", "Failed"):
            assert time.monotonic() < deadline, f"{described}\n{self.runner_log(name)}"
            time.sleep(0.1)
        assert described["EndpointStatus"] == "InService", \
            f"{described.get('FailureReason')}\n{self.runner_log(name)}"
        return described

    def runner_log(self, name: str) -> str:
        path = self.state / "endpoints" / name / "runner.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else "(no log)"

    def invoke(self, endpoint: str, body: bytes, content_type: str,
               **request: Any) -> tuple[bytes, dict[str, Any]]:
        """The body and the rest of an InvokeEndpoint response."""
        response = self.runtime.invoke_endpoint(EndpointName=endpoint, Body=body,
                                                ContentType=content_type, **request)
        return response.pop("Body").read(), response

    def start_transform(self, name: str, model: str, inputs: Path, **request: Any) -> Path:
        """Start a transform job over every object under ``inputs``; where its outputs land."""
        self.sm.create_transform_job(
            TransformJobName=name, ModelName=model,
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                            "S3Uri": inputs.as_uri()}},
                            **request.pop("transform_input", {})},
            TransformOutput={"S3OutputPath": (self.output / name).as_uri(),
                             **request.pop("transform_output", {})},
            TransformResources={"InstanceType": "local", "InstanceCount": 1}, **request)
        return self.output / name

    def wait_transform(self, name: str) -> dict[str, Any]:
        """The transform job's description once it ended."""
        with contextlib.suppress(WaiterError):  # Failed ends the wait too: the caller reads why
            self.sm.get_waiter("transform_job_completed_or_stopped").wait(
                TransformJobName=name, WaiterConfig={"Delay": 0.1,
                                                     "MaxAttempts": int(WAIT_SECONDS / 0.1)})
        return self.sm.describe_transform_job(TransformJobName=name)

    # -- clean-up ------------------------------------------------------------------------------
    def leftovers(self) -> list[str]:
        """Containers and networks of this state directory or of its jobs that still exist."""
        found = []
        for container in self.docker.containers.list(all=True):
            labels = container.labels
            if labels.get(STATE_LABEL) == str(self.state) or \
                    labels.get(JOB_LABEL) in self.jobs:
                found.append(f"container {container.name}")
        for network in self.docker.networks.list():
            labels = network.attrs.get("Labels") or {}
            if labels.get(STATE_LABEL) == str(self.state) or labels.get(JOB_LABEL) in self.jobs:
                found.append(f"network {network.name}")
        return found

    def close(self) -> list[str]:
        """Delete endpoints, stop transforms and jobs, wait for their containers to go; then remove by
        label whatever is left. Returns what had to be removed by force (a test asserts [])."""
        for resource in self.sm.store.list("endpoints"):
            self.sm.delete_endpoint(EndpointName=resource.name)
        for resource in self.sm.store.list("transform-jobs"):
            if resource.describe()["TransformJobStatus"] not in TERMINAL:
                self.sm.stop_transform_job(TransformJobName=resource.name)
        for resource in self.sm.store.list("training-jobs"):
            if resource.describe()["TrainingJobStatus"] not in TERMINAL:
                self.sm.stop_training_job(TrainingJobName=resource.name)
        for resource in self.sm.store.list("processing-jobs"):
            if resource.describe()["ProcessingJobStatus"] not in TERMINAL:
                self.sm.stop_processing_job(ProcessingJobName=resource.name)
        deadline = time.monotonic() + 60  # a stopped runner tears down on its own
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for job in self.jobs:
            sweep(self.docker, {JOB_LABEL: job})
        for container in self.docker.containers.list(
                all=True, filters={"label": f"{STATE_LABEL}={self.state}"}):
            harness.remove(container)
        for network in self.docker.networks.list(filters={"label": f"{STATE_LABEL}={self.state}"}):
            with contextlib.suppress(docker.errors.NotFound):  # its runner removed it meanwhile
                network.remove()
        return left
