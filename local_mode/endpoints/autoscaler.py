"""An endpoint's autoscaling, run by its runner once a metric period (see
:mod:`local_mode.endpoints.metering`).

Each period, with the datums kept so far: every CloudWatch alarm on this endpoint's metrics (its
dimensions name the endpoint: the alarms target tracking made, and any the user put, on the
router's metrics or on a custom metric sent with PutMetricData) is evaluated and its state
recorded, so DescribeAlarms reads what the service would show; then, for each of the
endpoint's variants registered as a scalable target,
:func:`local_mode.autoscaling.decide.decide` says whether its policies change its desired
instance count. A change is a scaling activity -- InProgress when decided, Successful once the
new instances answer ``/ping`` (or the removed ones have drained and stopped), Failed otherwise --
carried out in the background, so metrics keep being written meanwhile; a variant takes no
new decision while one of its changes is under way.

The store reads and writes happen off the event loop. ``time_scale`` is the metric period over
the service's 60 s (``Settings.local.time_scale``): it compresses alarm periods and cooldowns
alike.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from local_mode.autoscaling import wording
from local_mode.autoscaling.decide import Decision, ScalingHistory, decide
from local_mode.autoscaling.policies import ScalableTarget, ScalingPolicy
from local_mode.autoscaling.store import ScalingStore
from local_mode.cloudwatch.alarms import Alarm, AlarmState, AlarmStore, evaluate
from local_mode.cloudwatch.datums import Datum
from local_mode.cloudwatch.sources import ENDPOINT_NAMESPACES, custom_datums
from local_mode.endpoints.router import Router, Variant
from local_mode.errors import ResourceNotFound

log = logging.getLogger("optml.local.endpoint")


class ScaledRunner(Protocol):
    """What :class:`Autoscaler` needs of the endpoint's runner."""

    router: Router

    def updating(self) -> bool: ...

    async def scale_to(self, variant: Variant, desired: int) -> str | None: ...


@dataclass(frozen=True)
class _Registered:
    """A scalable target of this endpoint with its policies and their alarms, as read now."""

    target: ScalableTarget
    policies: list[ScalingPolicy]
    alarms: Mapping[str, tuple[Alarm, AlarmState]]


class Autoscaler:
    """The scaling step of one endpoint (see the module docstring)."""

    def __init__(self, runner: ScaledRunner, endpoint_name: str, state_root: Path,
                 time_scale: float, clock: Callable[[], float] = time.time) -> None:
        self.runner = runner
        self.clock = clock
        self.endpoint_name = endpoint_name
        self.state_root = state_root
        self.alarms = AlarmStore(state_root)
        self.scaling = ScalingStore(state_root)
        self.time_scale = time_scale
        self.history: dict[str, ScalingHistory] = {}
        self._changing: dict[str, asyncio.Task[None]] = {}

    async def step(self, now: float, recent: list[Datum]) -> None:
        loop = asyncio.get_running_loop()
        registered = await loop.run_in_executor(None, self._read, now, recent)
        if self.runner.updating():  # scaling is blocked while the endpoint is updated
            return
        variants = {v.name: v for v in self.runner.router.variants}
        for entry in registered:
            variant = variants.get(entry.target.variant_name)
            busy = self._changing.get(entry.target.variant_name)
            if variant is None or (busy is not None and not busy.done()):
                continue
            name = variant.name
            history = self.history.get(name, ScalingHistory())
            desired = variant.desired_count
            decision = decide(entry.target, entry.policies, entry.alarms, desired, history,
                              now, self.time_scale, current=len(variant.healthy()))
            if decision is None:
                continue
            self.history[name] = history.after(decision, desired, now)
            activity = await loop.run_in_executor(None, self.scaling.start_activity,
                                                  entry.target, decision, now)
            log.info("%s: %s (%s)", name, decision.description, decision.cause)
            task = asyncio.ensure_future(self._carry_out(entry.target, variant, decision,
                                                         activity))
            self._changing[name] = task

    async def _carry_out(self, target: ScalableTarget, variant: Variant, decision: Decision,
                         activity: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            problem = await self.runner.scale_to(variant, decision.desired)
        except Exception as exc:  # recorded as the activity's failure
            log.exception("scaling %s failed", variant.name)
            problem = f"{type(exc).__name__}: {exc}"
        code, message = ("Successful", wording.fulfilled(decision.desired)) \
            if problem is None else ("Failed", wording.failed(decision.desired, problem))
        try:
            await loop.run_in_executor(None, self.scaling.finish_activity, target.resource_id,
                                       activity, code, message, self.clock())
        except (OSError, ValueError) as exc:  # the activity stays InProgress; say why
            log.error("could not record the end of scaling activity %s: %s", activity, exc)

    async def close(self) -> None:
        """Wait for capacity changes under way (the runner is stopping: they end quickly)."""
        await asyncio.gather(*self._changing.values(), return_exceptions=True)

    def _read(self, now: float, recent: list[Datum]) -> list[_Registered]:
        """Evaluate this endpoint's alarms (recording their states), then read its scalable
        targets with their policies and alarms."""
        evaluated: dict[str, tuple[Alarm, AlarmState]] = {}
        mine = [a for a in self.alarms.list()
                if ("EndpointName", self.endpoint_name) in a.dimensions]
        published: list[Datum] = []
        if any(a.namespace not in ENDPOINT_NAMESPACES for a in mine):
            # a custom metric about this endpoint, sent with PutMetricData
            published = list(custom_datums(self.state_root))
        for alarm in mine:
            try:
                previous = self.alarms.state(alarm.name)
                datums = recent if alarm.namespace in ENDPOINT_NAMESPACES else published
                state = evaluate(alarm, datums, now, self.time_scale, previous)
                if state.value != previous.value and \
                        not self.alarms.set_state(alarm.name, state, evaluated=alarm):
                    continue  # put again meanwhile: evaluated afresh next period
                # (the service's reason is the one of the transition: written only then)
            except ResourceNotFound:  # deleted meanwhile
                continue
            evaluated[alarm.name] = (alarm, state)
        return [_Registered(target, self.scaling.policies(target.resource_id), evaluated)
                for target in self.scaling.targets_for_endpoint(self.endpoint_name)]
