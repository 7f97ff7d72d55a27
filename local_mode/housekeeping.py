"""Day-two housekeeping of a state directory: what runs now, removing one resource of any kind,
and pruning what is over -- ended jobs, orphaned models and endpoint configs, and containers or
networks that outlived their owner.

Forgetting a processing or transform job, pruning and sweeping leftovers are local mode's own (the
service has no such operations); everything the service does is done through the local
``sagemaker`` client (DeleteEndpoint, DeleteModel, DeleteTrainingJob, StopTrainingJob, ...), so
the rules and errors are the service's.

``deploy`` (``optml local deploy``) creates a model and an endpoint config for its endpoint and
tags them with :data:`DEPLOYED_FOR`, so that deleting the endpoint deletes them too, and a model a
user created is never taken for one of them.

Pruning is two steps, :func:`plan_prune` and :func:`apply_prune`, so what a user confirmed is
exactly what goes: each planned item is checked again as it is removed (a job of the same name
created meanwhile, a model that something started to use, is left alone).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from local_mode import runners
from local_mode.errors import ResourceInUse, ResourceNotFound, ValidationException

if TYPE_CHECKING:
    from local_mode.sagemaker import SageMakerClient
    from local_mode.state import ResourceDir, StateStore

DEPLOYED_FOR = "optml:deployed-for"
"""The tag ``deploy`` puts on the model and endpoint config it creates: the endpoint's name."""

JOB_LIFECYCLES = (runners.TRAINING, runners.PROCESSING, runners.TRANSFORM)
"""The kinds of job: each ends, and an ended one can be forgotten."""
LIFECYCLES = {lifecycle.kind: lifecycle for lifecycle in (*JOB_LIFECYCLES, runners.ENDPOINTS)}
STOP_MARGIN_SECONDS = 60.0
"""How long past the stop grace (SIGTERM to SIGKILL) ``remove(force=True)`` waits for a stopped
job's runner to upload what it must and exit."""
POLL_SECONDS = 0.05
SWEEP_CONNECT_SECONDS = 10.0
"""How long to wait for a Docker engine to answer before sweeping without it."""
OVER = frozenset({"Failed", "Deleting"})
"""Endpoint statuses in which nothing of it serves any more (its runner is gone or going)."""


class StillRunning(ValidationException):
    """A job cannot be removed while it runs (stop it first, or remove it with force)."""


@dataclass(frozen=True)
class Removal:
    """One thing pruning removes (or, on a dry run, would remove), and why."""

    kind: str
    """The state store's kind (``training-jobs``), or ``container`` / ``network``."""
    name: str
    why: str
    ident: str = ""
    """A record's CreationTime (ISO) or a container's or network's id: what apply checks is
    still the thing planned."""


