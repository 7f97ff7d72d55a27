"""The training-job operations of the local ``sagemaker`` client."""

from __future__ import annotations

from typing import Any

from local_mode import preflight, runners
from local_mode.api.base import SageMakerBase
from local_mode.cluster.choice import check_at_create
from local_mode.errors import ResourceInUse, ResourceNotFound
from local_mode.listing import list_page
from local_mode.shapes import public_view
from local_mode.state import now
from local_mode.training.spec import TrainingJobSpec
from local_mode.training.workload import TrainingWorkload

SUMMARY = ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime",
           "LastModifiedTime", "TrainingJobStatus", "SecondaryStatus", "WarmPoolStatus")
ECHOED = frozenset({
    "HyperParameters", "AlgorithmSpecification", "RoleArn", "InputDataConfig",
    "OutputDataConfig", "ResourceConfig", "VpcConfig", "StoppingCondition",
    "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining", "CheckpointConfig", "Environment", "RetryStrategy",
})
"""Request members DescribeTrainingJob gives back as they were sent."""


class TrainingAPI(SageMakerBase):
    """CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs, StopTrainingJob."""

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        spec = TrainingJobSpec.from_request(request)
        backend = self._chosen_backend()
        check_at_create(backend, self.settings, TrainingWorkload(spec))  # refuse at create, not minutes later
        preflight.check_training_channels(request, self.settings.environ)
        created = now()
        description = {
            "TrainingJobName": spec.name, "TrainingJobArn": self._arn("training-job", spec.name),
            "TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting",
            "CreationTime": created, "LastModifiedTime": created, "TrainingStartTime": created,
            "SecondaryStatusTransitions": [],
            "ModelArtifacts": {"S3ModelArtifacts": spec.model_artifact_uri},
            **{k: v for k, v in request.items() if k in ECHOED},
            # the service always answers with a KmsKeyId ("" when none was given), and the SDK
            # reads it unconditionally (Estimator.attach)
            "OutputDataConfig": {"KmsKeyId": "", **request["OutputDataConfig"]},
            "Backend": backend,
        }
        resource = self.store.create("training-jobs", spec.name, description, dict(request))
        self._spawn(resource, runners.TRAINING, backend)
        return {"TrainingJobArn": description["TrainingJobArn"]}

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        resource = self._resource("training-jobs", TrainingJobName)
        return public_view("DescribeTrainingJob", runners.describe_live(resource,
                                                                        runners.TRAINING))

    def list_training_jobs(self, **kwargs: Any) -> dict[str, Any]:
        summaries = []
        for _, d in self.store.descriptions("training-jobs"):
            plan = (d.get("ResourceConfig") or {}).get("TrainingPlanArn")
            summaries.append({k: d[k] for k in SUMMARY if k in d}
                             | ({"TrainingPlanArn": plan} if plan else {}))
        return list_page("ListTrainingJobs", summaries, kwargs,
                         result_key="TrainingJobSummaries", name_key="TrainingJobName",
                         status_key="TrainingJobStatus")

    def stop_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        return self._stop_job(runners.TRAINING, TrainingJobName, "training job")

    def delete_training_job(self, TrainingJobName: str) -> dict[str, Any]:  # noqa: N803 - the service's member name
        """DeleteTrainingJob: forget a job that has ended (its record and logs); the name can be
        used again. A job still InProgress or Stopping is ResourceInUse, as on the service; one
        whose runner has not exited yet counts as Stopping."""
        try:
            resource = self.store.get("training-jobs", TrainingJobName)
        except ResourceNotFound:
            raise ResourceNotFound(f"Training job {TrainingJobName} does not exist.",
                                   "DeleteTrainingJob") from None
        description = runners.describe_live(resource, runners.TRAINING)
        if not runners.ended(resource, runners.TRAINING):
            status = description["TrainingJobStatus"] \
                if not runners.TRAINING.settled(description) else "still stopping"
            raise ResourceInUse(f"Training job {TrainingJobName} is {status}: only a job that "
                                "is Stopped, Failed or Completed can be deleted.",
                                "DeleteTrainingJob")
        self.store.delete("training-jobs", TrainingJobName)
        return {}
