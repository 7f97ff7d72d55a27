"""The processing-job operations of the local ``sagemaker`` client."""

from __future__ import annotations

from typing import Any

from local_mode import preflight, runners
from local_mode.api.base import SageMakerBase
from local_mode.cluster.choice import check_at_create
from local_mode.listing import list_page
from local_mode.processing.spec import ProcessingJobSpec
from local_mode.processing.workload import ProcessingWorkload
from local_mode.shapes import public_view
from local_mode.state import now

SUMMARY = ("ProcessingJobName", "ProcessingJobArn", "CreationTime", "ProcessingEndTime",
           "LastModifiedTime", "ProcessingJobStatus", "FailureReason", "ExitMessage")
ECHOED = ("ProcessingInputs", "ProcessingOutputConfig", "ProcessingResources",
          "StoppingCondition", "AppSpecification", "Environment", "NetworkConfig", "RoleArn",
          "ExperimentConfig")
"""Request members DescribeProcessingJob gives back as they were sent."""


class ProcessingAPI(SageMakerBase):
    """CreateProcessingJob, DescribeProcessingJob, ListProcessingJobs, StopProcessingJob."""

    def create_processing_job(self, **request: Any) -> dict[str, Any]:
        spec = ProcessingJobSpec.from_request(request)
        backend = self._chosen_backend()
        # refuse at create, not once the runner has started: an image the engine lacks, an
        # entrypoint the process backend cannot honour, inputs without data
        check_at_create(backend, self.settings, ProcessingWorkload(spec))
        preflight.check_processing_inputs(request, self.settings.environ)
        created = now()
        description = {
            "ProcessingJobName": spec.name,
            "ProcessingJobArn": self._arn("processing-job", spec.name),
            "ProcessingJobStatus": "InProgress", "CreationTime": created,
            "LastModifiedTime": created,
            **{k: request[k] for k in ECHOED if k in request},
            "Backend": backend,
        }
        resource = self.store.create("processing-jobs", spec.name, description, dict(request))
        self._spawn(resource, runners.PROCESSING, backend)
        return {"ProcessingJobArn": description["ProcessingJobArn"]}

    def describe_processing_job(self, ProcessingJobName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        resource = self._resource("processing-jobs", ProcessingJobName)
        return public_view("DescribeProcessingJob",
                           runners.describe_live(resource, runners.PROCESSING))

    def list_processing_jobs(self, **kwargs: Any) -> dict[str, Any]:
        summaries = [{k: d[k] for k in SUMMARY if k in d}
                     for _, d in self.store.descriptions("processing-jobs")]
        return list_page("ListProcessingJobs", summaries, kwargs,
                         result_key="ProcessingJobSummaries", name_key="ProcessingJobName",
                         status_key="ProcessingJobStatus")

    def stop_processing_job(self, ProcessingJobName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        return self._stop_job(runners.PROCESSING, ProcessingJobName, "processing job")
