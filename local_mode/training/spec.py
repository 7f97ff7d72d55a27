"""A CreateTrainingJob request, validated once and turned into typed, immutable values."""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from local_mode.errors import ValidationException
from local_mode.storage import Location
from toolkit.layout import DEFAULT_ROOT, Layout
from toolkit.training.config import decode_hyperparameter

DATA_TYPES = ("S3Prefix", "ManifestFile", "AugmentedManifestFile")
MODEL_ARTIFACT = "model.tar.gz"
OUTPUT_ARTIFACT = "output.tar.gz"
CODE_MEMBERS = (("HyperParameters", "sagemaker_submit_directory"),
                ("Environment", "SAGEMAKER_SUBMIT_DIRECTORY"))
"""The request members that say where the user's code is (the toolkit reads the variable
first); either may name an ``s3://`` tarball, a local directory or tarball, or a ``file://`` one."""
CODE_SOURCE_DIR = str(Layout().input_dir / "code-source")
"""Where a container sees the job's local code sources, read-only (one entry each): a path of
its own, so the image's ``/opt/ml/code`` stays visible and stays where a tarball is extracted."""


@dataclass(frozen=True)
class LocalCode:
    """A code member (:data:`CODE_MEMBERS`) that names a directory or tarball on this machine,
    and how it says so (bare path or ``file://`` URI, JSON-encoded hyperparameter or not), so
    that it can be made to name another path in the same form."""

    section: str
    key: str
    path: Path
    uri: bool = False
    encoded: bool = False

    @property
    def member(self) -> str:
        return f"{self.section}.{self.key}"

    def naming(self, path: str) -> str:
        """The member's value if it named ``path`` instead."""
        value = "file://" + quote(path, safe="/") if self.uri else path
        return json.dumps(value) if self.encoded else value


@dataclass(frozen=True)
class CodeMount:
    """A local code source as a job's containers see it: bind-mounted read-only (a directory)
    or copied into a read-only directory (a tarball) at ``CODE_SOURCE_DIR/<name>``."""

    source: Path
    name: str

    @property
    def target(self) -> str:
        return f"{CODE_SOURCE_DIR}/{self.name}"


def local_code(hyperparameters: Mapping[str, Any],
               environment: Mapping[str, Any]) -> tuple[LocalCode, ...]:
    """The code members (:data:`CODE_MEMBERS`) that name code on this machine, read as the
    toolkit reads them, each checked to be there.

    A path counts when it is absolute and outside ``/opt/ml`` (a path below it is one the
    container has: a staged channel, the image's own ``/opt/ml/code``); a relative bare path is
    left to the host that runs the job, as it always was (request files resolve theirs when they
    are loaded). Raises ValidationException, naming the member, for a ``file://`` URI that
    names another machine and for a local path that is not a directory or a regular file.
    """
    sections = {"HyperParameters": hyperparameters, "Environment": environment}
    found = []
    for section, key in CODE_MEMBERS:
        raw = sections[section].get(key)
        if not isinstance(raw, str):
            continue
        encoded = section == "HyperParameters"  # SDKs JSON-encode hyperparameters
        value = decode_hyperparameter(raw) if encoded else raw
        if not isinstance(value, str) or not value:
            continue
        encoded = encoded and value != raw
        member = f"{section}.{key}"
        uri = "://" in value
        if uri:
            parts = urlsplit(value)
            if parts.scheme.lower() != "file":
                continue  # s3:// is fetched by the toolkit; another scheme it refuses itself
            if parts.netloc not in ("", "localhost"):
                raise ValidationException(
                    f"{member}: {value!r} is not a file:///absolute/path URI (it names host "
                    f"{parts.netloc!r}); only request files resolve relative paths, against "
                    "their own directory", "CreateTrainingJob")
            path = unquote(parts.path)
        else:
            path = value
        if not path.startswith("/") or _in_container(path):
            continue
        _check_code_path(member, path)
        found.append(LocalCode(section, key, Path(path), uri=uri, encoded=encoded))
    return tuple(found)


