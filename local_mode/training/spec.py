"""A CreateTrainingJob request, validated once and turned into typed, immutable values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from local_mode.errors import ValidationException
from local_mode.storage import Location

DATA_TYPES = ("S3Prefix", "ManifestFile", "AugmentedManifestFile")
MODEL_ARTIFACT = "model.tar.gz"
OUTPUT_ARTIFACT = "output.tar.gz"


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
        return cls(
            name=request["TrainingJobName"], image=image, algorithm_input_mode=default_mode,
            entrypoint=tuple(algorithm["ContainerEntrypoint"])
            if algorithm.get("ContainerEntrypoint") else None,
            arguments=tuple(algorithm["ContainerArguments"])
            if algorithm.get("ContainerArguments") else None,
            hyperparameters=dict(request.get("HyperParameters") or {}),
            environment=dict(request.get("Environment") or {}),
            channels=tuple(channels), output_path=output,
            instance_type=resources.get("InstanceType", "local"), instance_count=count,
            max_runtime_seconds=max_runtime, max_wait_seconds=max_wait,
            checkpoint_uri=checkpoint.get("S3Uri"),
            checkpoint_local_path=checkpoint.get("LocalPath"),
            managed_spot=spot,
            metric_definitions=tuple(MetricDefinition(m["Name"], m["Regex"])
                                     for m in algorithm.get("MetricDefinitions") or []))


def platform_environment(spec: TrainingJobSpec, arn: str) -> dict[str, str]:
    """A host's environment: the job's ``Environment`` plus what the platform sets in every
    training container (the job's name and ARN), which wins. The runner and ``optml check``
    both start containers this way, so a check sees what a job sees."""
    return {**spec.environment, "TRAINING_JOB_NAME": spec.name, "TRAINING_JOB_ARN": arn}