def age(then: datetime, at: datetime | None = None) -> str:
    """How long ago ``then`` was, as ``ps`` and ``prune`` say it: ``42s``, ``5m``, ``3h``,
    ``2d``."""
    seconds = max(0, int(((at or datetime.now(timezone.utc)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def endpoint_over(description: Mapping[str, Any]) -> bool:
    """Whether nothing of the endpoint serves any more (Failed, or being deleted)."""
    return description.get("EndpointStatus") in OVER


def _described(store: StateStore,
               lifecycle: runners.Lifecycle) -> Iterator[tuple[ResourceDir, dict[str, Any]]]:
    """Each resource of the kind with its description checked against its runner; one removed
    meanwhile (a concurrent rm or prune) is skipped."""
    for resource in store.list(lifecycle.kind):
        try:
            yield resource, runners.describe_live(resource, lifecycle)
        except (FileNotFoundError, ResourceNotFound):
            continue


# -- what runs -----------------------------------------------------------------------------------
def running(store: StateStore) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every job that has not ended and every endpoint that still serves, as ``(kind,
    description)``: the stored description (with local mode's own ``Backend``, ``RouterPort``
    and ``Instances``), checked against its runner as Describe does, so a runner that died
    shows as Failed and is left out."""
    for lifecycle in (*JOB_LIFECYCLES, runners.ENDPOINTS):
        for _, description in _described(store, lifecycle):
            if lifecycle is runners.ENDPOINTS:
                if not endpoint_over(description):
                    yield lifecycle.kind, description
            elif not lifecycle.settled(description):
                yield lifecycle.kind, description


# -- removing one resource -----------------------------------------------------------------------
def remove(client: SageMakerClient, kind: str, name: str, *, force: bool = False,
           on_status: Callable[[str], None] = lambda status: None) -> list[tuple[str, str]]:
    """Remove ``name`` of ``kind``; returns what was removed, as ``(kind, name)``.

    Jobs: an ended job is forgotten (DeleteTrainingJob for a training job; its state directory
    with its logs for the others); a running one is refused with :class:`StillRunning` unless
    ``force``, which stops it and waits for it to end first (``on_status`` hears each status
    seen meanwhile). Endpoints: :func:`delete_endpoint`. Models and endpoint configs: DeleteModel
    / DeleteEndpointConfig, as the service does them.
    """
    if kind == "endpoints":
        return delete_endpoint(client, name)
    if kind == "models":
        client.delete_model(ModelName=name)
        return [(kind, name)]
    if kind == "endpoint-configs":
        client.delete_endpoint_config(EndpointConfigName=name)
        return [(kind, name)]
    lifecycle = _job_lifecycle(kind)
    resource = client._resource(lifecycle.kind, name)  # the service's not-found error
    if not runners.ended(resource, lifecycle):
        status = runners.describe_live(resource, lifecycle)[lifecycle.status_field]
        if not force:
            raise StillRunning(f"{lifecycle.noun} {name} is {status}: stop it first, or remove "
                               "it with --force (which stops it)")
        stop_and_wait(client, lifecycle, name, on_status=on_status)
    _forget(client, lifecycle, resource)
    return [(kind, name)]


def stop_and_wait(client: SageMakerClient, lifecycle: runners.Lifecycle, name: str, *,
                  on_status: Callable[[str], None] = lambda status: None,
                  timeout: float | None = None) -> dict[str, Any]:
    """Stop the job (unless it is stopping or has ended meanwhile) and wait until its runner has
    exited; its last description. ``timeout`` defaults to the stop grace plus
    :data:`STOP_MARGIN_SECONDS`."""
    resource = client._resource(lifecycle.kind, name)  # the service's not-found error
    with contextlib.suppress(ValidationException):  # it has ended already: what stop was for
        getattr(client, f"stop_{_operation(lifecycle.kind)}")(**{lifecycle.name_field: name})
    limit = timeout if timeout is not None else \
        client.settings.local.stop_grace_seconds + STOP_MARGIN_SECONDS
    deadline = time.monotonic() + limit
    while True:
        description = runners.describe_live(resource, lifecycle)
        on_status(description[lifecycle.status_field])
        if runners.ended(resource, lifecycle):
            return description
        if time.monotonic() > deadline:
            raise StillRunning(f"{lifecycle.noun} {name} did not stop within {limit:.0f} s")
        time.sleep(POLL_SECONDS)


def delete_endpoint(client: SageMakerClient, name: str, *,
                    keep_model: bool = False) -> list[tuple[str, str]]:
    """DeleteEndpoint, then (unless ``keep_model``) the endpoint config and model that ``deploy``
    created for it, when nothing else uses them; returns what was removed."""
    config_name = client.describe_endpoint(EndpointName=name)["EndpointConfigName"]
    client.delete_endpoint(EndpointName=name)
    removed = [("endpoints", name)]
    if keep_model:
        return removed
    if deployed_for(client, "endpoint-configs", config_name) == name and \
            not users_of(client, "endpoint-configs", config_name):
        models = [v["ModelName"] for v in _variants(client.store.get("endpoint-configs",
                                                                     config_name).describe())]
        client.delete_endpoint_config(EndpointConfigName=config_name)
        removed.append(("endpoint-configs", config_name))
        for model in models:
            if deployed_for(client, "models", model) == name and \
                    not users_of(client, "models", model):
                client.delete_model(ModelName=model)
                removed.append(("models", model))
    return removed


def release_deployed(client: SageMakerClient, endpoint: str) -> list[tuple[str, str]]:
    """Before ``deploy`` makes them again: delete the endpoint config and model called
    ``endpoint`` that an earlier deploy of it left (an interrupted one, or kept with
    ``keep_model``). One that something still uses is :class:`ResourceInUse`, naming the user;
    one a user made is left for Create to refuse."""
    removed = []
    for kind in ("endpoint-configs", "models"):
        if deployed_for(client, kind, endpoint) != endpoint:
            continue
        users = users_of(client, kind, endpoint)
        if users:
            raise ResourceInUse(f"{kind[:-1].replace('-', ' ')} {endpoint!r}, made by an "
                                f"earlier deploy of {endpoint}, is used by {', '.join(users)}")
        if kind == "endpoint-configs":
            client.delete_endpoint_config(EndpointConfigName=endpoint)
        else:
            client.delete_model(ModelName=endpoint)
        removed.append((kind, endpoint))
    return removed


def deployed_tags(endpoint: str) -> list[dict[str, str]]:
    """The tags ``deploy`` gives the model and endpoint config it creates for ``endpoint``."""
    return [{"Key": DEPLOYED_FOR, "Value": endpoint}]


def deployed_for(client: SageMakerClient, kind: str, name: str) -> str | None:
    """The endpoint ``deploy`` created model or endpoint config ``name`` for (None: a user's,
    or no such one)."""
    try:
        resource = client.store.get(kind, name)
        description, request = resource.describe(), resource.request()
    except (ResourceNotFound, FileNotFoundError):
        return None
    tags = description.get("Tags", request.get("Tags") or [])
    return next((t.get("Value") for t in tags if t.get("Key") == DEPLOYED_FOR), None)


def users_of(client: SageMakerClient, kind: str, name: str,
             ignore: Iterable[tuple[str, str]] = ()) -> list[str]:
    """What uses endpoint config or model ``name`` (``endpoint e``, ``endpoint config c``,
    ``transform job t``), leaving out what ``ignore`` names."""
    skip = set(ignore)
    users = []
    if kind == "endpoint-configs":
        for resource, description in client.store.descriptions("endpoints"):
            if ("endpoints", resource.name) not in skip and name in (
                    description.get("EndpointConfigName"),
                    description.get("PendingEndpointConfigName")):
                users.append(f"endpoint {resource.name}")
        return users
    for resource, description in client.store.descriptions("endpoint-configs"):
        if ("endpoint-configs", resource.name) not in skip and \
                any(v.get("ModelName") == name for v in _variants(description)):
            users.append(f"endpoint config {resource.name}")
    for resource, description in _described(client.store, runners.TRANSFORM):
        if ("transform-jobs", resource.name) not in skip and \
                description.get("ModelName") == name and \
                not runners.ended(resource, runners.TRANSFORM):
            users.append(f"transform job {resource.name}")
    return users


def _forget(client: SageMakerClient, lifecycle: runners.Lifecycle, resource: ResourceDir,
            description: Mapping[str, Any] | None = None) -> None:
    """Forget an ended job: its containers and network should anything of them be left (a runner
    killed before its clean-up; only a job that ran on Docker can have any), then its record."""
    described = description or resource.describe()
    if described.get("Backend") == "docker":
        remove_leftovers(client, find_leftovers(client, owners={(lifecycle.kind,
                                                                 resource.name)}))
    if lifecycle is runners.TRAINING:  # the one kind of job the service can delete
        client.delete_training_job(TrainingJobName=resource.name)
    else:
        client.store.delete(lifecycle.kind, resource.name)


# -- pruning -------------------------------------------------------------------------------------
def plan_prune(client: SageMakerClient, older_than: timedelta, *, everything: bool = False,
               at: datetime | None = None) -> list[Removal]:
    """What is over: jobs that ended more than ``older_than`` ago, Failed endpoints, then the
    endpoint configs and models ``deploy`` made that nothing uses any more (with
    ``everything``: any endpoint config or model nothing uses), created more than ``older_than``
    ago, then containers and networks of this state directory whose owner is gone or over."""
    now = at or datetime.now(timezone.utc)
    cutoff = now - older_than
    plan: list[Removal] = []
    for lifecycle in JOB_LIFECYCLES:
        for resource, description in _described(client.store, lifecycle):
            ended_at = description.get(lifecycle.end_field or "") or \
                description.get("LastModifiedTime") or description["CreationTime"]
            if ended_at <= cutoff and runners.ended(resource, lifecycle):
                plan.append(Removal(lifecycle.kind, resource.name,
                                    f"{description[lifecycle.status_field]} "
                                    f"{age(ended_at, now)} ago",
                                    description["CreationTime"].isoformat()))
    for resource, description in _described(client.store, runners.ENDPOINTS):
        changed = description.get("LastModifiedTime") or description["CreationTime"]
        if description["EndpointStatus"] == "Failed" and changed <= cutoff and \
                runners.ended(resource, runners.ENDPOINTS):
            plan.append(Removal("endpoints", resource.name, "Failed",
                                description["CreationTime"].isoformat()))
    for kind in ("endpoint-configs", "models"):
        gone = {(r.kind, r.name) for r in plan}
        for resource, description in client.store.descriptions(kind):
            made_by = deployed_for(client, kind, resource.name)
            if description["CreationTime"] > cutoff or not (everything or made_by) or \
                    users_of(client, kind, resource.name, ignore=gone):
                continue
            why = "nothing uses it" + (f" (made by deploy {made_by})" if made_by else "")
            plan.append(Removal(kind, resource.name, why,
                                description["CreationTime"].isoformat()))
    plan.extend(find_leftovers(client, gone={(r.kind, r.name) for r in plan}))
    return plan


def apply_prune(client: SageMakerClient, plan: Iterable[Removal]) -> list[Removal]:
    """Remove what ``plan`` names, each checked again first: a record must be the one planned
    (same CreationTime) and still over, a model or config still unused, a container's owner
    still gone. Returns what was removed."""
    done: list[Removal] = []
    leftovers = []
    for removal in plan:
        if removal.kind in ("container", "network"):
            leftovers.append(removal)
        elif _remove_planned(client, removal, {(r.kind, r.name) for r in done}):
            done.append(removal)
    return done + remove_leftovers(client, leftovers, recheck=True)


def _remove_planned(client: SageMakerClient, removal: Removal,
                    gone: set[tuple[str, str]]) -> bool:
    try:
        resource = client.store.get(removal.kind, removal.name)
        description = resource.describe()
        if description["CreationTime"].isoformat() != removal.ident:
            return False  # another resource of that name now
        if removal.kind in LIFECYCLES:
            lifecycle = LIFECYCLES[removal.kind]
            description = runners.describe_live(resource, lifecycle)
            if not runners.ended(resource, lifecycle):
                return False
            if lifecycle is runners.ENDPOINTS:
                if description["EndpointStatus"] != "Failed":
                    return False
                client.delete_endpoint(EndpointName=removal.name)
            else:
                _forget(client, lifecycle, resource, description)
        elif users_of(client, removal.kind, removal.name, ignore=gone):
            return False
        elif removal.kind == "models":
            client.delete_model(ModelName=removal.name)
        else:
            client.delete_endpoint_config(EndpointConfigName=removal.name)
    except (ResourceNotFound, ValidationException, FileNotFoundError):
        return False  # removed meanwhile (by another prune, a user): nothing left to do
    return True


# -- containers and networks ---------------------------------------------------------------------
OWNER_LABELS = {"optml.endpoint": "endpoints", "optml.transform": "transform-jobs"}
"""Serving containers' owner labels and the kind they name (jobs carry optml.job + optml.kind)."""


def find_leftovers(client: SageMakerClient, *, owners: set[tuple[str, str]] | None = None,
                   gone: set[tuple[str, str]] | None = None) -> list[Removal]:
    """The containers and networks of this state directory (label ``optml.state``) whose owner
    does not run: only those of ``owners`` when given, else every one whose owner is in
    ``gone``, unknown to the store, or over. Those of ``optml check`` runs are never taken.
    Nothing when no Docker engine answers."""
    from local_mode.docker_engine import STATE_LABEL, DockerUnavailable, connect

    try:
        engine = connect(timeout=SWEEP_CONNECT_SECONDS)
    except DockerUnavailable:
        return []
    found = []
    try:
        selector = {"label": [f"{STATE_LABEL}={client.store.root}"]}
        items = [*((c, "container") for c in engine.containers.list(all=True, sparse=True,
                                                                    filters=selector)),
                 *((n, "network") for n in engine.networks.list(filters=selector))]
    finally:
        engine.close()
    for item, what in items:
        owner = _owner(item.attrs.get("Labels") or {})
        if owner is None:
            continue
        if owners is not None:
            leftover = owner in owners
        else:
            leftover = owner in (gone or set()) or not _owner_live(client, owner)
        if leftover:
            names = item.attrs.get("Names") or [item.attrs.get("Name") or str(item.id)[:12]]
            found.append(Removal(what, str(names[0]).lstrip("/"),
                                 f"left by {LIFECYCLES[owner[0]].noun} {owner[1]}",
                                 str(item.id)))
    return found


def remove_leftovers(client: SageMakerClient, leftovers: Iterable[Removal], *,
                     recheck: bool = False) -> list[Removal]:
    """Remove the containers (first) and networks ``leftovers`` name, by id; with ``recheck``,
    only those whose owner still does not run. Returns what was removed."""
    from docker.errors import NotFound

    from local_mode.docker_engine import DockerUnavailable, connect, ignore_missing

    todo = sorted(leftovers, key=lambda r: r.kind != "container")
    if not todo:
        return []
    try:
        engine = connect(timeout=SWEEP_CONNECT_SECONDS)
    except DockerUnavailable:
        return []
    done = []
    try:
        for removal in todo:
            collection = engine.containers if removal.kind == "container" else engine.networks
            try:
                item = collection.get(removal.ident)
            except NotFound:  # gone already
                continue
            owner = _owner(item.attrs.get("Config", {}).get("Labels") or
                           item.attrs.get("Labels") or {})
            if recheck and owner is not None and _owner_live(client, owner):
                continue
            if removal.kind == "container":
                ignore_missing(item.remove, force=True, v=True)
            else:
                ignore_missing(item.remove)
            done.append(removal)
    finally:
        engine.close()
    return done


def _owner(labels: Mapping[str, str]) -> tuple[str, str] | None:
    """The resource a container or network belongs to; None for one of an ``optml check`` run
    (it owns its containers itself) or without an owner label."""
    from local_mode.docker_engine import CHECK_LABEL, JOB_LABEL, KIND_LABEL

    if labels.get(CHECK_LABEL):
        return None
    if labels.get(JOB_LABEL) and f"{labels.get(KIND_LABEL)}s" in LIFECYCLES:
        return f"{labels[KIND_LABEL]}s", labels[JOB_LABEL]
    for label, kind in OWNER_LABELS.items():
        if labels.get(label):
            return kind, labels[label]
    return None


def _owner_live(client: SageMakerClient, owner: tuple[str, str]) -> bool:
    kind, name = owner
    lifecycle = LIFECYCLES[kind]
    try:
        resource = client.store.get(kind, name)
        if lifecycle is runners.ENDPOINTS:
            return not endpoint_over(resource.describe()) or \
                not runners.ended(resource, lifecycle)
        return not runners.ended(resource, lifecycle)
    except (ResourceNotFound, FileNotFoundError):
        return False


# -- helpers -------------------------------------------------------------------------------------
def _job_lifecycle(kind: str) -> runners.Lifecycle:
    lifecycle = LIFECYCLES.get(kind)
    if lifecycle is None or lifecycle.end_field is None:
        raise ValueError(f"unknown job kind {kind!r}")
    return lifecycle


def _operation(kind: str) -> str:
    """``training-jobs`` -> ``training_job`` (the client's method suffix)."""
    return kind[:-1].replace("-", "_")


def _variants(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(config.get("ProductionVariants") or []),
            *(config.get("ShadowProductionVariants") or [])]


__all__ = ["DEPLOYED_FOR", "JOB_LIFECYCLES", "LIFECYCLES", "Removal", "StillRunning", "age",
           "apply_prune", "delete_endpoint", "deployed_for", "deployed_tags", "endpoint_over",
           "find_leftovers", "plan_prune", "release_deployed", "remove", "remove_leftovers",
           "running", "stop_and_wait", "users_of"]
