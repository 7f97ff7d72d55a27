"""The transform-job operations of the local ``sagemaker`` client."""

from __future__ import annotations

import signal
from typing import Any

from local_mode import preflight, runners
from local_mode.api.base import SageMakerBase
from local_mode.errors import ValidationException
from local_mode.listing import list_page
from local_mode.shapes import public_view
from local_mode.state import now, read_json
from local_mode.transform.spec import TransformJobSpec

SUMMARY = ("TransformJobName", "TransformJobArn", "CreationTime", "LastModifiedTime",
           "TransformJobStatus", "TransformEndTime", "FailureReason")
ECHOED = ("ModelName", "MaxConcurrentTransforms", "ModelClientConfig", "MaxPayloadInMB",
          "BatchStrategy", "Environment", "TransformInput", "TransformOutput",
          "TransformResources", "DataProcessing", "DataCaptureConfig", "ExperimentConfig")
"""Request members DescribeTransformJob gives back as they were sent."""


class TransformAPI(SageMakerBase):
    """CreateTransformJob, DescribeTransformJob, ListTransformJobs, StopTransformJob."""

    def create_transform_job(self, **request: Any) -> dict[str, Any]:
        spec = TransformJobSpec.from_request(request)
        model_request = self._resource("models", spec.model_name).request()
        preflight.check_transform_input(request, self.settings.environ)
        backend = self._chosen_backend()
        if backend == "docker":
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
        self._spawn(resource, runners.TRANSFORM, backend)
        return {"TransformJobArn": description["TransformJobArn"]}

    def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        resource = self._resource("transform-jobs", TransformJobName)
        return public_view("DescribeTransformJob",
                           runners.describe_live(resource, runners.TRANSFORM))

    def transform_progress(self, TransformJobName: str) -> dict[str, int]:  # noqa: N803 - named as the service's members
        """Local extension: files and records done so far (what ``optml local transform``
        shows): ``{"FilesTotal", "FilesDone", "FilesFailed", "RecordsDone"}``."""
        resource = self._resource("transform-jobs", TransformJobName)
        try:
            return dict(read_json(resource.path / "progress.json"))
        except (FileNotFoundError, ValueError):
            return {"FilesTotal": 0, "FilesDone": 0, "FilesFailed": 0, "RecordsDone": 0}

    def list_transform_jobs(self, **kwargs: Any) -> dict[str, Any]:
        items = [{k: d[k] for k in SUMMARY if k in d}
                 for _, d in self.store.descriptions("transform-jobs")]
        return list_page("ListTransformJobs", items, kwargs, result_key="TransformJobSummaries",
                         name_key="TransformJobName", status_key="TransformJobStatus")

    def stop_transform_job(self, TransformJobName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        resource = self._resource("transform-jobs", TransformJobName)
        runners.describe_live(resource, runners.TRANSFORM)  # a lost runner: Failed, not stoppable

        def change(d: dict[str, Any]) -> None:
            if runners.TRANSFORM.settled(d):
                raise ValidationException(f"Transform job {TransformJobName} has already "
                                          f"{d['TransformJobStatus'].lower()}")
            d["TransformJobStatus"] = "Stopping"
        resource.update(change)
        runners.signal_runner(resource, signal.SIGTERM)
        return {}
