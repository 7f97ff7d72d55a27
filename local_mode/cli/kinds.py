"""Every kind of local resource as the CLI sees it: one :class:`ResourceKind` per kind, so each
verb (list, describe, logs, stop, wait, rm) is written once and works the same on all of them.

A kind is data: the service's member names (``TrainingJobName``, ``TrainingJobStatus``), its
client operations (``describe_training_job``), its listing's result key, its runner lifecycle
(jobs and endpoints; models and endpoint configs have none) and how a finished one reads. The
commands are built from these by :mod:`local_mode.cli.jobs` and :mod:`local_mode.cli.resources`.

Like every module of the CLI, this one imports only click and the standard library up front.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from local_mode.cli.errors import fail, one_line

if TYPE_CHECKING:
    from local_mode.runners import Lifecycle
    from local_mode.sagemaker import SageMakerClient
    from local_mode.state import ResourceDir

Outcome = Callable[[Mapping[str, Any]], tuple[str, list[str]]]
"""A finished resource's description as its status line and the lines that follow it."""
Column = tuple[str, Callable[[Mapping[str, Any]], str]]
"""A table column beyond NAME, STATUS, CREATED (and ENDED): its header and its cell, computed
from the resource's stored description (the service's members plus local mode's own)."""

JOB_STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
"""The service's job statuses (training, processing and transform jobs)."""
ENDPOINT_STATUSES = ("OutOfService", "Creating", "Updating", "SystemUpdating", "RollingBack",
                     "InService", "Deleting", "Failed", "UpdateRollbackFailed")
"""The service's endpoint statuses."""


@dataclass(frozen=True)
class ResourceKind:
    """One kind of local resource as the CLI sees it."""

    command: str
    """Its command group, also the state store's kind (``training-jobs``)."""
    what: str
    """How messages name one (``training job``)."""
    member: str
    """The service's prefix of its members (``TrainingJob``: ``TrainingJobName``, ...)."""
    list_key: str
    """Its List operation's result key (``TrainingJobSummaries``)."""
    lifecycle_name: str | None = None
    """Its :class:`local_mode.runners.Lifecycle` in that module (``TRAINING``); None when no
    runner owns it (models, endpoint configs)."""
    end_time: str | None = None
    """The member that says when it ended (``TrainingEndTime``); None if it does not end."""
    outcome: Outcome | None = None
    """The status line of a finished one and what follows it (artifacts, outputs)."""
    columns: tuple[Column, ...] = ()
    """What its table shows besides NAME, STATUS, CREATED and ENDED."""
    statuses: tuple[str, ...] = ()
    """What ``--status`` accepts (empty: the kind has no status)."""
    stoppable: bool = False
    """Whether the service can stop one (jobs)."""
    host_log: bool = False
    """Its log is one ``all.log`` of host-prefixed lines (training and processing jobs), rather
    than one file per instance (endpoints, transform jobs)."""

    @property
    def operation(self) -> str:
        """The client's suffix of its operations: ``training_job`` (``describe_training_job``)."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.member).lower()

    @property
    def name_member(self) -> str:
        return f"{self.member}Name"

    @property
    def status_member(self) -> str | None:
        return f"{self.member}Status" if self.statuses else None

    @property
    def has_logs(self) -> bool:
        return self.lifecycle_name is not None

    @property
    def lifecycle(self) -> Lifecycle:
        from local_mode import runners  # with the state store: botocore loads only when used

        if self.lifecycle_name is None:
            raise ValueError(f"a {self.what} has no runner")
        lifecycle: Lifecycle = getattr(runners, self.lifecycle_name)
        return lifecycle

    def call(self, client: SageMakerClient, verb: str, **request: Any) -> Any:
        """The client's ``<verb>_<operation>`` (``describe_training_job``) with ``request``."""
        return getattr(client, f"{verb}_{self.operation}")(**request)

    def describe(self, client: SageMakerClient, name: str) -> dict[str, Any]:
        description: dict[str, Any] = self.call(client, "describe", **{self.name_member: name})
        return description

    def stop(self, client: SageMakerClient, name: str) -> None:
        self.call(client, "stop", **{self.name_member: name})

    def summaries(self, client: SageMakerClient, **filters: Any) -> list[Mapping[str, Any]]:
        """Every page of List<Kind>s (``list_training_jobs``) with ``filters``, oldest first."""
        rows: list[Mapping[str, Any]] = []
        token = None
        while True:
            page = getattr(client, f"list_{self.operation}s")(
                SortBy="CreationTime", SortOrder="Ascending", **filters,
                **({"NextToken": token} if token else {}))
            rows.extend(page[self.list_key])
            token = page.get("NextToken")
            if not token:
                return rows

    def resource(self, client: SageMakerClient, name: str) -> ResourceDir:
        """Its state directory; exit 1 naming the state directory if there is no such one."""
        from local_mode.errors import ResourceNotFound

        try:
            return client.store.get(self.command, name)
        except ResourceNotFound:
            fail(f"no local {self.what} named {name!r} in {client.store.root}")

    def stored(self, client: SageMakerClient, name: str) -> dict[str, Any]:
        """Its stored description (local mode's own members too), checked against its runner
        as Describe does; empty if it went away meanwhile."""
        from local_mode import runners
        from local_mode.errors import ResourceNotFound

        try:
            resource = client.store.get(self.command, name)
            if self.lifecycle_name is None:
                return resource.describe()
            return runners.describe_live(resource, self.lifecycle)
        except (ResourceNotFound, FileNotFoundError):
            return {}


