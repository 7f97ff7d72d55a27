"""The transform-job operations of the local ``sagemaker`` client (a mixin of
:class:`local_mode.sagemaker.SageMakerClient`; ``local_mode.sagemaker`` is imported lazily because it
imports this module)."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Any

from local_mode.errors import ValidationException
from local_mode.state import ResourceDir, now, read_json
from local_mode.transform.spec import TransformJobSpec
from local_mode.validation import validate_request

if TYPE_CHECKING:
    from local_mode.state import StateStore
    from toolkit.settings import Settings

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
PRIVATE = frozenset({"Backend"})
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

    def _spawn_endpoint_runner(self, resource: ResourceDir, backend: str,
                               module: str = "") -> None:  # provided by EndpointsAPI
        raise NotImplementedError

    def create_transform_job(self, **request: Any) -> dict[str, Any]:
        validate_request("CreateTransformJob", request)
        spec = TransformJobSpec.from_request(request)
        if not (self.store.root / "models" / spec.model_name / "description.json").is_file():
            raise ValidationException(f"Could not find model \"{spec.model_name}\".",
                                      "CreateTransformJob")
        from local_mode.sagemaker import arn

        created = now()
        description = {"TransformJobName": spec.name,
                       "TransformJobArn": arn("transform-job", spec.name),
                       "TransformJobStatus": "InProgress", "CreationTime": created,
                       "LastModifiedTime": created,
                       **{k: request[k] for k in ECHOED if k in request},
                       "Backend": self._endpoint_backend()}
        resource = self.store.create("transform-jobs", spec.name, description, dict(request))
        self._spawn_endpoint_runner(resource, description["Backend"],
                                    module="local_mode.transform.runner")
        return {"TransformJobArn": description["TransformJobArn"]}

    def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:
        validate_request("DescribeTransformJob", {"TransformJobName": TransformJobName})
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
        return {k: v for k, v in description.items() if k not in PRIVATE}

    def transform_progress(self, TransformJobName: str) -> dict[str, int]:
        """Local extension: files and records done so far (what ``optml local transform``
        shows): ``{"FilesTotal", "FilesDone", "FilesFailed", "RecordsDone"}``."""
        resource = self._transform_job(TransformJobName)
        try:
            return dict(read_json(resource.path / "progress.json"))
        except (FileNotFoundError, ValueError):
            return {"FilesTotal": 0, "FilesDone": 0, "FilesFailed": 0, "RecordsDone": 0}

    def list_transform_jobs(self, **kwargs: Any) -> dict[str, Any]:
        validate_request("ListTransformJobs", kwargs)
        from local_mode.endpoints.api import _page

        items: list[dict[str, Any]] = []
        for resource in self.store.list("transform-jobs"):
            d = resource.describe()
            if kwargs.get("StatusEquals") and d["TransformJobStatus"] != kwargs["StatusEquals"]:
                continue
            items.append({k: d[k] for k in ("TransformJobName", "TransformJobArn",
                                            "CreationTime", "LastModifiedTime",
                                            "TransformJobStatus", "TransformEndTime",
                                            "FailureReason") if k in d})
        page, token = _page(items, kwargs, "TransformJobName")
        return {"TransformJobSummaries": page, **({"NextToken": token} if token else {})}

    def stop_transform_job(self, TransformJobName: str) -> dict[str, Any]:
        validate_request("StopTransformJob", {"TransformJobName": TransformJobName})
        resource = self._transform_job(TransformJobName)

        def change(d: dict[str, Any]) -> None:
            if d["TransformJobStatus"] in TERMINAL:
                raise ValidationException(f"Transform job {TransformJobName} has already "
                                          f"{d['TransformJobStatus'].lower()}",
                                          "StopTransformJob")
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

    def transform_waiters(self) -> dict[str, Any]:
        from local_mode.sagemaker import Waiter

        return {"transform_job_completed_or_stopped": Waiter(
            self, "describe_transform_job", "TransformJobName",  # type: ignore[arg-type]
            "TransformJobStatus", frozenset({"Completed", "Stopped"}), frozenset({"Failed"}))}


