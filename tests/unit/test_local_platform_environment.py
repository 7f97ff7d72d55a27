"""The environment every training container gets: the job's, plus the platform's name and ARN."""

from __future__ import annotations

from local_mode.client_base import arn
from local_mode.training.spec import TrainingJobSpec, platform_environment


def _spec(environment: dict[str, str]) -> TrainingJobSpec:
    return TrainingJobSpec.from_request({
        "TrainingJobName": "My-Job",
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "file:///tmp/out"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1},
        "Environment": environment})


def test_the_platform_adds_the_job_name_and_arn() -> None:
    job_arn = arn("training-job", "My-Job")
    assert platform_environment(_spec({"A": "1"}), job_arn) == {
        "A": "1", "TRAINING_JOB_NAME": "My-Job",
        "TRAINING_JOB_ARN": "arn:aws:sagemaker:local:000000000000:training-job/my-job"}


def test_the_platform_wins_over_the_jobs_environment() -> None:
    env = platform_environment(_spec({"TRAINING_JOB_NAME": "other", "B": "2"}), "arn:x")
    assert env == {"TRAINING_JOB_NAME": "My-Job", "TRAINING_JOB_ARN": "arn:x", "B": "2"}
