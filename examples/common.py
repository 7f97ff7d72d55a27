"""Helpers shared by the examples' ``run.py`` scripts (each example stays short and readable).

Nothing here is optml API: it is the glue a user would write around local mode's boto3-shaped
clients -- pick a backend, build the example's image, fill a job spec, wait for a job, and
always delete what was deployed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from local_mode import client as local_client
from local_mode.sagemaker import docker_reachable

ROLE = "arn:aws:iam::000000000000:role/local"


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
    """Endpoints and transform jobs run on Docker only when local mode's endpoints can."""
    if training_backend != "docker":
        return "process", "same as training"
    from local_mode.endpoints.instances import BackendUnsupported, make_backend

    try:
        make_backend("docker", {})
    except BackendUnsupported:
        return "process", "this optml's local endpoints run on the process backend only"
    return "docker", "same as training"


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


def load_spec(path: Path, values: Mapping[str, str]) -> dict[str, Any]:
    """A JSON job spec with ``{NAME}`` placeholders (absolute paths are known only at run
    time) filled from ``values``."""
    text = path.read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    spec: dict[str, Any] = json.loads(text)
    return spec


def train(sm: Any, request: dict[str, Any], state: Path) -> dict[str, Any]:
    """Create the training job, wait for it, and return its description (raise if it failed)."""
    name = request["TrainingJobName"]
    sm.create_training_job(**request)
    while (job := sm.describe_training_job(TrainingJobName=name))["TrainingJobStatus"] \
            not in ("Completed", "Failed", "Stopped"):
        time.sleep(0.2)
    if job["TrainingJobStatus"] != "Completed":
        log = state / "training-jobs" / name / "logs" / "all.log"
        raise SystemExit(f"training job {name} {job['TrainingJobStatus']}: "
                         f"{job.get('FailureReason')}\nlog: {log}")
    return dict(job)


def transform(sm: Any, request: dict[str, Any]) -> dict[str, Any]:
    name = request["TransformJobName"]
    sm.create_transform_job(**request)
    while (job := sm.describe_transform_job(TransformJobName=name))["TransformJobStatus"] \
            not in ("Completed", "Failed", "Stopped"):
        time.sleep(0.2)
    if job["TransformJobStatus"] != "Completed":
        raise SystemExit(f"transform job {name} {job['TransformJobStatus']}: "
                         f"{job.get('FailureReason')}")
    return dict(job)


@contextmanager
def deployed(sm: Any, name: str, container: dict[str, Any], instances: int = 1
             ) -> Iterator[str]:
    """Model + endpoint config + endpoint ``name``, InService; all three deleted on exit."""
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)
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


__all__ = ["ROLE", "build_image", "choose_backend", "deployed", "image_exists", "load_spec",
           "local_client", "new_run_dir", "serving_backend", "train", "transform"]
