"""Day-two housekeeping of a state directory: what runs now, removing one resource of any kind,
and pruning what is over -- ended jobs, orphaned models and endpoint configs, and containers or
networks that outlived their owner.

The service has no such operations (a job cannot be deleted there, only forgotten after some
time), so they are local mode's own and live beside the client rather than in it. Everything here
goes through the local ``sagemaker`` client for what the service does (DeleteEndpoint,
DeleteModel, StopTrainingJob, ...) and through the state store only for what it cannot (forgetting
an ended job).

``deploy`` (``optml local deploy``) creates a model and an endpoint config for its endpoint and
tags them with :data:`DEPLOYED_FOR` so that deleting the endpoint deletes them too, and a model a
user created and named the same way is never taken for one of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from local_mode import runners
from local_mode.errors import ResourceNotFound, ValidationException

if TYPE_CHECKING:
    from local_mode.sagemaker import SageMakerClient
    from local_mode.state import ResourceDir

DEPLOYED_FOR = "optml:deployed-for"
"""The tag ``deploy`` puts on the model and endpoint config it creates: the endpoint's name."""

JOB_LIFECYCLES = (runners.TRAINING, runners.PROCESSING, runners.TRANSFORM)
"""The kinds of job: each ends, and an ended one can be forgotten."""
END_TIME = {"training-jobs": "TrainingEndTime", "processing-jobs": "ProcessingEndTime",
            "transform-jobs": "TransformEndTime"}
"""The member that says when a job of the kind ended."""
STOP_WAIT_SECONDS = 120.0
"""How long ``remove(..., force=True)`` waits for a running job it stopped to end."""
POLL_SECONDS = 0.05


class StillRunning(ValidationException):
    """A job cannot be removed while it runs (stop it first, or remove it with force)."""


@dataclass(frozen=True)
class Removal:
    """One thing :func:`prune` removes (or, on a dry run, would remove), and why."""

    kind: str
    """The state store's kind (``training-jobs``), or ``container`` / ``network``."""
    name: str
    why: str


