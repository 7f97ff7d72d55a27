"""Helpers shared by the examples' ``run.py`` scripts (each example stays short and readable).

Nothing here is optml API: it is the glue a user would write around local mode's boto3-shaped
clients -- pick a backend, build the example's image, fill a job spec, wait for a job, and
always delete what was deployed. Every example opens the same way (:func:`example_parser`,
:func:`start`, :meth:`Run.clients`), so a reader sees only what is particular to it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from local_mode import client as local_client
from local_mode.docker_engine import docker_reachable

if TYPE_CHECKING:
    from toolkit.settings import Settings

ROLE = "arn:aws:iam::000000000000:role/local"
TERMINAL = ("Completed", "Failed", "Stopped")
"""Job statuses after which a job never changes again."""

BackendChooser = Callable[[str, str], tuple[str, str]]
"""``(requested backend, base image) -> (backend, why)``, as :func:`choose_backend`."""


def example_parser(doc: str) -> argparse.ArgumentParser:
    """The command line the examples share (``--backend``, ``--output``), described by the first
    paragraph of the example's docstring; an example adds its own options to what it returns."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--backend", choices=["auto", "docker", "process"], default="auto")
    parser.add_argument("--output", type=Path, default=Path("example-output"))
    return parser


def image_exists(tag: str) -> bool:
    import docker

    engine = docker.from_env(timeout=10)
    try:
        engine.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False
    finally:
        engine.close()


def choose_backend(requested: str, base_image: str) -> tuple[str, str]:
    """``(backend, why)``: Docker when asked for, or (auto) when an engine answers and the
    optml image the example builds FROM exists; the process backend otherwise."""
    if requested == "process":
        return "process", "process backend requested"
    if not docker_reachable():
        if requested == "docker":
            raise SystemExit("--backend docker: no Docker engine answers (scripts/docker-up.sh)")
        return "process", "no Docker engine reachable"
    if not image_exists(base_image):
        if requested == "docker":
            raise SystemExit(f"--backend docker: {base_image} is missing "
                             "(scripts/build-images.sh)")
        return "process", f"{base_image} is not built (scripts/build-images.sh)"
    return "docker", f"Docker engine reachable and {base_image} present"


def serving_backend(training_backend: str) -> tuple[str, str]:
    """Endpoints and transform jobs run where training ran."""
    return training_backend, "same as training"


def build_image(context: Path, tag: str) -> None:
    """``docker build`` of an example directory, offline (the Dockerfiles only COPY)."""
    import docker

    engine = docker.from_env(timeout=600)
    try:
        engine.images.build(path=str(context), tag=tag, rm=True, network_mode="none")
    finally:
        engine.close()


def new_run_dir(output: Path) -> Path:
    root = (output / datetime.now().strftime("run-%Y%m%d-%H%M%S-%f")).resolve()
    root.mkdir(parents=True)
    return root


class Clients(NamedTuple):
    """Local mode's boto3-shaped clients for one run, all on the run's state directory."""

    sm: Any
    """"sagemaker" on the training backend: training jobs."""
    serving_sm: Any
    """"sagemaker" on the serving backend: models, endpoints and transform jobs (today the
    training backend too, see :func:`serving_backend`)."""
    rt: Any
    """"sagemaker-runtime": invocations."""


@dataclass(frozen=True)
class Run:
    """One run of an example: a fresh directory holding everything it writes (data, artifacts,
    local mode's state), and the backends its jobs and endpoints run on."""

    root: Path
    backend: str
    serving: str

    @property
    def state(self) -> Path:
        """Local mode's state directory, inside the run so that a run is self-contained."""
        return self.root / "state"

    def clients(self, settings: Settings | None = None) -> Clients:
        """The run's clients; ``settings`` tunes local mode's training runner (None: from the
        environment). A step of its own so that an example builds its images first."""
        return Clients(
            local_client("sagemaker", settings=settings, state_dir=self.state,
                         backend=self.backend),
            local_client("sagemaker", state_dir=self.state, backend=self.serving),
            local_client("sagemaker-runtime", state_dir=self.state))

    def training_request(self, spec: Path, host_code: Path, **values: str) -> dict[str, Any]:
        """The ``CreateTrainingJob`` request in ``spec`` (:func:`load_spec`, with ``DATA`` the
        run's data/ directory, ``OUTPUT`` the run, and ``values``), told where the example's code
        ``host_code`` is on the training backend (:func:`code_environment`)."""
        request = load_spec(spec, {"DATA": (self.root / "data").as_uri(),
                                   "OUTPUT": self.root.as_uri(), **values})
        return with_code(request, self.backend, host_code)

    def serving_container(self, container: Mapping[str, Any],
                          host_code: Path) -> dict[str, Any]:
        """A model's container whose inference code is the image's own (not the artifact's
        ``code/``), told where ``host_code`` is on the serving backend
        (:func:`code_environment`)."""
        return with_code(container, self.serving, host_code)


def code_environment(backend: str, host_code: Path) -> dict[str, str]:
    """The ``Environment`` entries that tell a training job or a model where the example's code
    is.

    Docker: none. Every example's image does what a user's image does, ``COPY code/
    /opt/ml/code/``: optml's ``train`` runs ``/opt/ml/code/train.py`` by default, ``serve``
    imports ``inference.py`` from ``/opt/ml/model/code`` or else ``/opt/ml/code``, and local mode,
    like the service, never mounts over ``/opt/ml/code`` (docs/contract.md).

    The process backend has no image, so the code travels as the submit directory, as it would
    with the SDK's ``source_dir``: ``SAGEMAKER_SUBMIT_DIRECTORY`` names ``host_code``, the
    directory the Dockerfile copies; ``train`` runs its ``train.py`` and ``serve`` imports its
    ``inference.py``, as in the image.
    """
    if backend == "docker":
        return {}
    return {"SAGEMAKER_SUBMIT_DIRECTORY": str(host_code)}


