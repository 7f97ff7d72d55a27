"""A CreateProcessingJob request, validated once and turned into typed, immutable values.

botocore's model has already checked types, enums, lengths and patterns (:mod:`local_mode.validation`);
this adds the service's own rules, each failing with the member's path: every input and output
path lies below ``/opt/ml/processing/``, names are unique, Gzip needs Pipe mode, and what cannot
run locally (Athena/Redshift datasets, Feature Store outputs) is refused with the reason.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local_mode.errors import ValidationException
from local_mode.storage import Location
from toolkit.layout import Layout

OPERATION = "CreateProcessingJob"
PROCESSING_ROOT = str(Layout().processing_dir)
"""``/opt/ml/processing``: every LocalPath must lie below it."""


def _invalid(message: str) -> ValidationException:
    return ValidationException(message, OPERATION)


@dataclass(frozen=True)
class ProcessingInputSpec:
    """One ``ProcessingInputs`` entry that has S3 data (an ``AppManaged`` input has none)."""

    name: str
    uri: str
    local_path: str
    data_type: str = "S3Prefix"
    input_mode: str = "File"
    distribution: str = "FullyReplicated"
    compression: str = "None"


@dataclass(frozen=True)
class ProcessingOutputSpec:
    name: str
    uri: str
    local_path: str
    upload_mode: str = "EndOfJob"

    @property
    def continuous(self) -> bool:
        return self.upload_mode == "Continuous"


@dataclass(frozen=True)
class ProcessingJobSpec:
    name: str
    image: str
    entrypoint: tuple[str, ...] | None
    arguments: tuple[str, ...] | None
    environment: Mapping[str, str]
    inputs: tuple[ProcessingInputSpec, ...]
    outputs: tuple[ProcessingOutputSpec, ...]
    instance_type: str
    instance_count: int
    max_runtime_seconds: int | None

    @property
    def local_paths(self) -> tuple[str, ...]:
        """Every directory of ``/opt/ml/processing`` the platform fills or empties."""
        return tuple(i.local_path for i in self.inputs) + tuple(o.local_path for o in self.outputs)

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> ProcessingJobSpec:
        app = request["AppSpecification"]
        inputs = tuple(_inputs(request.get("ProcessingInputs") or []))
        outputs = tuple(_outputs((request.get("ProcessingOutputConfig") or {})
                                 .get("Outputs") or []))
        _unique([*(i.local_path for i in inputs), *(o.local_path for o in outputs)],
                 "the LocalPath of every input and output")
        cluster = request["ProcessingResources"]["ClusterConfig"]
        count = int(cluster["InstanceCount"])
        if count < 1:
            raise _invalid("ProcessingResources.ClusterConfig.InstanceCount must be >= 1")
        stopping = request.get("StoppingCondition") or {}
        return cls(
            name=request["ProcessingJobName"], image=app["ImageUri"],
            entrypoint=tuple(app["ContainerEntrypoint"]) if app.get("ContainerEntrypoint")
            else None,
            arguments=tuple(app["ContainerArguments"]) if app.get("ContainerArguments")
            else None,
            environment=dict(request.get("Environment") or {}),
            inputs=inputs, outputs=outputs,
            instance_type=cluster["InstanceType"], instance_count=count,
            max_runtime_seconds=stopping.get("MaxRuntimeInSeconds"))


def _local_path(path: str, where: str) -> str:
    """The LocalPath, normalised; it must be absolute and lie strictly below
    ``/opt/ml/processing/`` (as the service requires)."""
    normal = posixpath.normpath(path) if path else ""
    if not normal.startswith(PROCESSING_ROOT + "/"):
        raise _invalid(f"{where}.LocalPath must be an absolute path that begins with "
                       f"{PROCESSING_ROOT}/, got {path!r}")
    return normal


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise _invalid(f"{what} must be unique; {value!r} appears more than once")
        seen.add(value)


def _inputs(entries: list[Mapping[str, Any]]) -> list[ProcessingInputSpec]:
    inputs = []
    for index, entry in enumerate(entries):
        where = f"ProcessingInputs[{index}]"
        if entry.get("DatasetDefinition"):
            raise _invalid(f"{where}.DatasetDefinition (Athena and Redshift datasets) cannot run "
                           "locally; export the query's result to S3 and give it as S3Input")
        source = entry.get("S3Input")
        if not source:
            if entry.get("AppManaged"):
                continue  # the program fetches its data itself: nothing to stage
            raise _invalid(f"{where}: give S3Input (or AppManaged true)")
        Location.parse(source["S3Uri"], f"{where}.S3Input.S3Uri")
        if not source.get("LocalPath"):
            raise _invalid(f"{where}.S3Input.LocalPath is required unless AppManaged is true")
        mode = source.get("S3InputMode", "File")
        compression = source.get("S3CompressionType", "None") or "None"
        if compression == "Gzip" and mode != "Pipe":
            raise _invalid(f"{where}.S3Input.S3CompressionType Gzip can only be used with "
                           "S3InputMode Pipe")
        inputs.append(ProcessingInputSpec(
            name=entry["InputName"], uri=source["S3Uri"],
            local_path=_local_path(source["LocalPath"], f"{where}.S3Input"),
            data_type=source.get("S3DataType", "S3Prefix"), input_mode=mode,
            distribution=source.get("S3DataDistributionType", "FullyReplicated"),
            compression=compression))
    _unique([e["InputName"] for e in entries], "ProcessingInputs[].InputName")
    _unique([i.local_path for i in inputs], "ProcessingInputs[].S3Input.LocalPath")
    return inputs


def _outputs(entries: list[Mapping[str, Any]]) -> list[ProcessingOutputSpec]:
    outputs = []
    for index, entry in enumerate(entries):
        where = f"ProcessingOutputConfig.Outputs[{index}]"
        if entry.get("FeatureStoreOutput"):
            raise _invalid(f"{where}.FeatureStoreOutput cannot run locally; write to S3Output")
        target = entry.get("S3Output")
        if not target:
            if entry.get("AppManaged"):
                continue
            raise _invalid(f"{where}: give S3Output (or AppManaged true)")
        Location.parse(target["S3Uri"], f"{where}.S3Output.S3Uri")
        if not target.get("LocalPath"):
            raise _invalid(f"{where}.S3Output.LocalPath is required unless AppManaged is true")
        outputs.append(ProcessingOutputSpec(
            name=entry["OutputName"], uri=target["S3Uri"],
            local_path=_local_path(target["LocalPath"], f"{where}.S3Output"),
            upload_mode=target.get("S3UploadMode", "EndOfJob")))
    _unique([e["OutputName"] for e in entries], "ProcessingOutputConfig.Outputs[].OutputName")
    _unique([o.local_path for o in outputs], "ProcessingOutputConfig.Outputs[].S3Output.LocalPath")
    return outputs
