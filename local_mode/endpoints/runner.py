"""The process that owns one local endpoint: ``python -m local_mode.endpoints.runner STATE NAME
BACKEND``, started detached by ``create_endpoint``.

It runs the :class:`~local_mode.endpoints.router.Router` on a free 127.0.0.1 port (recorded as the
endpoint's private ``RouterPort``), starts every instance, and supervises them on one asyncio
loop:

- health: ``GET /ping`` (2 s timeout) every 50 ms until an instance first answers 200, so the
  endpoint is InService a few tens of milliseconds after its slowest container is ready; every
  2 s after that. Three failed checks in a row, or a container process that exits, and the
  instance leaves the rotation at once and a replacement starts on a new port;
- SIGHUP: update to the config in ``PendingEndpointConfigName``, blue/green as the service does
  it: the new fleet starts beside the old one, which keeps all the traffic until every new
  instance is healthy; then traffic moves to the new fleet, the old instances finish their
  in-flight requests and are stopped and removed, and only then is the endpoint ``InService``
  on the new config. If the new fleet cannot be brought up it is removed and the endpoint stays
  ``InService`` on its old config, with the reason in ``FailureReason``. Meanwhile
  ``PendingDeploymentSummary`` describes the new fleet;
- SIGUSR1: apply the capacities and weights UpdateEndpointWeightsAndCapacities recorded;
- once a metric period (:mod:`local_mode.endpoints.metering`): the router's counts and the
  instances' CPU and memory become the period's datapoints, and autoscaling acts on them
  (:meth:`EndpointRunner.scale_to`: new instances join once they answer ``/ping``, removed
  ones drain first, so no request fails);
- SIGTERM / SIGINT: stop routing, stop every container (SIGTERM, SIGKILL after 30 s), remove the
  work directory, exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from local_mode.cloudwatch.recorder import MICROSECONDS, EndpointMetrics, VariantMeter
from local_mode.docker_engine import ENDPOINT_LABEL
from local_mode.endpoints import http
from local_mode.endpoints.autoscaler import Autoscaler
from local_mode.endpoints.backends import Backend, Container
from local_mode.endpoints.backends.choice import make_backend
from local_mode.endpoints.capacity import CapacityLog, capacity_file
from local_mode.endpoints.health import load_failure
from local_mode.endpoints.http import HTTPProtocolError, Upstream, UpstreamUnavailable
from local_mode.endpoints.metering import Metering
from local_mode.endpoints.router import Instance, ModelCache, Router, Variant
from local_mode.endpoints.spec import ModelSpec, VariantSpec, variants_from_config
from local_mode.endpoints.staging import stage_model_data
from local_mode.endpoints.weights import capacity_request, clear_capacity_request
from local_mode.error_text import message_of
from local_mode.errors import ResourceNotFound
from local_mode.runners import ENDPOINTS, runner_main
from local_mode.state import ResourceDir, StateStore, now
from toolkit.settings import Settings

log = logging.getLogger("optml.local.endpoint")

STARTUP_PING_INTERVAL = 0.05
HEALTH_INTERVAL = 2.0
PING_TIMEOUT = 2.0
UNHEALTHY_AFTER = 3
DRAIN_SECONDS = 60.0
REPLACE_BACKOFF = 1.0
FAILURE_REASON_CHARS = 1024
STATE_CHECK_INTERVAL = 1.0
METERING_STOP_SECONDS = 10.0
"""How long a stopping endpoint waits for its last metric period to be written."""


class DeployError(Exception):
    """The variants could not be brought to healthy; the message is the FailureReason."""


@dataclass(eq=False)
class Watched:
    """Supervision state of one instance."""

    instance: Instance
    variant: Variant
    pingers: list[Upstream]
    next_ping: float = 0.0
    pinging: bool = False
    died: str | None = None


@dataclass(eq=False)
class Deployment:
    """A fleet being brought up for an endpoint config (at creation, or an update's new fleet):
    what DescribeEndpoint reports as ``PendingDeploymentSummary`` until it completes."""

    config_name: str
    started: datetime
    variants: list[Variant] = field(default_factory=list)
    status: str = "Creating"
    """The new variants' ``VariantStatus``: Creating, then ActivatingTraffic once they serve."""
    since: datetime = field(default_factory=now)

    def advance(self, status: str) -> None:
        self.status, self.since = status, now()


def variant_summary(variant: Variant, serving: bool) -> dict[str, Any]:
    """A ProductionVariantSummary; ``serving``: the router sends this variant traffic."""
    return {"VariantName": variant.name,
            "DeployedImages": [{"SpecifiedImage": c.image or "optml-serve"}
                               for c in variant.model.containers],
            "CurrentWeight": variant.weight if serving else 0.0,
            "DesiredWeight": variant.weight,
            "CurrentInstanceCount": len(variant.healthy()),
            "DesiredInstanceCount": variant.desired_count}


async def ping(upstream: Upstream) -> tuple[bool, str | None]:
    """``(healthy, fatal)``: ``fatal`` is the container's reason when it says its model can never
    load (optml answers 503 ``model_load_failed``), so a deploy fails at once instead of waiting
    out the start-up timeout."""
    try:
        response = await upstream.request("GET", "/ping", b"",
                                          deadline=time.monotonic() + PING_TIMEOUT)
    except (UpstreamUnavailable, HTTPProtocolError, TimeoutError):
        return False, None
    return response.status == 200, load_failure(response.status, response.body)


class EndpointRunner:
    def __init__(self, store: StateStore, resource: ResourceDir, settings: Settings,
                 backend: Backend,
                 on_stop: Callable[[Callable[[], None]], None] | None = None) -> None:
        self.store, self.resource, self.settings, self.backend = store, resource, settings, backend
        self._on_stop = on_stop  # registers what a stop signal does (runners.RunnerContext)
        self.router = Router(resource.name, resource.logs_dir)
        self.router.on_suspect = self._suspect
        self.watched: dict[Instance, Watched] = {}
        self.stopping = asyncio.Event()
        self._counter = itertools.count(1)
        self._staged: dict[tuple[str, str], Path] = {}
        self._caches: dict[str, ModelCache] = {}
        self._last_replace: dict[str, float] = {}
        self._replacements: dict[asyncio.Task[None], Variant] = {}
        self._update_requested = asyncio.Event()
        self._capacity_requested = asyncio.Event()
        self._scaling = asyncio.Lock()
        """Held while instances are added or removed: one capacity change at a time."""
        self.deployment: Deployment | None = None
        self.metrics = EndpointMetrics(resource.name) if settings.local.endpoint_metrics \
            else None
        self.capacity_log = CapacityLog(capacity_file(resource))

    # -- state -----------------------------------------------------------------------------
    def _set(self, **fields: Any) -> None:
        self.resource.update(lambda d: d.update(fields))

    def _publish(self, **fields: Any) -> None:
        """Write the variants' instance counts, the deployment in progress and the instances
        (private) to the state; a field given as None is removed."""
        variants = [variant_summary(v, True) for v in self.router.variants]
        pending = None
        if self.deployment is not None:
            deployment = self.deployment
            pending = {"EndpointConfigName": deployment.config_name,
                       "StartTime": deployment.started,
                       "ProductionVariants": [
                           {**variant_summary(v, v in self.router.variants),
                            "InstanceType": v.spec.instance_type,
                            "VariantStatus": [{"Status": deployment.status,
                                               "StartTime": deployment.since}]}
                           for v in deployment.variants]}
            if not pending["ProductionVariants"]:
                del pending["ProductionVariants"]  # the model asks for at least one
        instances = [{"Id": w.instance.ident, "Variant": w.variant.name,
                      "Healthy": w.instance.healthy, "InService": w.variant in self.router.variants,
                      "Draining": w.instance.draining,
                      "Ports": [c.port for c in w.instance.containers],
                      "Pids": [c.pid for c in w.instance.containers]}
                     for w in self.watched.values()]

        def change(d: dict[str, Any]) -> None:
            if variants:
                d["ProductionVariants"] = variants
            if pending is not None:
                d["PendingDeploymentSummary"] = pending
            d["Instances"] = instances
            for key, value in fields.items():
                if value is None:
                    d.pop(key, None)
                else:
                    d[key] = value
        self.resource.update(change)

    def _meter(self, variant_name: str) -> VariantMeter | None:
        return None if self.metrics is None else self.metrics.meter(variant_name)

    # -- instances -------------------------------------------------------------------------
    def _model(self, name: str) -> ModelSpec:
        try:
            request = self.store.get("models", name).request()
        except (ResourceNotFound, OSError, ValueError):  # deleted, or half written
            raise DeployError(f"Could not find model \"{name}\".") from None
        return ModelSpec.from_request(request)

    async def _stage(self, model: ModelSpec) -> list[Path]:
        loop = asyncio.get_running_loop()
        dirs = []
        for container in model.containers:
            key = (model.name, container.hostname)
            if key not in self._staged:
                dest = self.resource.work_dir / "models" / model.name / container.hostname
                url = None if container.multi_model else container.model_data_url
                try:
                    self._staged[key] = await loop.run_in_executor(
                        None, stage_model_data, url, dest, self.settings.environ)
                    self.backend.check(container, self._staged[key])
                except Exception as exc:  # noqa: BLE001 - StagingError, BackendUnsupported
                    raise DeployError(f"model {model.name}: {message_of(exc)}") from None
            dirs.append(self._staged[key])
        return dirs

    def _cache(self, model: ModelSpec, root: Path) -> ModelCache:
        """The multi-model cache of ``model``, kept in ``root`` (the container's staged
        directory, which a Docker container sees as /opt/ml/models)."""
        if model.name not in self._caches:
            environ = self.settings.environ
            self._caches[model.name] = ModelCache(
                model.containers[0].model_data_url or "", root,
                lambda url, dest: stage_model_data(url, dest, environ))
        return self._caches[model.name]

    async def _start_instance(self, variant: Variant, dirs: Sequence[Path]) -> Instance:
        """Start the containers of one instance off the event loop (a Docker start takes a
        few hundred milliseconds, and the router must keep serving meanwhile)."""
        ident = f"{variant.name}-{next(self._counter)}"
        containers: list[Container] = []
        log_path = self.resource.logs_dir / f"{ident}.log"
        loop = asyncio.get_running_loop()
        try:
            for position, (container, model_dir) in enumerate(zip(variant.model.containers,
                                                                  dirs)):
                env = {"SAGEMAKER_ENDPOINT_NAME": self.resource.name,
                       "SAGEMAKER_VARIANT_NAME": variant.name}
                starting = loop.run_in_executor(None, functools.partial(
                    self.backend.start, container, model_dir,
                    self.resource.work_dir / "instances" / ident / container.hostname, env,
                    log_path, instance_type=variant.spec.instance_type, position=position))
                try:
                    containers.append(await asyncio.shield(starting))
                except asyncio.CancelledError:  # the start runs on: take what it starts
                    with contextlib.suppress(Exception):
                        containers.append(await starting)
                    raise
        except BaseException as exc:  # any backend error, or a cancel, fails this instance
            for started in containers:
                await asyncio.shield(loop.run_in_executor(None, started.kill))
            if not isinstance(exc, Exception):
                raise
            raise DeployError(f"instance {ident} of production variant {variant.name} could "
                              f"not be started: {exc}") from None
        instance = Instance(ident, containers,
                            [Upstream(c.host, c.port, c.unix_socket) for c in containers],
                            started=time.monotonic())
        variant.instances.append(instance)
        self.watched[instance] = Watched(instance, variant,
                                         [Upstream(c.host, c.port) for c in containers])
        self._record_capacity(variant)
        log.info("started instance %s on port(s) %s", ident, [c.port for c in containers])
        return instance

    async def _retire(self, instance: Instance, grace: float = 30.0) -> None:
        watched = self.watched.pop(instance, None)
        instance.close()
        if watched is not None:
            for pinger in watched.pingers:
                pinger.close()
            if instance in watched.variant.instances:
                watched.variant.instances.remove(instance)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, c.stop, grace)
                               for c in instance.containers))
        if watched is not None:  # billed until it has stopped
            self._record_capacity(watched.variant)

    def _record_capacity(self, variant: Variant) -> None:
        """Log how many instances of ``variant``'s name and type run now (every fleet's):
        what hosting is billed on."""
        key = (variant.name, variant.spec.instance_type)
        count = sum(1 for w in self.watched.values()
                    if (w.variant.name, w.variant.spec.instance_type) == key)
        try:
            self.capacity_log.record(variant.name, variant.spec.instance_type, count,
                                     time.time())
        except OSError as exc:  # the endpoint keeps serving; its cost estimate is short
            log.warning("could not record the endpoint's instance count: %s", exc)

    def _suspect(self, instance: Instance) -> None:
        """The router got no response from ``instance``: check it now, not in 2 s."""
        watched = self.watched.get(instance)
        if watched is not None:
            instance.healthy = False
            watched.next_ping = 0.0

    # -- supervision -----------------------------------------------------------------------
    async def supervise(self) -> None:
        next_state_check = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            if now >= next_state_check:
                next_state_check = now + STATE_CHECK_INTERVAL
                if not self.resource.description_file.exists():
                    # the state directory was removed under us (rm -rf, a temp directory
                    # cleaned up): nobody can reach or delete this endpoint any more, so stop
                    log.warning("the endpoint's state is gone; shutting down")
                    self.stopping.set()
                    break
            for watched in list(self.watched.values()):
                instance = watched.instance
                dead = [c for c in instance.containers if not c.alive()]
                if dead and watched.died is None:
                    watched.died = (f"container {dead[0].hostname} of instance {instance.ident} "
                                    f"exited; last log lines:\n{dead[0].log_tail()}")
                    instance.healthy = False
                    log.warning("%s", watched.died.splitlines()[0])
                    if watched.variant in self.router.variants:
                        self._schedule_replace(watched)
                    self._publish()
                    continue
                if watched.died is None and not watched.pinging and not instance.draining \
                        and now >= watched.next_ping:
                    watched.pinging = True
                    asyncio.ensure_future(self._check(watched))
            with contextlib.suppress(asyncio.TimeoutError):  # the next round of pings is due
                await asyncio.wait_for(self.stopping.wait(), STARTUP_PING_INTERVAL)

    async def _check(self, watched: Watched) -> None:
        instance = watched.instance
        try:
            results = await asyncio.gather(*(ping(p) for p in watched.pingers))
            ok = all(healthy for healthy, _ in results)
            if instance.retired or instance.draining or watched.died is not None:
                return
            fatal = next((reason for _, reason in results if reason), None)
            if fatal is not None and not instance.healthy:
                watched.died = f"the model failed to load: {fatal}"
                log.warning("instance %s: %s", instance.ident, watched.died.splitlines()[0])
                self._publish()
                return
            if ok:
                watched.instance.failures = 0
                if not instance.healthy:
                    instance.healthy = True
                    setup = time.monotonic() - instance.started
                    log.info("instance %s is healthy (%.2f s after start)", instance.ident,
                             setup)
                    if watched.variant.meter is not None and not instance.setup_counted:
                        instance.setup_counted = True  # ModelSetupTime: its first time only
                        watched.variant.meter.setup.add(setup * MICROSECONDS)
                    self._publish()
            elif instance.healthy or instance.failures:
                instance.failures += 1
                if instance.failures >= UNHEALTHY_AFTER:
                    instance.healthy = False
                    watched.died = f"instance {instance.ident} failed {UNHEALTHY_AFTER} health " \
                                   "checks in a row"
                    log.warning("%s", watched.died)
                    if watched.variant in self.router.variants:
                        self._schedule_replace(watched)
                    self._publish()
        finally:
            watched.pinging = False
            watched.next_ping = time.monotonic() + (
                HEALTH_INTERVAL if instance.healthy else STARTUP_PING_INTERVAL)
            if instance.failures and instance.healthy:
                watched.next_ping = time.monotonic() + STARTUP_PING_INTERVAL * 4

    def _schedule_replace(self, watched: Watched) -> None:
        """Replace ``watched``'s instance in the background; an update waits for the
        replacements in its old fleet, so none of them outlives the fleet."""
        task = asyncio.ensure_future(self._replace(watched))
        self._replacements[task] = watched.variant
        task.add_done_callback(lambda done: self._replacements.pop(done, None))

    async def _replace(self, watched: Watched) -> None:
        variant = watched.variant
        previous = self._last_replace.get(variant.name, 0.0)
        wait = previous + REPLACE_BACKOFF - time.monotonic()
        self._last_replace[variant.name] = max(time.monotonic(), previous + REPLACE_BACKOFF)
        await self._retire(watched.instance, grace=5.0)
        if wait > 0:
            await asyncio.sleep(wait)
        if self.stopping.is_set() or variant not in self.router.variants:
            return
        if len(_live(variant)) >= variant.desired_count:  # scaled in meanwhile
            return
        try:
            dirs = await self._stage(variant.model)
            await self._start_instance(variant, dirs)
        except DeployError as exc:  # the variant runs with one instance less; say why
            log.error("no replacement for %s: %s", watched.instance.ident, exc)
        self._publish()

    # -- capacity ----------------------------------------------------------------------------
    async def scale_to(self, variant: Variant, desired: int) -> str | None:
        """Give ``variant`` ``desired`` instances; None once done, else why not. New instances
        take traffic only once they answer ``/ping``; removed ones -- the unhealthy first, then
        the newest -- take no new request, finish what they have in flight (within
        :data:`DRAIN_SECONDS`) and only then stop. The endpoint is ``Updating`` meanwhile, as
        the service's capacity changes leave it, so no other update starts under one."""
        async with self._scaling:
            if variant not in self.router.variants:
                return "the variant was replaced by an update of the endpoint"
            if self.stopping.is_set():
                return "the endpoint is being deleted"
            was_in_service = self.resource.describe().get("EndpointStatus") == "InService"
            variant.desired_count = desired
            self._publish(**({"EndpointStatus": "Updating"} if was_in_service else {}))
            try:
                live = _live(variant)
                if desired > len(live):
                    return await self._add(variant, desired - len(live))
                if desired < len(live):
                    await self._take_away(sorted(live, key=lambda i: (i.healthy, -i.started))[
                        :len(live) - desired])
                    log.info("scaled %s in to %d instance(s)", variant.name, desired)
                return None
            finally:
                self._publish(**({"EndpointStatus": "InService"} if was_in_service else {}))

    async def _add(self, variant: Variant, count: int) -> str | None:
        """Start ``count`` instances of ``variant``; None once all serve, else why not."""
        try:
            dirs = await self._stage(variant.model)
        except DeployError as exc:
            return str(exc)
        started = await asyncio.gather(*(self._start_instance(variant, dirs)
                                         for _ in range(count)), return_exceptions=True)
        failures = [s for s in started if isinstance(s, BaseException)]
        for failure in failures:
            log.error("scaling %s out: %s", variant.name, failure)
        self._publish()
        if failures:
            return str(failures[0])
        if not await self._serving(variant, [i for i in started if isinstance(i, Instance)]):
            return "a new instance did not pass its ping health check; see the endpoint's logs"
        return None

    async def _take_away(self, leaving: list[Instance]) -> None:
        """Drain ``leaving`` (no new request reaches them; the router re-plans one that was
        planned for them but not yet sent), wait for what they hold, then stop them."""
        for instance in leaving:
            instance.drain()
        self._publish()
        await asyncio.sleep(0)  # requests planned before the drain take their connections
        deadline = time.monotonic() + DRAIN_SECONDS
        while any(i.inflight for i in leaving) and time.monotonic() < deadline and \
                not self.stopping.is_set():  # a stop retires everything anyway
            await asyncio.sleep(0.02)
        await asyncio.gather(*(self._retire(i) for i in leaving), return_exceptions=True)

    async def _serving(self, variant: Variant, instances: list[Instance]) -> bool:
        """Wait until every one of ``instances`` is healthy (True) or one of them died or did
        not pass its health check within the variant's start-up timeout (False)."""
        deadline = time.monotonic() + variant.spec.startup_timeout
        while True:
            if all(i.healthy for i in instances):
                return True
            for instance in instances:
                watched = self.watched.get(instance)
                if watched is None or watched.died:
                    return False
            if time.monotonic() > deadline or self.stopping.is_set():
                return False
            await asyncio.sleep(0.01)

    def _request_capacity(self) -> None:
        self._capacity_requested.set()

    async def _capacity_updates(self) -> None:
        """Apply UpdateEndpointWeightsAndCapacities' requests (SIGUSR1), one after another."""
        await self._one_at_a_time(self._capacity_requested, self._apply_capacities,
                                  "Updating weights and capacities failed", {})

    async def _one_at_a_time(self, requested: asyncio.Event,
                             work: Callable[[], Awaitable[None]], failed: str,
                             cleared: dict[str, Any]) -> None:
        """Run ``work`` each time ``requested`` is set (a signal), one run after another. A run
        that fails unexpectedly (an unreadable state file, ...) still leaves the endpoint
        InService with ``cleared`` removed, its reason in FailureReason, and ready for the next
        request."""
        while True:
            await requested.wait()
            requested.clear()
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the endpoint must never stay Updating
                log.exception("%s", failed)
                if cleared:  # an update's: its fleet is no longer pending
                    self.deployment = None
                self._publish(EndpointStatus="InService", **cleared,
                              FailureReason=f"{failed}: {message_of(exc)}"[
                                  :FAILURE_REASON_CHARS])

    async def _apply_capacities(self) -> None:
        if self.resource.describe().get("EndpointStatus") != "Updating":
            return  # nothing asked (a signal at start-up), or an update's own Updating
        if not self.resource.capacity_request_file.exists():
            return  # the Updating is UpdateEndpoint's
        request = capacity_request(self.resource)
        if request is None:  # asked, but the request cannot be read: do not stay Updating
            clear_capacity_request(self.resource)
            self._publish(EndpointStatus="InService",
                          FailureReason="Updating weights and capacities failed: the request "
                                        "could not be read")
            return
        by_name = {v.name: v for v in self.router.variants}
        problems = []
        for change in request:
            variant = by_name.get(change["VariantName"])
            if variant is None:
                continue
            if "DesiredWeight" in change:
                variant.weight = float(change["DesiredWeight"])
            if "DesiredInstanceCount" in change:
                problem = await self.scale_to(variant, int(change["DesiredInstanceCount"]))
                if problem is not None:
                    problems.append(f"{variant.name}: {problem}")
        clear_capacity_request(self.resource)
        self._publish(EndpointStatus="InService",
                      FailureReason=("Updating weights and capacities failed: " +
                                     "; ".join(problems))[:FAILURE_REASON_CHARS]
                      if problems else None)

    # -- deploy / update -------------------------------------------------------------------
    async def deploy(self, deployment: Deployment) -> list[Variant]:
        """Start every instance of ``deployment``'s config (its variants are listed in
        ``deployment.variants`` as they start) and wait until all are healthy; on failure,
        remove what was started and raise :class:`DeployError`."""
        config_name = deployment.config_name
        try:
            config = self.store.get("endpoint-configs", config_name).request()
        except (ResourceNotFound, OSError, ValueError):  # deleted, or half written
            raise DeployError(f"Could not find endpoint configuration \"{config_name}\".") \
                from None
        specs: list[VariantSpec] = variants_from_config(config)
        variants = deployment.variants
        try:
            for spec in specs:
                model = self._model(spec.model_name)
                variant = Variant(spec, model, meter=self._meter(spec.name))
                variants.append(variant)
                dirs = await self._stage(model)
                if model.multi_model:
                    variant.cache = self._cache(model, dirs[0])
                started = await asyncio.gather(*(self._start_instance(variant, dirs)
                                                 for _ in range(spec.instance_count)),
                                               return_exceptions=True)
                for result in started:  # all have finished: none is left half-registered
                    if isinstance(result, BaseException):
                        raise result
            self._publish()
            await self._wait_healthy(variants)
        except BaseException:
            for variant in variants:
                for instance in list(variant.instances):
                    await self._retire(instance, grace=5.0)
            raise
        return variants

    async def _wait_healthy(self, variants: list[Variant]) -> None:
        started = time.monotonic()
        while True:
            pending = False
            for variant in variants:
                for instance in variant.instances:
                    watched = self.watched.get(instance)
                    if watched is not None and watched.died:
                        raise DeployError(f"The primary container for production variant "
                                          f"{variant.name} did not pass the ping health check: "
                                          f"{watched.died}")
                    if not instance.healthy:
                        pending = True
                        if time.monotonic() - started > variant.spec.startup_timeout:
                            raise DeployError(
                                f"The primary container for production variant {variant.name} "
                                f"did not pass the ping health check within "
                                f"{variant.spec.startup_timeout:.0f} s; see "
                                f"{self.resource.logs_dir / (instance.ident + '.log')}")
            if not pending:
                return
            if self.stopping.is_set():
                raise DeployError("the endpoint was deleted while it was being created")
            await asyncio.sleep(0.01)

    def updating(self) -> bool:
        """A blue/green update is under way (autoscaling waits for it, as the service's does)."""
        return self.deployment is not None

    async def update(self) -> None:
        """Carry out the update ``update_endpoint`` recorded (see the module docstring); no
        capacity change runs meanwhile."""
        async with self._scaling:
            await self._update()

    async def _update(self) -> None:
        description = self.resource.describe()
        config_name = description.get("PendingEndpointConfigName")
        if not config_name or description.get("EndpointStatus") != "Updating":
            return
        self.deployment = Deployment(config_name, now())
        self._publish()
        try:
            new = await self.deploy(self.deployment)
        except DeployError as exc:
            log.error("update to %s failed; the endpoint stays on its old config: %s",
                      config_name, exc)
            self.deployment = None
            self._publish(EndpointStatus="InService", PendingEndpointConfigName=None,
                          PendingDeploymentSummary=None,
                          FailureReason=f"Update to {config_name} failed and was rolled back: "
                                        f"{exc}"[:FAILURE_REASON_CHARS])
            return
        old, self.router.variants = self.router.variants, new
        for variant in old:  # before the publish below, so the state shows them draining
            for instance in variant.instances:
                instance.drain()
        self.deployment.advance("ActivatingTraffic")
        self._publish()
        log.info("traffic moved to %s; draining the previous instances", config_name)
        await self._remove_fleet(old)
        self.deployment = None
        self._publish(EndpointStatus="InService", EndpointConfigName=config_name,
                      PendingEndpointConfigName=None, PendingDeploymentSummary=None)
        log.info("update to %s complete", config_name)

    async def _remove_fleet(self, old: list[Variant]) -> None:
        """Let the instances of ``old`` finish their in-flight requests (within
        :data:`DRAIN_SECONDS`), then stop and remove them -- and any replacement one of them
        was getting, once it has started."""
        deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            leftovers = [w.instance for w in list(self.watched.values()) if w.variant in old]
            replacing = [task for task, variant in self._replacements.items()
                         if variant in old and not task.done()]
            if not leftovers and not replacing:
                return
            for instance in leftovers:
                instance.drain()
            while any(i.inflight for i in leftovers) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            outcomes = await asyncio.gather(*(self._retire(i) for i in leftovers),
                                            return_exceptions=True)
            for instance, outcome in zip(leftovers, outcomes):
                if isinstance(outcome, Exception):  # traffic has moved: finish the update
                    log.warning("could not remove old instance %s: %s", instance.ident, outcome)
            self._publish()
            await asyncio.gather(*replacing, return_exceptions=True)

    def _request_update(self) -> None:
        self._update_requested.set()

    async def _updates(self) -> None:
        """Run updates one after the other, as ``update_endpoint`` signals them (SIGHUP);
        DeployError is rolled back inside :meth:`update` itself."""
        await self._one_at_a_time(self._update_requested, self.update, "Update failed",
                                  {"PendingEndpointConfigName": None,
                                   "PendingDeploymentSummary": None})

    # -- the endpoint ----------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # A stop (SIGTERM, SIGINT) stays with runners.runner_main's handlers, which outlive this
        # loop: one during the clean-up after it is simply noted, never the default action.
        def stop() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self.stopping.set)
        if self._on_stop is not None:
            self._on_stop(stop)
        loop.add_signal_handler(signal.SIGHUP, self._request_update)
        loop.add_signal_handler(signal.SIGUSR1, self._request_capacity)
        port = await self.router.start()
        self._set(RouterPort=port)
        try:  # an endpoint that never starts an instance is billed for none, and says so
            self.capacity_log.create()
        except OSError as exc:
            log.warning("could not create the endpoint's capacity log: %s", exc)
        supervisor = asyncio.ensure_future(self.supervise())
        updates: asyncio.Task[None] | None = None
        capacities: asyncio.Task[None] | None = None
        metering: asyncio.Task[None] | None = None
        scaler: Autoscaler | None = None
        try:
            description = self.resource.describe()
            self.deployment = Deployment(description["EndpointConfigName"],
                                         description["CreationTime"])
            try:
                self.router.variants = await self.deploy(self.deployment)
            except DeployError as exc:
                self.deployment = None
                self._publish(EndpointStatus="Failed", PendingDeploymentSummary=None,
                              FailureReason=str(exc)[:FAILURE_REASON_CHARS])
                return
            self.deployment = None
            self._publish(EndpointStatus="InService", PendingDeploymentSummary=None)
            self._update_requested.set()  # an update signalled while we were creating
            updates = asyncio.ensure_future(self._updates())
            self._capacity_requested.set()  # likewise
            capacities = asyncio.ensure_future(self._capacity_updates())
            if self.metrics is not None:
                log.info("metrics every %d s (OPTML_LOCAL_METRIC_PERIOD_SECONDS of the process "
                         "that created the endpoint); the scaling timeline runs %g x the "
                         "service's", self.settings.local.metric_period_seconds,
                         1 / self.settings.local.time_scale)
                scaler = Autoscaler(self, self.resource.name, self.store.root,
                                    self.settings.local.time_scale)
                metering = asyncio.ensure_future(Metering(self, scaler).run())
            await self.stopping.wait()
        finally:
            self.stopping.set()
            await self.router.stop()
            tasks = [t for t in (updates, capacities, *self._replacements) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if metering is not None:  # it sees the stop, writes the open period and ends
                try:
                    await asyncio.wait_for(metering, METERING_STOP_SECONDS)
                except Exception:  # a timeout or a failure: logged, and the stop goes on
                    log.warning("the endpoint's metrics did not finish in time", exc_info=True)
            if scaler is not None:  # a change under way sees the stop and ends; then retire
                await scaler.close()
            await supervisor
            await asyncio.gather(*(self._retire(i) for i in list(self.watched)))


def _live(variant: Variant) -> list[Instance]:
    """The variant's instances that count towards its capacity: started, not leaving."""
    return [i for i in variant.instances if not (i.retired or i.draining)]


def main(argv: Sequence[str] | None = None) -> int:
    with runner_main(ENDPOINTS, argv) as context:
        resource = context.resource
        try:
            backend = make_backend(context.backend, context.settings.environ,
                                   owner=(ENDPOINT_LABEL, resource.name),
                                   state_dir=str(context.store.root),
                                   stop_grace=context.settings.local.stop_grace_seconds)
        except Exception as exc:  # noqa: BLE001 - any failure to set up is the endpoint's
            reason = message_of(exc)
            resource.update(lambda d: d.update(EndpointStatus="Failed", FailureReason=reason))
            return 1
        try:
            http.run(EndpointRunner(context.store, resource, context.settings, backend,
                                    context.on_stop).run())
        finally:
            backend.close()  # whatever a crash left running (Docker: containers, network)
    return 0


if __name__ == "__main__":
    sys.exit(main())