def with_code(request: Mapping[str, Any], backend: str, host_code: Path) -> dict[str, Any]:
    """``request`` (a training job request, or a model container) with
    :func:`code_environment` merged into its ``Environment``; unchanged when there is none."""
    extra = code_environment(backend, host_code)
    if not extra:
        return dict(request)
    return {**request, "Environment": {**request.get("Environment", {}), **extra}}


def start(name: str, output: Path, requested: str, base_image: str, *,
          choose: BackendChooser = choose_backend) -> Run:
    """Open a run of example ``name``: a new run directory under ``output/name``, the training
    backend (``choose``, given ``--backend`` and the optml image the example builds FROM) and
    the serving backend, printed with the reasons -- the first lines of every example's output."""
    root = new_run_dir(output / name)
    backend, why = choose(requested, base_image)
    serving, serving_why = serving_backend(backend)
    print(f"[{name}] run directory {root}\n[backend] training: {backend} ({why}); "
          f"serving: {serving} ({serving_why})", flush=True)
    return Run(root, backend, serving)


def load_spec(path: Path, values: Mapping[str, str]) -> dict[str, Any]:
    """A JSON job spec with ``{NAME}`` placeholders (absolute paths are known only at run
    time) filled from ``values``."""
    text = path.read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    spec: dict[str, Any] = json.loads(text)
    return spec


def _until_terminal(describe: Callable[[], Mapping[str, Any]], status: str) -> dict[str, Any]:
    """Poll ``describe()`` until its ``status`` field is :data:`TERMINAL`; the last answer."""
    while (job := describe())[status] not in TERMINAL:
        time.sleep(0.2)
    return dict(job)


def wait_for_training(sm: Any, name: str, state: Path) -> dict[str, Any]:
    """Wait for training job ``name`` and return its description; exit naming the job's log
    under ``state`` if it did not complete."""
    job = _until_terminal(lambda: sm.describe_training_job(TrainingJobName=name),
                          "TrainingJobStatus")
    if job["TrainingJobStatus"] != "Completed":
        log = state / "training-jobs" / name / "logs" / "all.log"
        raise SystemExit(f"training job {name} {job['TrainingJobStatus']}: "
                         f"{job.get('FailureReason')}\nlog: {log}")
    return job


def train(sm: Any, request: dict[str, Any], state: Path) -> dict[str, Any]:
    """Create the training job, wait for it, and return its description (raise if it failed)."""
    sm.create_training_job(**request)
    return wait_for_training(sm, request["TrainingJobName"], state)


def final_metrics(job: Mapping[str, Any]) -> dict[str, float]:
    """A training job's ``FinalMetricDataList`` as ``{name: value}``, the way it is printed."""
    return {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}


def transform(sm: Any, request: dict[str, Any]) -> dict[str, Any]:
    name = request["TransformJobName"]
    sm.create_transform_job(**request)
    job = _until_terminal(lambda: sm.describe_transform_job(TransformJobName=name),
                          "TransformJobStatus")
    if job["TransformJobStatus"] != "Completed":
        raise SystemExit(f"transform job {name} {job['TransformJobStatus']}: "
                         f"{job.get('FailureReason')}")
    return job


@contextmanager
def deployed(sm: Any, name: str,
             container: Mapping[str, Any] | Sequence[Mapping[str, Any]], instances: int = 1
             ) -> Iterator[str]:
    """Model + endpoint config + endpoint ``name``, InService; all three deleted on exit.

    ``container`` is the model's one container (``PrimaryContainer``), or a list of them: an
    inference pipeline (``Containers``, called in order)."""
    containers = ({"PrimaryContainer": container} if isinstance(container, Mapping)
                  else {"Containers": list(container)})
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, **containers)
    try:
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "main", "ModelName": name, "InitialInstanceCount": instances,
             "InstanceType": "ml.m5.large"}])
        try:
            sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
            try:
                sm.get_waiter("endpoint_in_service").wait(EndpointName=name)
                yield name
            finally:
                sm.delete_endpoint(EndpointName=name)
        finally:
            sm.delete_endpoint_config(EndpointConfigName=name)
    finally:
        sm.delete_model(ModelName=name)


def keep_endpoint_logs(state: Path, name: str, dest: Path) -> None:
    """Copy endpoint ``name``'s logs (its runner's and its instances') out of local mode's
    ``state`` into ``dest``, before delete_endpoint removes them with the endpoint's state."""
    source = state / "endpoints" / name
    dest.mkdir(parents=True, exist_ok=True)
    for log in [source / "runner.log", *sorted((source / "logs").glob("*.log"))]:
        if log.is_file():
            shutil.copyfile(log, dest / log.name)


__all__ = ["ROLE", "TERMINAL", "BackendChooser", "Clients", "Run", "build_image",
           "choose_backend", "code_environment", "deployed", "example_parser", "final_metrics",
           "image_exists", "keep_endpoint_logs", "load_spec", "local_client", "new_run_dir",
           "serving_backend", "start", "train", "transform", "wait_for_training", "with_code"]
