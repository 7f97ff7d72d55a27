"""An endpoint's invocation metrics, counted by its router as the service counts them.

Per production variant and per period (``OPTML_LOCAL_METRIC_PERIOD_SECONDS``), in the
``AWS/SageMaker`` namespace with dimensions ``EndpointName`` and ``VariantName``:

- ``Invocations``: 1 for each request routed to one of the variant's instances (0 in a period
  without any while the variant serves);
- ``InvocationsPerInstance``: 1/n for each, n being the variant's serving instances then;
- ``ModelLatency``: microseconds the containers took to answer (every container of a pipeline);
- ``OverheadLatency``: microseconds from the request's arrival to its answer, less the above;
- ``Invocation4XXErrors`` / ``Invocation5XXErrors``: 1 when the model answered 4xx / 5xx (or did
  not answer in time: 5xx), else 0 -- so their Average is the error rate;
- ``ModelSetupTime``: microseconds from an instance's start to its first healthy ping;

and in ``/aws/sagemaker/Endpoints``, ``CPUUtilization`` and ``MemoryUtilization`` (percent, one
sample per instance per period; CPU counts each core as 100 %, as the service does).

Recording is on the router's hot path: one :class:`VariantMeter` per variant holds plain numbers
that a request updates in place; :meth:`EndpointMetrics.flush` swaps them out once a period and
turns them into :class:`~local_mode.cloudwatch.datums.Datum` statistic sets.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field

from local_mode.cloudwatch.datums import (
    ENDPOINT_INSTANCE_NAMESPACE,
    SAGEMAKER_NAMESPACE,
    Datum,
    Dimensions,
)

MICROSECONDS = 1_000_000.0


@dataclass(slots=True)
class Stats:
    """A running statistic set (count, sum, min, max) of one metric in the current period."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value


@dataclass(slots=True)
class VariantMeter:
    """The current period's counts of one variant (see the module docstring)."""

    invocations: int = 0
    per_instance: Stats = field(default_factory=Stats)
    model_latency: Stats = field(default_factory=Stats)
    overhead_latency: Stats = field(default_factory=Stats)
    errors_4xx: int = 0
    errors_5xx: int = 0
    setup: Stats = field(default_factory=Stats)
    cpu: Stats = field(default_factory=Stats)
    memory: Stats = field(default_factory=Stats)

    def take(self) -> VariantMeter:
        """The counts so far, leaving this meter at zero (the router keeps using it)."""
        taken = VariantMeter()
        for name in self.__slots__:
            setattr(taken, name, getattr(self, name))
        self.invocations = self.errors_4xx = self.errors_5xx = 0
        self.per_instance, self.model_latency, self.overhead_latency = Stats(), Stats(), Stats()
        self.setup, self.cpu, self.memory = Stats(), Stats(), Stats()
        return taken

    def invocation(self, status: int, serving: int, model_seconds: float,
                   total_seconds: float) -> None:
        """One answered request: the model's status (0: it gave none in time), the variant's
        serving instances, the containers' time and the whole time, in seconds."""
        self.invocations += 1
        self.per_instance.add(1.0 / serving if serving > 0 else 1.0)
        self.model_latency.add(model_seconds * MICROSECONDS)
        self.overhead_latency.add(max(0.0, total_seconds - model_seconds) * MICROSECONDS)
        if 400 <= status < 500:
            self.errors_4xx += 1
        elif status >= 500 or status == 0:
            self.errors_5xx += 1


class EndpointMetrics:
    """Every variant's meter of one endpoint; a meter outlives a fleet (an update's new
    variant of the same name keeps counting into it)."""

    def __init__(self, endpoint_name: str) -> None:
        self.endpoint_name = endpoint_name
        self._meters: dict[str, VariantMeter] = {}

    def meter(self, variant_name: str) -> VariantMeter:
        meter = self._meters.get(variant_name)
        if meter is None:
            meter = self._meters[variant_name] = VariantMeter()
        return meter

    def flush(self, start: float, period: float,
              serving: Collection[str] = ()) -> list[Datum]:
        """The datums of the period that began at ``start`` (epoch seconds), and a fresh count
        for the next one. A variant in ``serving`` that had no request writes 0 for its
        invocation counts (the service reports an idle endpoint as 0 invocations, which is what
        lets target tracking scale it in); any other metric nobody published has no datum."""
        datums: list[Datum] = []
        for name, live in list(self._meters.items()):
            meter = live.take()
            dims: Dimensions = (("EndpointName", self.endpoint_name), ("VariantName", name))

            def add(namespace: str, metric: str, stats: Stats, unit: str,
                    dims: Dimensions = dims) -> None:
                if stats.count:
                    datums.append(Datum(namespace, metric, dims, start, period,
                                        float(stats.count), stats.total, stats.low,
                                        stats.high, unit))

            if not meter.invocations and name in serving:
                for metric in ("Invocations", "InvocationsPerInstance", "Invocation4XXErrors",
                               "Invocation5XXErrors"):
                    datums.append(Datum(SAGEMAKER_NAMESPACE, metric, dims, start, period, 1.0,
                                        0.0, 0.0, 0.0, "None"))
            if meter.invocations:
                count = float(meter.invocations)
                datums.append(Datum(SAGEMAKER_NAMESPACE, "Invocations", dims, start, period,
                                    count, count, 1.0, 1.0, "None"))
                add(SAGEMAKER_NAMESPACE, "InvocationsPerInstance", meter.per_instance, "None")
                add(SAGEMAKER_NAMESPACE, "ModelLatency", meter.model_latency, "Microseconds")
                add(SAGEMAKER_NAMESPACE, "OverheadLatency", meter.overhead_latency,
                    "Microseconds")
                for metric, errors in (("Invocation4XXErrors", meter.errors_4xx),
                                       ("Invocation5XXErrors", meter.errors_5xx)):
                    datums.append(Datum(SAGEMAKER_NAMESPACE, metric, dims, start, period, count,
                                        float(errors), 1.0 if errors == count else 0.0,
                                        1.0 if errors else 0.0, "None"))
            add(SAGEMAKER_NAMESPACE, "ModelSetupTime", meter.setup, "Microseconds")
            add(ENDPOINT_INSTANCE_NAMESPACE, "CPUUtilization", meter.cpu, "Percent")
            add(ENDPOINT_INSTANCE_NAMESPACE, "MemoryUtilization", meter.memory, "Percent")
        return datums
