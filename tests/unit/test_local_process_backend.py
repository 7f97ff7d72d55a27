"""The process backend's create-time check: what it can run without an image; and the one error
every backend choice refuses with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local_mode.cluster.choice import make_backend as make_training_backend
from local_mode.cluster.process import ProcessBackend
from local_mode.endpoints.backends.choice import make_backend as make_serving_backend
from local_mode.errors import BackendUnsupported, ValidationException
from local_mode.training.spec import TrainingJobSpec
from local_mode.training.workload import TrainingWorkload
from toolkit.settings import Settings


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
    {"Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "{code}"}},  # train.py by default
    {"HyperParameters": {"sagemaker_submit_directory": "file://{tarball}"}},
    {"HyperParameters": {"sagemaker_program": "fit.py"}},
    {"Environment": {"SAGEMAKER_PROGRAM": "fit.py", "SAGEMAKER_SUBMIT_DIRECTORY": "{code}"}},
])
def test_code_or_a_program_is_enough(changes: dict[str, Any], tmp_path: Path) -> None:
    """Code a job names on this machine must exist (it is checked at create)."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code.tar.gz").write_bytes(b"")
    filled = {member: {k: v.format(code=tmp_path / "code", tarball=tmp_path / "code.tar.gz")
                       for k, v in values.items()} for member, values in changes.items()}
    ProcessBackend({}, 5.0).check(TrainingWorkload(_spec(**filled)))


def test_an_image_alone_is_refused_saying_what_to_give() -> None:
    with pytest.raises(BackendUnsupported, match="sagemaker_submit_directory"):
        ProcessBackend({}, 5.0).check(TrainingWorkload(_spec()))


def test_both_backend_choices_refuse_an_unknown_name_with_the_one_error() -> None:
    """Training and serving share one BackendUnsupported, the service's ValidationException."""
    with pytest.raises(BackendUnsupported, match="cannot run training or processing jobs") as training:
        make_training_backend("podman", Settings.from_environ({}))
    with pytest.raises(BackendUnsupported, match="cannot run endpoints") as serving:
        make_serving_backend("podman", {})
    assert training.value.response["Error"]["Code"] == "ValidationException"
    assert isinstance(serving.value, ValidationException)