def _in_container(path: str) -> bool:
    normal = posixpath.normpath(path)
    return normal == str(DEFAULT_ROOT) or normal.startswith(f"{DEFAULT_ROOT}/")


def _check_code_path(member: str, path: str) -> None:
    """Refuse at create what the toolkit would fail on minutes later: code that is not there."""
    if not os.path.exists(path):
        reason = "no such file or directory on this machine"
    elif not (os.path.isdir(path) or os.path.isfile(path)):
        reason = "neither a directory nor a regular file"
    elif not os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)):
        reason = "not readable"
    else:
        return
    raise ValidationException(f"{member}: user code {path}: {reason}", "CreateTrainingJob")


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    uri: str
    data_type: str = "S3Prefix"
    distribution: str = "FullyReplicated"
    input_mode: str = "File"
    content_type: str | None = None
    compression: str = "None"
    record_wrapper: str = "None"
    shuffle_seed: int | None = None
    attribute_names: tuple[str, ...] = ()

    def config_entry(self) -> dict[str, Any]:
        """This channel's entry of inputdataconfig.json, telling the container the truth (the
        SDK's local mode writes File even for Pipe)."""
        entry: dict[str, Any] = {"TrainingInputMode": self.input_mode,
                                 "S3DistributionType": self.distribution,
                                 "RecordWrapperType": self.record_wrapper}
        if self.content_type:
            entry["ContentType"] = self.content_type
        if self.compression != "None":
            entry["CompressionType"] = self.compression
        return entry


@dataclass(frozen=True)
class MetricDefinition:
    name: str
    regex: str


