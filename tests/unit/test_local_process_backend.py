"""The process backend's create-time check: what it can run without an image."""

from __future__ import annotations

from typing import Any

import pytest

from local_mode.errors import BackendUnsupported
from local_mode.training.backends.process import ProcessBackend
from local_mode.training.spec import TrainingJobSpec


def _spec(**changes: Any) -> TrainingJobSpec:
    request: dict[str, Any] = {
        "TrainingJobName": "j",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "file:///tmp/out"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1},
    }
    request.update(changes)
    return TrainingJobSpec.from_request(request)


@pytest.mark.parametrize("changes", [
    {"Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "/code"}},  # train.py by default
    {"HyperParameters": {"sagemaker_submit_directory": "file:///code.tar.gz"}},
    {"HyperParameters": {"sagemaker_program": "fit.py"}},
    {"Environment": {"SAGEMAKER_PROGRAM": "fit.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/code"}},
])
def test_code_or_a_program_is_enough(changes: dict[str, Any]) -> None:
    ProcessBackend({}, 5.0).check(_spec(**changes))


def test_an_image_alone_is_refused_saying_what_to_give() -> None:
    with pytest.raises(BackendUnsupported, match="sagemaker_submit_directory"):
        ProcessBackend({}, 5.0).check(_spec())
