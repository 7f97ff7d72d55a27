"""Once a metric period, what an endpoint's runner publishes and acts on.

At the end of each period (``OPTML_LOCAL_METRIC_PERIOD_SECONDS``, aligned to the epoch as
CloudWatch's periods are): every serving instance's CPU and memory are read (off the event loop:
``/proc`` or the engine's stats), the router's counts become the period's
:class:`~local_mode.cloudwatch.datums.Datum` statistic sets, appended to the endpoint's metrics
file (:func:`~local_mode.cloudwatch.datums.endpoint_metrics_file`) and kept in memory for the
alarms, and the autoscaler (when the
endpoint has a scalable target) evaluates its alarms and policies and changes capacity. The
period still open when the endpoint stops is written too, so every answered request is counted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from local_mode.cloudwatch.datums import Datum, DatumWriter, endpoint_metrics_file
from local_mode.cloudwatch.recorder import EndpointMetrics
from local_mode.endpoints.router import Instance, Router, Variant
from local_mode.endpoints.usage import Usage, UsageSampler, combined
from local_mode.state import ResourceDir, StateStore
from toolkit.settings import Settings

log = logging.getLogger("optml.local.endpoint")

KEEP_SERVICE_SECONDS = 86_400.0
"""How far back datums stay in memory for alarms: the longest an alarm may look back (its
Period x EvaluationPeriods is at most a day), in service seconds."""


class MeteredRunner(Protocol):
    """What :class:`Metering` needs of the endpoint's runner."""

    router: Router
    metrics: EndpointMetrics | None
    store: StateStore
    resource: ResourceDir
    settings: Settings
    stopping: asyncio.Event


class PeriodHook(Protocol):
    """Something that acts once a period on the datums kept so far (the autoscaler)."""

    async def step(self, now: float, recent: list[Datum]) -> None: ...


class Metering:
    """The runner's once-a-period task (see the module docstring)."""

    def __init__(self, runner: MeteredRunner, hook: PeriodHook | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        assert runner.metrics is not None
        self.runner = runner
        self.metrics: EndpointMetrics = runner.metrics
        self.period = float(runner.settings.local.metric_period_seconds)
        self.hook = hook
        self.clock = clock
        path = endpoint_metrics_file(runner.store.root, runner.resource.name)
        assert path is not None  # the name of an endpoint that exists
        self.writer = DatumWriter(path)
        self.sampler = UsageSampler()
        self.recent: deque[Datum] = deque()
        self._keep = KEEP_SERVICE_SECONDS * runner.settings.local.time_scale

    async def run(self) -> None:
        start = math.floor(self.clock() / self.period) * self.period
        stopping = asyncio.ensure_future(self.runner.stopping.wait())  # one waiter for all
        try:
            while True:
                end = start + self.period
                await asyncio.wait({stopping}, timeout=max(0.0, end - self.clock()))
                if stopping.done():
                    break  # the open period is written below
                try:
                    await self._sample(end)
                    await self._publish(start)
                    if self.hook is not None:
                        await self.hook.step(self.clock(), list(self.recent))
                except asyncio.CancelledError:
                    raise
                except Exception:  # one bad period must not end the endpoint's metrics
                    log.exception("metric period ending at %.0f failed", end)
                start = max(end, math.floor(self.clock() / self.period) * self.period)
        finally:
            stopping.cancel()
            self._write(self.metrics.flush(start, self.period))
            self.writer.close()

    async def _publish(self, start: float) -> None:
        serving = {v.name for v in self.runner.router.variants if v.healthy()}
        datums = self.metrics.flush(start, self.period, serving)
        await asyncio.get_running_loop().run_in_executor(None, self._write, datums)
        self.recent.extend(datums)
        horizon = start - self._keep
        while self.recent and self.recent[0].timestamp < horizon:
            self.recent.popleft()

    def _write(self, datums: list[Datum]) -> None:
        try:
            self.writer.write(datums)
        except (OSError, ValueError) as exc:  # a full disk, the state removed: it serves on
            log.warning("could not write the endpoint's metrics: %s", exc)

    async def _sample(self, when: float) -> None:
        """Every instance's CPU and memory since its previous reading, into its meter."""
        loop = asyncio.get_running_loop()
        present: list[tuple[Variant, Instance]] = [
            (variant, instance) for variant in self.runner.router.variants
            for instance in variant.instances if instance.healthy]
        readings = await asyncio.gather(*(
            loop.run_in_executor(None, _instance_usage, instance)
            for _, instance in present))
        for (variant, instance), usage in zip(present, readings):
            if usage is None or variant.meter is None:
                continue
            sample = self.sampler.sample(instance.ident, usage, when)
            if sample is not None:
                variant.meter.cpu.add(sample[0])
                variant.meter.memory.add(sample[1])
        self.sampler.forget({instance.ident for _, instance in present})


def _instance_usage(instance: Instance) -> Usage | None:
    readings = [u for c in instance.containers if (u := c.usage()) is not None]
    return combined(readings)
