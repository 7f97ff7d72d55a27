"""The transform-job operations of the local ``sagemaker`` client (a mixin of
:class:`local_mode.sagemaker.SageMakerClient`, which validates requests and names operations in
errors around these methods)."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Any

from local_mode import preflight
from local_mode.errors import ValidationException
from local_mode.listing import list_page
from local_mode.shapes import public_view
from local_mode.state import ResourceDir, now, read_json
from local_mode.transform.spec import TransformJobSpec

if TYPE_CHECKING:
    from local_mode.state import StateStore
    from toolkit.settings import Settings

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
SUMMARY = ("TransformJobName", "TransformJobArn", "CreationTime", "LastModifiedTime",
           "TransformJobStatus", "TransformEndTime", "FailureReason")
ECHOED = ("ModelName", "MaxConcurrentTransforms", "ModelClientConfig", "MaxPayloadInMB",
          "BatchStrategy", "Environment", "TransformInput", "TransformOutput",
          "TransformResources", "DataProcessing", "DataCaptureConfig", "ExperimentConfig")


class TransformAPI:
    """CreateTransformJob, DescribeTransformJob, ListTransformJobs, StopTransformJob."""

    settings: Settings
    store: StateStore
    backend: str

    def _endpoint_backend(self) -> str:  # provided by EndpointsAPI
        raise NotImplementedError

    def _arn(self, kind: str, name: str) -> str:  # provided by LocalClient (region, account)
        raise NotImplementedError

    def _spawn_endpoint_runner(self, resource: ResourceDir, backend: str,
                               module: str = "") -> None:  # provided by EndpointsAPI
        raise NotImplementedError

    def create_transform_job(self, **request: Any) -> dict[str, Any]:
        spec = TransformJobSpec.from_request(request)
        models = self.store.root / "models" / spec.model_name
        if not (models / "description.json").is_file():
            raise ValidationException(f"Could not find model \"{spec.model_name}\".")
        preflight.check_transform_input(request, self.settings.environ)
        backend = self._endpoint_backend()
        if backend == "docker":
            model_request = self.store.get("models", spec.model_name).request()
            preflight.check_images([
                (f"ModelName {spec.model_name}: {where}.Image", container["Image"])
                for where, container in preflight.model_containers(model_request)
                if container.get("Image")])
        created = now()
        description = {"TransformJobName": spec.name,
                       "TransformJobArn": self._arn("transform-job", spec.name),
                       "TransformJobStatus": "InProgress", "CreationTime": created,
                       "LastModifiedTime": created,
                       **{k: request[k] for k in ECHOED if k in request},
                       "Backend": backend}
        resource = self.store.create("transform-jobs", spec.name, description, dict(request))
        self._spawn_endpoint_runner(resource, description["Backend"],
                                    module="local_mode.transform.runner")
        return {"TransformJobArn": description["TransformJobArn"]}

    def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:
        resource = self._transform_job(TransformJobName)
        description = resource.describe()
        if description["TransformJobStatus"] not in TERMINAL and \
                resource.runner_lost(description["CreationTime"]):
            def change(d: dict[str, Any]) -> None:
                if d["TransformJobStatus"] not in TERMINAL:
                    d.update(TransformJobStatus="Failed",
                             FailureReason="InternalServerError: the local transform runner is "
                                           "no longer running")
            description = resource.update(change)
        return public_view("DescribeTransformJob", description)

    def transform_progress(self, TransformJobName: str) -> dict[str, int]:
        """Local extension: files and records done so far (what ``optml local transform``
        shows): ``{"FilesTotal", "FilesDone", "FilesFailed", "RecordsDone"}``."""
        resource = self._transform_job(TransformJobName)
        try:
            return dict(read_json(resource.path / "progress.json"))
        except (FileNotFoundError, ValueError):
            return {"FilesTotal": 0, "FilesDone": 0, "FilesFailed": 0, "RecordsDone": 0}

    def list_transform_jobs(self, **kwargs: Any) -> dict[str, Any]:
        items = [{k: d[k] for k in SUMMARY if k in d}
                 for d in (r.describe() for r in self.store.list("transform-jobs"))]
        return list_page("ListTransformJobs", items, kwargs, result_key="TransformJobSummaries",
                         name_key="TransformJobName", status_key="TransformJobStatus")

    def stop_transform_job(self, TransformJobName: str) -> dict[str, Any]:
        resource = self._transform_job(TransformJobName)

        def change(d: dict[str, Any]) -> None:
            if d["TransformJobStatus"] in TERMINAL:
                raise ValidationException(f"Transform job {TransformJobName} has already "
                                          f"{d['TransformJobStatus'].lower()}")
            d["TransformJobStatus"] = "Stopping"
        resource.update(change)
        deadline = time.monotonic() + 10
        pid = resource.runner_pid()
        while pid is None and time.monotonic() < deadline:
            time.sleep(0.05)
            pid = resource.runner_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        return {}

    def _transform_job(self, name: str) -> ResourceDir:
        try:
            return self.store.get("transform-jobs", name)
        except Exception:  # noqa: BLE001 - ResourceNotFound
            raise ValidationException(f"Could not find requested job with name {name}") \
                from None