@dataclass(frozen=True)
class TrainingJobSpec:
    name: str
    image: str | None
    algorithm_input_mode: str
    entrypoint: tuple[str, ...] | None
    arguments: tuple[str, ...] | None
    hyperparameters: Mapping[str, str]
    environment: Mapping[str, str]
    channels: tuple[ChannelSpec, ...]
    output_path: str
    instance_type: str
    instance_count: int
    max_runtime_seconds: int | None
    max_wait_seconds: int | None
    checkpoint_uri: str | None
    checkpoint_local_path: str | None
    managed_spot: bool
    metric_definitions: tuple[MetricDefinition, ...] = field(default=())
    local_code: tuple[LocalCode, ...] = field(default=())
    """The code members that name code on this machine (checked to be there at create)."""
    code_mounts: tuple[CodeMount, ...] = field(default=())
    """Set only for hosts that are containers (:func:`local_mode.training.workload.for_backend`):
    the local code they get mounted; their code members then name the mounts."""

    @property
    def artifacts_location(self) -> Location:
        """``<S3OutputPath>/<job name>/output/``: where the service puts ``model.tar.gz`` and
        ``output.tar.gz`` (known at create time, which DescribeTrainingJob shows from then on)."""
        return Location.parse(self.output_path, "OutputDataConfig.S3OutputPath").join(
            self.name, "output")

    @property
    def model_artifact_uri(self) -> str:
        return self.artifacts_location.join(MODEL_ARTIFACT).uri

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> TrainingJobSpec:
        algorithm = request.get("AlgorithmSpecification") or {}
        image = algorithm.get("TrainingImage")
        if not image and not algorithm.get("AlgorithmName"):
            raise ValidationException("AlgorithmSpecification.TrainingImage is required locally",
                                      "CreateTrainingJob")
        if algorithm.get("AlgorithmName") and not image:
            raise ValidationException("AlgorithmSpecification.AlgorithmName (marketplace "
                                      "algorithms) cannot run locally; give TrainingImage",
                                      "CreateTrainingJob")
        default_mode = algorithm.get("TrainingInputMode", "File")
        channels = []
        for index, channel in enumerate(request.get("InputDataConfig") or []):
            where = f"InputDataConfig[{index}]"
            source = (channel.get("DataSource") or {}).get("S3DataSource")
            if not source:
                raise ValidationException(f"{where}.DataSource.S3DataSource is required locally "
                                          "(file systems and datasets are not emulated)",
                                          "CreateTrainingJob")
            Location.parse(source["S3Uri"], f"{where}.DataSource.S3DataSource.S3Uri")
            mode = channel.get("InputMode") or default_mode
            data_type = source.get("S3DataType", "S3Prefix")
            if data_type == "AugmentedManifestFile" and mode != "Pipe":
                # The service allows augmented manifests in Pipe mode only.
                raise ValidationException(f"{where}: AugmentedManifestFile needs InputMode Pipe",
                                          "CreateTrainingJob")
            shuffle = channel.get("ShuffleConfig")
            channels.append(ChannelSpec(
                name=channel["ChannelName"], uri=source["S3Uri"], data_type=data_type,
                distribution=source.get("S3DataDistributionType", "FullyReplicated"),
                input_mode=mode, content_type=channel.get("ContentType"),
                compression=channel.get("CompressionType", "None") or "None",
                record_wrapper=channel.get("RecordWrapperType", "None") or "None",
                shuffle_seed=None if not shuffle else int(shuffle["Seed"]),
                attribute_names=tuple(source.get("AttributeNames") or ())))
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ValidationException("InputDataConfig: channel names must be unique",
                                      "CreateTrainingJob")
        resources = request.get("ResourceConfig") or {}
        if resources.get("InstanceGroups"):
            raise ValidationException("ResourceConfig.InstanceGroups (heterogeneous clusters) "
                                      "are not emulated yet", "CreateTrainingJob")
        count = int(resources.get("InstanceCount", 1))
        if count < 1:
            raise ValidationException("ResourceConfig.InstanceCount must be >= 1",
                                      "CreateTrainingJob")
        output = request["OutputDataConfig"]["S3OutputPath"]
        Location.parse(output, "OutputDataConfig.S3OutputPath")
        stopping = request.get("StoppingCondition") or {}
        checkpoint = request.get("CheckpointConfig") or {}
        if checkpoint.get("S3Uri"):
            Location.parse(checkpoint["S3Uri"], "CheckpointConfig.S3Uri")
        spot = bool(request.get("EnableManagedSpotTraining", False))
        max_wait = stopping.get("MaxWaitTimeInSeconds")
        if spot and max_wait is None:
            raise ValidationException("StoppingCondition.MaxWaitTimeInSeconds is required with "
                                      "EnableManagedSpotTraining", "CreateTrainingJob")
        max_runtime = stopping.get("MaxRuntimeInSeconds")
        if spot and max_wait is not None and max_runtime is not None and max_wait < max_runtime:
            raise ValidationException("StoppingCondition.MaxWaitTimeInSeconds must be >= "
                                      "MaxRuntimeInSeconds", "CreateTrainingJob")
        hyperparameters = dict(request.get("HyperParameters") or {})
        environment = dict(request.get("Environment") or {})
        code = local_code(hyperparameters, environment)
        return cls(
            name=request["TrainingJobName"], image=image, algorithm_input_mode=default_mode,
            entrypoint=tuple(algorithm["ContainerEntrypoint"])
            if algorithm.get("ContainerEntrypoint") else None,
            arguments=tuple(algorithm["ContainerArguments"])
            if algorithm.get("ContainerArguments") else None,
            hyperparameters=hyperparameters, environment=environment,
            channels=tuple(channels), output_path=output,
            instance_type=resources.get("InstanceType", "local"), instance_count=count,
            max_runtime_seconds=max_runtime, max_wait_seconds=max_wait,
            checkpoint_uri=checkpoint.get("S3Uri"),
            checkpoint_local_path=checkpoint.get("LocalPath"),
            managed_spot=spot,
            metric_definitions=tuple(MetricDefinition(m["Name"], m["Regex"])
                                     for m in algorithm.get("MetricDefinitions") or []),
            local_code=code)


def platform_environment(spec: TrainingJobSpec, arn: str) -> dict[str, str]:
    """A host's environment: the job's ``Environment`` plus what the platform sets in every
    training container (the job's name and ARN), which wins. The runner and ``optml check``
    both start containers this way, so a check sees what a job sees."""
    return {**spec.environment, "TRAINING_JOB_NAME": spec.name, "TRAINING_JOB_ARN": arn}