# -- how each kind reads -------------------------------------------------------------------------
EXIT_MESSAGE_CHARS = 60
"""How much of an ExitMessage a table shows (describe has all of it)."""


def _seconds_between(described: Mapping[str, Any], start: str, end: str) -> str:
    started, ended = described.get(start), described.get(end)
    if started is None or ended is None:
        return ""
    return f" after {max(0, round((ended - started).total_seconds()))} s"


def _training_outcome(described: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``Training job NAME: Completed (Completed) after 3 s`` and the model's URI."""
    status = described["TrainingJobStatus"]
    seconds = described.get("TrainingTimeInSeconds")
    secondary = described.get("SecondaryStatus")
    line = f"Training job {described['TrainingJobName']}: {status}"
    if secondary and secondary != status:  # Stopped (MaxRuntimeExceeded), Failed (Interrupted)
        line += f" ({secondary})"
    if seconds is not None:
        line += f" after {seconds} s"
        if described.get("EnableManagedSpotTraining"):
            line += f", billable {described.get('BillableTimeInSeconds')} s"
    details = []
    if status != "Failed" and described.get("ModelArtifacts"):
        details.append(f"Model artifacts: {described['ModelArtifacts']['S3ModelArtifacts']}")
    return line, details


def _processing_outcome(described: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``Processing job NAME: Completed after 3 s``, then its ExitMessage and, once Completed,
    where each output was uploaded. A job stopped by its MaxRuntimeInSeconds says so (the
    service puts that in FailureReason of a Stopped job)."""
    status = described["ProcessingJobStatus"]
    line = f"Processing job {described['ProcessingJobName']}: {status}"
    if status == "Stopped" and described.get("FailureReason"):
        line += f" ({described['FailureReason']})"
    line += _seconds_between(described, "ProcessingStartTime", "ProcessingEndTime")
    details = []
    if described.get("ExitMessage"):
        details.append(f"ExitMessage: {described['ExitMessage']}")
    if status == "Completed":
        for output in (described.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            if output.get("S3Output"):
                details.append(f"Output {output['OutputName']}: {output['S3Output']['S3Uri']}")
    return line, details


def _transform_outcome(described: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``Transform job NAME: Completed after 3 s`` and where its output went."""
    status = described["TransformJobStatus"]
    line = f"Transform job {described['TransformJobName']}: {status}"
    line += _seconds_between(described, "TransformStartTime", "TransformEndTime")
    details = []
    if status == "Completed":
        details.append(f"Output: {described['TransformOutput']['S3OutputPath']}")
    return line, details


def _endpoint_outcome(described: Mapping[str, Any]) -> tuple[str, list[str]]:
    return f"Endpoint {described['EndpointName']}: {described['EndpointStatus']}", []


def _exit_message(described: Mapping[str, Any]) -> str:
    text = one_line(described.get("ExitMessage") or "") or "-"
    return text if len(text) <= EXIT_MESSAGE_CHARS else text[:EXIT_MESSAGE_CHARS - 3] + "..."


def router_url(described: Mapping[str, Any]) -> str:
    """Where an endpoint takes invocations, while it can (``-`` otherwise: a Failed endpoint's
    port is no longer its)."""
    from local_mode.loopback import LOOPBACK

    port = described.get("RouterPort")
    if not port or described.get("EndpointStatus") not in ("InService", "Updating"):
        return "-"
    return f"http://{LOOPBACK}:{port}/invocations"


def healthy_instances(described: Mapping[str, Any]) -> str:
    instances = described.get("Instances") or []
    return f"{sum(1 for i in instances if i.get('Healthy'))}/{len(instances)}"


def _variant_models(described: Mapping[str, Any]) -> str:
    return ",".join(v.get("ModelName", "") for v in described.get("ProductionVariants") or [])


def _model_image(described: Mapping[str, Any]) -> str:
    container: Mapping[str, Any] = described.get("PrimaryContainer") or \
        next(iter(described.get("Containers") or []), {})
    return str(container.get("Image") or "-")


def _backend(described: Mapping[str, Any]) -> str:
    return str(described.get("Backend") or "-")


TRAINING_JOBS = ResourceKind(
    "training-jobs", "training job", "TrainingJob", "TrainingJobSummaries", "TRAINING",
    "TrainingEndTime", _training_outcome, columns=(("BACKEND", _backend),),
    statuses=(*JOB_STATUSES, "Deleting"), stoppable=True, host_log=True)
PROCESSING_JOBS = ResourceKind(
    "processing-jobs", "processing job", "ProcessingJob", "ProcessingJobSummaries", "PROCESSING",
    "ProcessingEndTime", _processing_outcome,
    columns=(("BACKEND", _backend), ("EXIT MESSAGE", _exit_message)), statuses=JOB_STATUSES,
    stoppable=True, host_log=True)
TRANSFORM_JOBS = ResourceKind(
    "transform-jobs", "transform job", "TransformJob", "TransformJobSummaries", "TRANSFORM",
    "TransformEndTime", _transform_outcome,
    columns=(("BACKEND", _backend), ("MODEL", lambda d: str(d.get("ModelName", "")))),
    statuses=JOB_STATUSES, stoppable=True)
ENDPOINTS = ResourceKind(
    "endpoints", "endpoint", "Endpoint", "Endpoints", "ENDPOINTS", None, _endpoint_outcome,
    columns=(("BACKEND", _backend), ("HEALTHY", healthy_instances),
             ("CONFIG", lambda d: str(d.get("EndpointConfigName", ""))), ("URL", router_url)),
    statuses=ENDPOINT_STATUSES)
ENDPOINT_CONFIGS = ResourceKind(
    "endpoint-configs", "endpoint config", "EndpointConfig", "EndpointConfigs",
    columns=(("MODELS", _variant_models),))
MODELS = ResourceKind("models", "model", "Model", "Models", columns=(("IMAGE", _model_image),))

KINDS = (TRAINING_JOBS, PROCESSING_JOBS, TRANSFORM_JOBS, ENDPOINTS, ENDPOINT_CONFIGS, MODELS)
"""Every kind, in the order ``ps`` and ``prune`` show them."""
BY_COMMAND: Mapping[str, ResourceKind] = {kind.command: kind for kind in KINDS}
"""Each kind by its command group (the state store's kind)."""


def in_words(kind: str, name: str | None = None) -> str:
    """``training-jobs`` as a user reads it (``training job``, with ``name`` after it if
    given); ``container`` and ``network`` as they are."""
    noun = BY_COMMAND[kind].what if kind in BY_COMMAND else kind
    return noun if name is None else f"{noun} {name}"

__all__ = ["BY_COMMAND", "ENDPOINTS", "ENDPOINT_CONFIGS", "ENDPOINT_STATUSES", "JOB_STATUSES", "KINDS", "MODELS",
           "PROCESSING_JOBS", "TRAINING_JOBS", "TRANSFORM_JOBS", "Column", "Outcome",
           "ResourceKind", "healthy_instances", "in_words", "router_url"]
