"""The training jobs ``optml check`` runs: a tiny generated one, or the user's job file.

A job is a CreateTrainingJob request, the same shape ``optml local train`` reads, so a job file
that works there works here. The check always runs it on the image under test, on one host, with
File-mode channels staged from ``file://`` or ``s3://`` as local mode does.
"""

from __future__ import annotations

import copy
import random
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ParamValidationError

from local_mode.check.errors import CheckInputError
from local_mode.errors import LocalModeError
from local_mode.request_files import RequestFileError, load_request
from local_mode.training.spec import TrainingJobSpec
from local_mode.validation import validate_request

JOB_NAME_PREFIX = "optml-check-"
"""Every job the check runs is named with this prefix (it also labels its containers)."""
GENERATED_CHANNEL = "train"
GENERATED_ROWS = 40
GENERATED_FEATURES = 3
INSTANCE_TYPE = "local"
"""No instance type's limits: the checks are about behaviour, not about fitting a machine."""
RUNNABLE_MODES = ("File", "FastFile")
PLACEHOLDERS = {"RoleArn": "arn:aws:iam::000000000000:role/optml-check",
                "StoppingCondition": {"MaxRuntimeInSeconds": 86400}}
"""What a job file may leave out, supplied only to validate it: nothing assumes a role locally,
and ``--train-timeout`` bounds every run the check makes."""


def job_name() -> str:
    return f"{JOB_NAME_PREFIX}{secrets.token_hex(4)}"


def generated_csv(rows: int = GENERATED_ROWS, features: int = GENERATED_FEATURES) -> str:
    """Label-first numeric CSV without a header (the built-in algorithms' CSV convention), so
    a program that reads "a CSV train channel" in the usual way has something to learn.

    The label is a class, 0 or 1, with both classes present: a classifier refuses continuous
    labels, while a regressor takes 0/1 as numbers, so either kind of program can train."""
    rng = random.Random(0)  # noqa: S311 - reproducible sample data, not a secret
    lines = []
    for row in range(rows):
        x = [rng.random() for _ in range(features)]
        score = 2.0 * x[0] - x[1] + 0.5 * x[-1]
        label = row % 2 if row < 2 else int(score > 0.75)  # the first two rows: one of each
        lines.append(",".join([str(label), *(f"{v:.6f}" for v in x)]))
    return "\n".join(lines) + "\n"


def generated_request(image: str, data_dir: Path, output_dir: Path,
                      hyperparameters: Mapping[str, str] | None = None,
                      environment: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A one-host job with one small CSV channel ``train`` (File mode), written to
    ``data_dir``; ``output_dir`` only satisfies the request shape (nothing is uploaded)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "train.csv").write_text(generated_csv(), encoding="utf-8")
    return {
        "TrainingJobName": job_name(),
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "HyperParameters": dict(hyperparameters or {}),
        "Environment": dict(environment or {}),
        "InputDataConfig": [{
            "ChannelName": GENERATED_CHANNEL, "ContentType": "text/csv",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                            "S3Uri": data_dir.resolve().as_uri() + "/",
                                            "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": output_dir.resolve().as_uri()},
        "ResourceConfig": {"InstanceType": INSTANCE_TYPE, "InstanceCount": 1,
                           "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def load_job(path: Path, image: str, output_dir: Path,
             hyperparameters: Mapping[str, str] | None = None,
             environment: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The user's job file as a request for ``image``: its TrainingImage is replaced (the image
    under test is the one named on the command line), ``hyperparameters`` and ``environment``
    are added over the file's, and a missing name or output path is filled in."""
    try:
        request = load_request(path)
    except RequestFileError as exc:  # missing, unreadable, not JSON/YAML, not one object
        raise CheckInputError(str(exc)) from None
    request = copy.deepcopy(request)
    algorithm = request.get("AlgorithmSpecification")
    if algorithm is not None and not isinstance(algorithm, dict):
        raise CheckInputError(f"{path}: AlgorithmSpecification must be an object")
    algorithm = dict(algorithm or {})
    algorithm["TrainingImage"] = image
    algorithm.pop("AlgorithmName", None)
    request["AlgorithmSpecification"] = algorithm
    request["TrainingJobName"] = job_name()
    request.setdefault("OutputDataConfig", {"S3OutputPath": output_dir.resolve().as_uri()})
    for key, extra in (("HyperParameters", hyperparameters), ("Environment", environment)):
        if extra:
            own = request.get(key) or {}
            if not isinstance(own, dict):
                raise CheckInputError(f"{path}: {key} must be an object (names to strings)")
            request[key] = {**own, **extra}
    job_spec(request, str(path))  # fail now, naming the file, not in the middle of a check
    return request


def job_spec(request: Mapping[str, Any], source: str = "the generated job") -> TrainingJobSpec:
    """The validated spec of ``request``; CheckInputError naming ``source`` and the field.

    The request is first checked as CreateTrainingJob is (botocore's model, then the service's
    patterns and enums), as ``optml local train`` checks it, so a wrong type is named there
    rather than failing somewhere inside the spec.
    """
    try:
        validate_request("CreateTrainingJob", {**PLACEHOLDERS, **request})
    except ParamValidationError as exc:
        raise CheckInputError(f"{source}: {' '.join(str(exc).split())}") from None
    except LocalModeError as exc:  # ValidationException
        raise CheckInputError(f"{source}: {exc.message}") from None
    try:
        spec = TrainingJobSpec.from_request(request)
    except LocalModeError as exc:
        raise CheckInputError(f"{source}: {exc.message}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckInputError(f"{source}: invalid request ({type(exc).__name__}: {exc})") \
            from None
    if spec.instance_count != 1:
        raise CheckInputError(f"{source}: ResourceConfig.InstanceCount is {spec.instance_count}; "
                              "optml check runs one host (use optml local train for clusters)")
    for channel in spec.channels:
        if channel.input_mode not in RUNNABLE_MODES:
            raise CheckInputError(f"{source}: channel {channel.name!r} uses InputMode "
                                  f"{channel.input_mode}; optml check stages File and FastFile "
                                  "channels only")
    return spec


def without_channels(request: Mapping[str, Any]) -> dict[str, Any]:
    """``request`` with every channel removed and a fresh name: the generic way to make a
    training program fail without knowing it (its data is not there)."""
    failing = copy.deepcopy(dict(request))
    failing.pop("InputDataConfig", None)
    failing["TrainingJobName"] = job_name()
    return failing


def renamed(request: Mapping[str, Any]) -> dict[str, Any]:
    """``request`` under a fresh name (each run is its own job, with its own containers)."""
    again = copy.deepcopy(dict(request))
    again["TrainingJobName"] = job_name()
    return again