# -- what runs -----------------------------------------------------------------------------------
def running(client: SageMakerClient) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every job that has not ended and every endpoint, as ``(kind, description)``: the stored
    description (with local mode's own ``Backend``, ``RouterPort`` and ``Instances``), checked
    against its runner as Describe does, so a runner that died shows as Failed and is left out."""
    for lifecycle in (*JOB_LIFECYCLES, runners.ENDPOINTS):
        for resource in client.store.list(lifecycle.kind):
            try:
                description = runners.describe_live(resource, lifecycle)
            except FileNotFoundError:  # removed meanwhile
                continue
            if lifecycle is runners.ENDPOINTS:
                if description["EndpointStatus"] not in ("Failed", "Deleting"):
                    yield lifecycle.kind, description
            elif not lifecycle.settled(description):
                yield lifecycle.kind, description


# -- removing one resource -----------------------------------------------------------------------
def remove(client: SageMakerClient, kind: str, name: str, *, force: bool = False) -> list[str]:
    """Remove ``name`` of ``kind``; returns what was removed (``"model m"``, ...).

    Jobs: an ended job is forgotten (its state directory with its logs goes; DeleteTrainingJob
    for a training job); a running one is refused with :class:`StillRunning` unless ``force``,
    which stops it and waits for it to end first. Endpoints: DeleteEndpoint, then the model and endpoint config ``deploy`` made for it.
    Models and endpoint configs: DeleteModel / DeleteEndpointConfig, as the service does them.
    """
    if kind == "endpoints":
        return delete_endpoint(client, name)
    if kind == "models":
        client.delete_model(ModelName=name)
        return [f"model {name}"]
    if kind == "endpoint-configs":
        client.delete_endpoint_config(EndpointConfigName=name)
        return [f"endpoint config {name}"]
    lifecycle = _job_lifecycle(kind)
    resource = _job(client, lifecycle, name)
    if not runners.ended(resource, lifecycle):
        status = runners.describe_live(resource, lifecycle)[lifecycle.status_field]
        if not force:
            raise StillRunning(f"{lifecycle.what} {name} is {status}: stop it first, or remove "
                               "it with --force (which stops it)")
        _stop_and_wait(client, resource, lifecycle)
    _forget(client, lifecycle, resource)
    return [f"{lifecycle.what} {name}"]


def delete_endpoint(client: SageMakerClient, name: str, *, keep_model: bool = False) -> list[str]:
    """DeleteEndpoint, then (unless ``keep_model``) the endpoint config and model that ``deploy``
    created for it, when no other endpoint uses them; returns what was removed."""
    config_name = client.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    client.delete_endpoint(EndpointName=name)
    removed = [f"endpoint {name}"]
    if keep_model:
        return removed
    return removed + _delete_deployed(client, name, config_name)


def deployed_tags(endpoint: str) -> list[dict[str, str]]:
    """The tags ``deploy`` gives the model and endpoint config it creates for ``endpoint``."""
    return [{"Key": DEPLOYED_FOR, "Value": endpoint}]


def deployed_for(client: SageMakerClient, kind: str, name: str) -> str | None:
    """The endpoint ``deploy`` created model or endpoint config ``name`` for (None: a user's)."""
    try:
        resource = client.store.get(kind, name)
    except ResourceNotFound:
        return None
    description, request = resource.describe(), resource.request()
    tags = description.get("Tags", request.get("Tags") or [])
    return next((t.get("Value") for t in tags if t.get("Key") == DEPLOYED_FOR), None)


def _delete_deployed(client: SageMakerClient, endpoint: str, config_name: str) -> list[str]:
    removed = []
    in_use = _configs_in_use(client)
    if deployed_for(client, "endpoint-configs", config_name) == endpoint and \
            config_name not in in_use:
        models = [v["ModelName"] for v in _variants(client.store.get("endpoint-configs",
                                                                     config_name).describe())]
        client.delete_endpoint_config(EndpointConfigName=config_name)
        removed.append(f"endpoint config {config_name}")
        used = _models_in_use(client)
        for model in models:
            if deployed_for(client, "models", model) == endpoint and model not in used:
                client.delete_model(ModelName=model)
                removed.append(f"model {model}")
    return removed


def _stop_and_wait(client: SageMakerClient, resource: ResourceDir,
                   lifecycle: runners.Lifecycle) -> None:
    description = runners.describe_live(resource, lifecycle)
    if not lifecycle.settled(description) and description[lifecycle.status_field] != "Stopping":
        getattr(client, f"stop_{_operation(lifecycle.kind)}")(
            **{lifecycle.status_field.replace("Status", "Name"): resource.name})
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while not runners.ended(resource, lifecycle):
        if time.monotonic() > deadline:
            raise StillRunning(f"{lifecycle.what} {resource.name} did not stop within "
                               f"{STOP_WAIT_SECONDS:.0f} s")
        time.sleep(POLL_SECONDS)


def _forget(client: SageMakerClient, lifecycle: runners.Lifecycle, resource: ResourceDir) -> None:
    """Forget an ended job: its containers and network should anything of them be left (a runner
    killed before its clean-up), then its state directory."""
    sweep_leftovers(client, owners={(lifecycle.kind, resource.name)})
    if lifecycle is runners.TRAINING:  # the one kind of job the service can delete
        client.delete_training_job(TrainingJobName=resource.name)
    else:
        client.store.delete(lifecycle.kind, resource.name)


# -- pruning -------------------------------------------------------------------------------------
def prune(client: SageMakerClient, older_than: timedelta, *, dry_run: bool = False,
          at: datetime | None = None) -> list[Removal]:
    """Remove what is over: jobs that ended more than ``older_than`` ago, Failed endpoints, then
    endpoint configs no endpoint uses and models no endpoint config or running transform job
    uses (both created more than ``older_than`` ago), then containers and networks of this state
    directory whose owner is gone or over. Returns what was (``dry_run``: would be) removed."""
    cutoff = (at or datetime.now(timezone.utc)) - older_than
    plan: list[Removal] = []
    for lifecycle in JOB_LIFECYCLES:
        for resource in client.store.list(lifecycle.kind):
            description = runners.describe_live(resource, lifecycle)
            ended_at = description.get(END_TIME[lifecycle.kind]) or \
                description.get("LastModifiedTime") or description["CreationTime"]
            if runners.ended(resource, lifecycle) and ended_at <= cutoff:
                plan.append(Removal(lifecycle.kind, resource.name,
                                    f"{description[lifecycle.status_field]} "
                                    f"{age(ended_at, at)} ago"))
    for resource in client.store.list("endpoints"):
        description = runners.describe_live(resource, runners.ENDPOINTS)
        if description["EndpointStatus"] == "Failed" and runners.ended(resource,
                                                                        runners.ENDPOINTS) \
                and description.get("LastModifiedTime", description["CreationTime"]) <= cutoff:
            plan.append(Removal("endpoints", resource.name, "Failed"))
    gone = {(r.kind, r.name) for r in plan}
    configs_used = _configs_in_use(client, ignore=gone)
    for resource in client.store.list("endpoint-configs"):
        if resource.name not in configs_used and resource.describe()["CreationTime"] <= cutoff:
            plan.append(Removal("endpoint-configs", resource.name, "no endpoint uses it"))
    gone = {(r.kind, r.name) for r in plan}
    models_used = _models_in_use(client, ignore=gone)
    for resource in client.store.list("models"):
        if resource.name not in models_used and resource.describe()["CreationTime"] <= cutoff:
            plan.append(Removal("models", resource.name,
                                "no endpoint config or running transform job uses it"))
    if not dry_run:
        for removal in plan:
            _remove_pruned(client, removal)
    gone = {(r.kind, r.name) for r in plan}
    plan.extend(sweep_leftovers(client, gone=gone, dry_run=dry_run))
    return plan


def _remove_pruned(client: SageMakerClient, removal: Removal) -> None:
    try:
        if removal.kind == "endpoints":
            client.delete_endpoint(EndpointName=removal.name)
        elif removal.kind in END_TIME:
            lifecycle = _job_lifecycle(removal.kind)
            _forget(client, lifecycle, client.store.get(removal.kind, removal.name))
        else:
            remove(client, removal.kind, removal.name)
    except (ResourceNotFound, ValidationException):
        pass  # removed meanwhile (by another prune, a user): what was asked is done


def age(then: datetime, at: datetime | None = None) -> str:
    """How long ago ``then`` was, as ``ps`` and ``prune`` say it: ``42s``, ``5m``, ``3h``,
    ``2d``."""
    seconds = max(0, int(((at or datetime.now(timezone.utc)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# -- containers and networks ---------------------------------------------------------------------
OWNER_LABELS = {"optml.endpoint": "endpoints", "optml.transform": "transform-jobs"}
"""Serving containers' owner labels and the kind they name (jobs carry optml.job + optml.kind)."""


def sweep_leftovers(client: SageMakerClient, *, owners: set[tuple[str, str]] | None = None,
                    gone: set[tuple[str, str]] | None = None,
                    dry_run: bool = False) -> list[Removal]:
    """Remove the containers and networks of this state directory (label ``optml.state``) whose
    owner is not running: only those of ``owners`` when given, else every one whose owner is in
    ``gone``, unknown to the store, or over. Nothing when no Docker engine answers."""
    from local_mode.docker_engine import STATE_LABEL, DockerUnavailable, connect, ignore_missing

    try:
        engine = connect(timeout=30)
    except DockerUnavailable:
        return []
    removals = []
    try:
        selector = {"label": [f"{STATE_LABEL}={client.store.root}"]}
        containers = engine.containers.list(all=True, sparse=True, filters=selector)
        networks = engine.networks.list(filters=selector)
        for item, what in [*((c, "container") for c in containers),
                           *((n, "network") for n in networks)]:
            owner = _owner(item.attrs.get("Labels") or {})
            if owner is None:
                continue
            if owners is not None:
                leftover = owner in owners
            else:
                leftover = owner in (gone or set()) or not _owner_live(client, owner)
            if not leftover:
                continue
            name = str(item.attrs.get("Names", [item.attrs.get("Name", "")])[0]).lstrip("/") \
                if what == "container" else str(item.attrs.get("Name", ""))
            removals.append(Removal(what, name or str(item.id)[:12],
                                    f"left by {owner[0][:-1].replace('-', ' ')} {owner[1]}"))
            if not dry_run:
                if what == "container":
                    ignore_missing(item.remove, force=True, v=True)
                else:
                    ignore_missing(item.remove)
    finally:
        engine.close()
    return removals


def _owner(labels: Mapping[str, str]) -> tuple[str, str] | None:
    from local_mode.docker_engine import JOB_LABEL, KIND_LABEL

    if labels.get(JOB_LABEL) and labels.get(KIND_LABEL):
        return f"{labels[KIND_LABEL]}s", labels[JOB_LABEL]
    for label, kind in OWNER_LABELS.items():
        if labels.get(label):
            return kind, labels[label]
    return None


def _owner_live(client: SageMakerClient, owner: tuple[str, str]) -> bool:
    kind, name = owner
    lifecycle = runners.ENDPOINTS if kind == "endpoints" else _job_lifecycle(kind)
    try:
        resource = client.store.get(kind, name)
    except (ResourceNotFound, ValueError):
        return False
    return not runners.ended(resource, lifecycle) or (
        kind == "endpoints" and resource.describe()["EndpointStatus"] != "Failed")


# -- helpers -------------------------------------------------------------------------------------
def _job_lifecycle(kind: str) -> runners.Lifecycle:
    for lifecycle in JOB_LIFECYCLES:
        if lifecycle.kind == kind:
            return lifecycle
    raise ValueError(f"unknown job kind {kind!r}")


def _operation(kind: str) -> str:
    """``training-jobs`` -> ``training_job`` (the client's method suffix)."""
    return kind[:-1].replace("-", "_")


def _job(client: SageMakerClient, lifecycle: runners.Lifecycle, name: str) -> ResourceDir:
    try:
        return client.store.get(lifecycle.kind, name)
    except ResourceNotFound:
        from local_mode.api.base import NOT_FOUND

        raise ValidationException(NOT_FOUND[lifecycle.kind].format(name=name)) from None


def _variants(config: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    return [*(config.get("ProductionVariants") or []),
            *(config.get("ShadowProductionVariants") or [])]


def _configs_in_use(client: SageMakerClient,
                    ignore: set[tuple[str, str]] | None = None) -> set[str]:
    """Endpoint configs an endpoint (not in ``ignore``) runs or is being updated to."""
    used: set[str] = set()
    for resource in client.store.list("endpoints"):
        if ("endpoints", resource.name) in (ignore or set()):
            continue
        description = resource.describe()
        used.update(filter(None, (description.get("EndpointConfigName"),
                                  description.get("PendingEndpointConfigName"))))
    return used


def _models_in_use(client: SageMakerClient,
                   ignore: set[tuple[str, str]] | None = None) -> set[str]:
    """Models an endpoint config (not in ``ignore``) or a transform job that has not ended uses."""
    used: set[str] = set()
    for resource in client.store.list("endpoint-configs"):
        if ("endpoint-configs", resource.name) not in (ignore or set()):
            used.update(v["ModelName"] for v in _variants(resource.describe())
                        if v.get("ModelName"))
    for resource in client.store.list("transform-jobs"):
        if ("transform-jobs", resource.name) not in (ignore or set()) and \
                not runners.ended(resource, runners.TRANSFORM):
            used.add(resource.describe().get("ModelName", ""))
    return used


__all__ = ["DEPLOYED_FOR", "JOB_LIFECYCLES", "Removal", "StillRunning", "age", "delete_endpoint",
           "deployed_for", "deployed_tags", "prune", "remove", "running", "sweep_leftovers"]
