"""Clients shaped like boto3's ``sagemaker`` and ``sagemaker-runtime`` clients.

Code written for the service runs locally by swapping the client::

    sm = local_mode.client("sagemaker")          # instead of boto3.client("sagemaker")
    sm.create_training_job(**request)
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name)

Method names, request shapes, response shapes, errors, waiters and paginators are the service's,
from the API model inside botocore (see :mod:`local_mode.client_base`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from local_mode import preflight
from local_mode.backend_choice import choose_backend
from local_mode.client_base import LocalClient, arn
from local_mode.endpoints.api import EndpointsAPI
from local_mode.errors import ResourceNotFound, ValidationException
from local_mode.listing import list_page
from local_mode.shapes import public_view
from local_mode.state import ResourceDir, StateStore, now
from local_mode.training.spec import TrainingJobSpec
from local_mode.transform.api import TransformAPI
from toolkit.settings import Settings

log = logging.getLogger("optml.local")

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
TRAINING_SUMMARY = ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime",
                    "LastModifiedTime", "TrainingJobStatus", "SecondaryStatus", "WarmPoolStatus")

__all__ = ["SageMakerClient", "arn", "client"]


class SageMakerClient(LocalClient, EndpointsAPI, TransformAPI):
    """The local ``sagemaker`` client. Training jobs are here; models, endpoint configs and
    endpoints come from :class:`EndpointsAPI`, transform jobs from :class:`TransformAPI`.

    ``settings``, ``state_dir`` and ``backend`` are local mode's own arguments; the others are
    boto3's client arguments (:class:`local_mode.client_base.LocalClient`)."""

    SERVICE = "sagemaker"
    UNDECLARED_ERRORS = ("ValidationException",)

    def __init__(self, settings: Settings | None = None, *, state_dir: str | Path | None = None,
                 backend: str | None = None, **client_args: Any) -> None:
        super().__init__(**client_args)
        self.settings = settings or Settings.from_environ()
        self.store = StateStore(Path(state_dir) if state_dir else self.settings.local.state_dir)
        self.backend = backend or self.settings.local.backend
        if self.backend not in {"auto", "docker", "process"}:
            raise ValidationException(f"backend must be auto, docker or process, got "
                                      f"{self.backend!r}")

    # -- training jobs ---------------------------------------------------------------------
    def create_training_job(self, **request: Any) -> dict[str, Any]:
        spec = TrainingJobSpec.from_request(request)
        backend = choose_backend(self.backend)
        from local_mode.training.runner import make_backend

        make_backend(self.settings, backend).check(spec)  # refuse at create, not minutes later
        preflight.check_training_channels(request, self.settings.environ)
        created = now()
        model_uri = spec.model_artifact_uri
        description = {
            "TrainingJobName": spec.name, "TrainingJobArn": self._arn("training-job", spec.name),
            "TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting",
            "CreationTime": created, "LastModifiedTime": created, "TrainingStartTime": created,
            "SecondaryStatusTransitions": [], "ModelArtifacts": {"S3ModelArtifacts": model_uri},
            **{k: v for k, v in request.items() if k in _ECHOED_FIELDS},
            "Backend": backend,
        }
        resource = self.store.create("training-jobs", spec.name, description, dict(request))
        self._spawn_runner(resource, backend)
        return {"TrainingJobArn": description["TrainingJobArn"]}

    def _spawn_runner(self, resource: ResourceDir, backend: str) -> None:
        log_file = resource.path / "runner.log"
        env = dict(self.settings.environ)
        env["OPTML_LOCAL_STATE_DIR"] = str(self.store.root)
        with log_file.open("ab") as out:
            runner = subprocess.Popen(  # noqa: S603 - argv list, no shell
                [sys.executable, "-m", "local_mode.training.runner", str(self.store.root),
                 resource.name, backend],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)
        # The job outlives this client if it must; while we live, reap the runner when it ends
        # so it never lingers as a zombie.
        threading.Thread(target=runner.wait, name=f"reap-{resource.name}", daemon=True).start()

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803
        resource = self._get("training-jobs", TrainingJobName)
        description = resource.describe()
        if description["TrainingJobStatus"] not in TERMINAL and resource.runner_lost(
                description["CreationTime"]):
            description = _mark_lost(resource)
        return public_view("DescribeTrainingJob", description)

    def list_training_jobs(self, **kwargs: Any) -> dict[str, Any]:
        summaries = []
        for resource in self.store.list("training-jobs"):
            d = resource.describe()
            plan = (d.get("ResourceConfig") or {}).get("TrainingPlanArn")
            summaries.append({k: d[k] for k in TRAINING_SUMMARY if k in d}
                             | ({"TrainingPlanArn": plan} if plan else {}))
        return list_page("ListTrainingJobs", summaries, kwargs,
                         result_key="TrainingJobSummaries", name_key="TrainingJobName",
                         status_key="TrainingJobStatus")

    def stop_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803
        resource = self._get("training-jobs", TrainingJobName)
        description = resource.describe()
        if description["TrainingJobStatus"] in TERMINAL:
            raise ValidationException(f"The training job {TrainingJobName} has already "
                                      f"{description['TrainingJobStatus'].lower()}")
        pid = resource.runner_pid()
        deadline = time.monotonic() + 10
        while pid is None and time.monotonic() < deadline and \
                resource.describe()["TrainingJobStatus"] not in TERMINAL:
            time.sleep(0.05)  # the runner is starting; its pid file appears in a moment
            pid = resource.runner_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        return {}

    def _get(self, kind: str, name: str) -> ResourceDir:
        try:
            return self.store.get(kind, name)
        except ResourceNotFound:
            raise ValidationException(f"Requested resource not found: {name}") from None


_ECHOED_FIELDS = frozenset({
    "HyperParameters", "AlgorithmSpecification", "RoleArn", "InputDataConfig",
    "OutputDataConfig", "ResourceConfig", "VpcConfig", "StoppingCondition",
    "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining", "CheckpointConfig", "Environment", "RetryStrategy",
})


def _mark_lost(resource: ResourceDir) -> dict[str, Any]:
    def change(d: dict[str, Any]) -> None:
        if d["TrainingJobStatus"] in TERMINAL:  # it finished after all (the runner writes the
            return                              # final status before removing its pid file)
        d["TrainingJobStatus"] = "Failed"
        d["SecondaryStatus"] = "Failed"
        d["FailureReason"] = "InternalServerError: the local job runner is no longer running"
    return resource.update(change)


def client(service_name: str, **kwargs: Any) -> Any:
    """``local_mode.client("sagemaker")`` / ``local_mode.client("sagemaker-runtime")``, taking
    boto3's client arguments (``region_name``, ``config``, credentials, ...) besides local
    mode's own (``settings``, ``state_dir``, ``backend``)."""
    if service_name == "sagemaker":
        return SageMakerClient(**kwargs)
    if service_name == "sagemaker-runtime":
        from local_mode.runtime import RuntimeClient

        return RuntimeClient(**kwargs)
    raise ValueError(f"unknown local service {service_name!r}; expected 'sagemaker' or "
                     "'sagemaker-runtime'")
