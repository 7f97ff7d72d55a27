"""What a job or an endpoint would cost on the service, from its description and the price table.

Pure functions of what they are given (a description, a price table, an endpoint's capacity
records, the time now), so every figure can be checked by hand:

- a **training job**: hourly price x ``BillableTimeInSeconds`` x ``InstanceCount``, plus its ML
  storage (``VolumeSizeInGB`` per instance for ``TrainingTimeInSeconds``). A managed spot job's
  ``BillableTimeInSeconds`` is already what the service bills, as the service reports it: the
  training attempts' time less the spot saving (:func:`spot_billable_seconds`, which local
  mode's runner records), so it is billed as it stands, never discounted again; the on-demand
  cost is the price x ``TrainingTimeInSeconds`` x count, and the saving is
  ``1 - BillableTimeInSeconds / TrainingTimeInSeconds``, the service's documented formula;
- a **processing job** and a **transform job**: hourly price x instance count x the time from
  ``ProcessingStartTime`` / ``TransformStartTime`` to the matching end time (to now while it
  runs), plus a processing job's ML storage;
- an **endpoint**: each (variant, instance type)'s instance-seconds from its capacity log
  (:mod:`local_mode.endpoints.capacity`; from creation to now while it runs) x the hosting
  price, and its cost per hour at its current instance count. An endpoint without a capacity
  log (made before optml recorded one) is estimated from its config's ``InitialInstanceCount``
  since ``CreationTime``, and says so.

A figure the table does not have (``local`` instances, a type or region it does not list) is
never taken as 0: the charge says why it is unknown and so does the estimate's total.
Amounts are :class:`~decimal.Decimal` US dollars, computed exactly from the table's figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from local_mode import runners
from local_mode.endpoints.capacity import CapacityChange, counts_at, instance_seconds
from local_mode.pricing.spot import region_for
from local_mode.pricing.table import Missing, Price, PriceTable

SECONDS_PER_HOUR = Decimal(3600)
HOURS_PER_MONTH = Decimal(730)
"""A GB-month of storage as GB-hours: AWS's pricing convention of 730 hours a month."""
JOB_LIVE = runners.TRAINING.live
"""A job's statuses while it runs (the same for the three kinds of job)."""
ENDPOINT_LIVE = runners.ENDPOINTS.live
"""An endpoint's statuses while its instances run."""

TRAINING, PROCESSING, TRANSFORM, ENDPOINT = ("training-jobs", "processing-jobs",
                                             "transform-jobs", "endpoints")
"""The kinds estimated, named as the state directory and the CLI name them."""


@dataclass(frozen=True)
class Charge:
    """One line of a bill: instance time of one type, or ML storage."""

    item: str
    """``instances`` or ``storage``."""
    usage: str
    """``training``, ``hosting``, ``transform`` or ``processing``."""
    quantity: Decimal
    """Instance-seconds (instances) or GB-seconds (storage)."""
    price: Price | Missing
    """USD per instance-hour or per GB-month, with where it came from; or why there is none."""
    instance_type: str | None = None
    instance_count: int | None = None
    """Instances billed at once, when that is one number (jobs; an endpoint's varies)."""
    variant_name: str | None = None
    volume_gb: int | None = None

    @property
    def cost(self) -> Decimal | None:
        """USD; None when the price is unknown (never 0 for want of a price)."""
        if isinstance(self.price, Missing):
            return None
        if self.item == "storage":
            return self.price.value * self.quantity / (HOURS_PER_MONTH * SECONDS_PER_HOUR)
        return self.price.value * self.quantity / SECONDS_PER_HOUR

    @property
    def unknown(self) -> str | None:
        return self.price.reason if isinstance(self.price, Missing) else None


@dataclass(frozen=True)
class SpotSaving:
    """A managed spot training job's saving, as the service reports it."""

    training_seconds: Decimal
    """``TrainingTimeInSeconds`` (the time so far while it runs)."""
    billable_seconds: Decimal
    """``BillableTimeInSeconds``: the time the service bills, the spot saving already taken
    off (while the job runs, the time so far less the table's spot saving: what it would
    record if it ended now)."""
    discount: Decimal
    """The price table's spot saving for the type where the job is priced (the type's figure
    or the table's default): the figure local mode takes off the attempts' time to record
    ``BillableTimeInSeconds``. Shown for reference, not applied again."""
    discount_origin: str
    billed_seconds: Decimal
    """The seconds billed: ``BillableTimeInSeconds`` as it stands (equal to
    :attr:`billable_seconds`; kept as its own figure for results that show it)."""
    on_demand_cost: Decimal | None
    """Price x training seconds x count: the same job without spot."""

    @property
    def savings(self) -> Decimal:
        """``1 - billable / training``, the service's own formula (0 for a job with no
        training time yet)."""
        if self.training_seconds <= 0:
            return Decimal(0)
        return 1 - self.billed_seconds / self.training_seconds


@dataclass(frozen=True)
class Rate:
    """What one (variant, instance type) of an endpoint costs per hour at its current count."""

    variant_name: str
    instance_type: str | None
    count: int
    price: Price | Missing

    @property
    def per_hour(self) -> Decimal | None:
        if isinstance(self.price, Missing):
            return None
        return self.price.value * self.count


@dataclass(frozen=True)
class Estimate:
    """What one job or endpoint would cost."""

    kind: str
    name: str
    status: str
    region: str
    region_from: str
    """``--region``, ``ARN`` (the resource's own) or ``default`` (the table's)."""
    running: bool
    """Still running: the cost so far, up to ``end`` (now)."""
    start: datetime | None
    end: datetime | None
    charges: tuple[Charge, ...]
    spot: SpotSaving | None = None
    rates: tuple[Rate, ...] = ()
    """An endpoint's cost per hour at its current instance counts (empty when not running)."""
    notes: tuple[str, ...] = ()

    def _total(self, item: str | None) -> Decimal | None:
        return known_sum(c.cost for c in self.charges if item is None or c.item == item)

    @property
    def instance_cost(self) -> Decimal | None:
        return self._total("instances")

    @property
    def storage_cost(self) -> Decimal | None:
        return self._total("storage")

    @property
    def cost(self) -> Decimal | None:
        """Every charge together; None when any of them is unknown."""
        return self._total(None)

    @property
    def unknown(self) -> tuple[str, ...]:
        """Why a part of the cost is unknown (each reason once)."""
        reasons = [c.unknown for c in self.charges if c.unknown] + \
            [r.price.reason for r in self.rates if isinstance(r.price, Missing)]
        return tuple(dict.fromkeys(reasons))

    @property
    def per_hour(self) -> Decimal | None:
        """An endpoint's cost per hour now (0 when it runs no instance); None if unknown."""
        return known_sum(rate.per_hour for rate in self.rates)


# -- shared pieces -------------------------------------------------------------------------------
def seconds_between(start: datetime, end: datetime) -> Decimal:
    """``end - start`` in seconds, exactly (microseconds included); 0 if negative."""
    delta: timedelta = end - start
    exact = Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 10**6
    return max(exact, Decimal(0))


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _storage(table: PriceTable, region: str, usage: str, volume_gb: Any, count: int,
             seconds: Decimal, **extra: Any) -> list[Charge]:
    """The ML storage charge of ``count`` volumes of ``volume_gb`` for ``seconds`` (none
    without a volume)."""
    volume = _int(volume_gb, 0)
    if volume <= 0:
        return []
    return [Charge("storage", usage, Decimal(volume) * count * seconds,
                   table.storage_price(region), instance_count=count, volume_gb=volume,
                   **extra)]


def _job_window(description: Mapping[str, Any], start_member: str, end_member: str,
                now: datetime) -> tuple[datetime | None, datetime | None, bool, list[str]]:
    """A job's start, end (now while it runs), whether it runs, and what to note."""
    status = str(description.get(_status_member(description)) or "")
    running = status in JOB_LIVE
    start, end = description.get(start_member), description.get(end_member)
    notes = []
    if running:
        end = now
        notes.append("still running: the cost so far")
    elif start is not None and end is None:
        end = description.get("LastModifiedTime") or start
        notes.append(f"no {end_member}: counted to its last change")
    return start, end, running, notes


def _status_member(description: Mapping[str, Any]) -> str:
    return next((k for k in ("TrainingJobStatus", "ProcessingJobStatus", "TransformJobStatus",
                             "EndpointStatus") if k in description), "")


# -- each kind -----------------------------------------------------------------------------------
def training_job(description: Mapping[str, Any], table: PriceTable, now: datetime,
                 region: str | None = None) -> Estimate:
    """A training job (its DescribeTrainingJob response; local mode's members may be there)."""
    resources = description.get("ResourceConfig") or {}
    instance_type = str(resources.get("InstanceType") or "local")
    count = _int(resources.get("InstanceCount"), 1)
    where, region_from = region_for(description.get("TrainingJobArn"), region, table)
    start, end, running, notes = _job_window(description, "TrainingStartTime",
                                             "TrainingEndTime", now)
    training = description.get("TrainingTimeInSeconds")
    billable = description.get("BillableTimeInSeconds")
    price = table.instance_price(where, "training", instance_type)
    spot_job = bool(description.get("EnableManagedSpotTraining"))
    discount = table.spot_discount(where, instance_type)
    if running or training is None or billable is None:
        elapsed = seconds_between(start, end) if start is not None and end is not None \
            else Decimal(0)
        training_s, billable_s = elapsed, elapsed
        if spot_job:  # what the runner would record if it ended now
            billable_s = elapsed * (1 - discount.value)
        if not running:
            price = Missing("the job ended without its TrainingTimeInSeconds and "
                            "BillableTimeInSeconds") if isinstance(price, Price) else price
    else:
        training_s, billable_s = Decimal(training), Decimal(billable)
    spot = None
    billed = billable_s
    if spot_job:
        spot = SpotSaving(training_s, billable_s, discount.value, discount.origin, billed,
                          None if isinstance(price, Missing)
                          else price.value * training_s * count / SECONDS_PER_HOUR)
        notes.append(f"managed spot: billed {_plain(billed)} s of {_plain(training_s)} s, "
                     f"a {_plain(round(spot.savings * 100, 1))}% saving (price table: "
                     f"{_plain(discount.value * 100)}%)")
    charges = [Charge("instances", "training", billed * count, price,
                      instance_type=instance_type, instance_count=count),
               *_storage(table, where, "training", resources.get("VolumeSizeInGB"), count,
                         training_s, instance_type=instance_type)]
    return Estimate(TRAINING, str(description.get("TrainingJobName", "")),
                    str(description.get("TrainingJobStatus", "")), where, region_from, running,
                    start, end, tuple(charges), spot, notes=tuple(notes))


def processing_job(description: Mapping[str, Any], table: PriceTable, now: datetime,
                   region: str | None = None) -> Estimate:
    """A processing job (its DescribeProcessingJob response)."""
    cluster = (description.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    instance_type = str(cluster.get("InstanceType") or "local")
    count = _int(cluster.get("InstanceCount"), 1)
    where, region_from = region_for(description.get("ProcessingJobArn"), region, table)
    start, end, running, notes = _job_window(description, "ProcessingStartTime",
                                             "ProcessingEndTime", now)
    seconds = seconds_between(start, end) if start is not None and end is not None \
        else Decimal(0)
    charges = [Charge("instances", "processing", seconds * count,
                      table.instance_price(where, "processing", instance_type),
                      instance_type=instance_type, instance_count=count),
               *_storage(table, where, "processing", cluster.get("VolumeSizeInGB"), count,
                         seconds, instance_type=instance_type)]
    return Estimate(PROCESSING, str(description.get("ProcessingJobName", "")),
                    str(description.get("ProcessingJobStatus", "")), where, region_from,
                    running, start, end, tuple(charges), notes=tuple(notes))


def transform_job(description: Mapping[str, Any], table: PriceTable, now: datetime,
                  region: str | None = None) -> Estimate:
    """A batch transform job (its DescribeTransformJob response)."""
    resources = description.get("TransformResources") or {}
    instance_type = str(resources.get("InstanceType") or "local")
    count = _int(resources.get("InstanceCount"), 1)
    where, region_from = region_for(description.get("TransformJobArn"), region, table)
    start, end, running, notes = _job_window(description, "TransformStartTime",
                                             "TransformEndTime", now)
    seconds = seconds_between(start, end) if start is not None and end is not None \
        else Decimal(0)
    charges = [Charge("instances", "transform", seconds * count,
                      table.instance_price(where, "transform", instance_type),
                      instance_type=instance_type, instance_count=count)]
    return Estimate(TRANSFORM, str(description.get("TransformJobName", "")),
                    str(description.get("TransformJobStatus", "")), where, region_from,
                    running, start, end, tuple(charges), notes=tuple(notes))


def endpoint(description: Mapping[str, Any], config: Mapping[str, Any] | None,
             capacity: Sequence[CapacityChange] | Missing | None, table: PriceTable,
             now: datetime, region: str | None = None) -> Estimate:
    """An endpoint: its DescribeEndpoint response, its current config's
    DescribeEndpointConfig response (None if it is gone), and its capacity records (None when
    it has no capacity log; :class:`Missing` when the log cannot be read: then its instance
    time, and so its cost, is unknown)."""
    status = str(description.get("EndpointStatus", ""))
    running = status in ENDPOINT_LIVE
    where, region_from = region_for(description.get("EndpointArn"), region, table)
    start = description.get("CreationTime")
    notes: list[str] = []
    variants = {str(v.get("VariantName")): v
                for v in (config or {}).get("ProductionVariants") or []}
    last = datetime.fromtimestamp(max(c.when for c in capacity), tz=timezone.utc) \
        if capacity and not isinstance(capacity, Missing) else None
    if running:
        end: datetime | None = now
        notes.append("still running: the cost so far")
    else:
        candidates = [t for t in (description.get("LastModifiedTime"), last) if t is not None]
        end = max(candidates) if candidates else start
    charges: list[Charge] = []
    rates: list[Rate] = []
    if start is None or end is None:
        pass
    elif isinstance(capacity, Missing):
        charges.append(Charge("instances", "hosting", Decimal(0), capacity))
    elif capacity is not None:
        seconds = instance_seconds(capacity, start.timestamp(), end.timestamp())
        for (variant, instance_type), used in seconds.items():
            charges.append(Charge("instances", "hosting", Decimal(repr(used)),
                                  table.instance_price(where, "hosting", instance_type),
                                  instance_type=instance_type, variant_name=variant))
            spec = variants.get(variant) or {}
            if spec.get("InstanceType") == instance_type:
                charges += _storage(table, where, "hosting", spec.get("VolumeSizeInGB"), 1,
                                    Decimal(repr(used)), instance_type=instance_type,
                                    variant_name=variant)
        if running:
            rates = [Rate(variant, instance_type, count,
                          table.instance_price(where, "hosting", instance_type))
                     for (variant, instance_type), count in
                     counts_at(capacity, now.timestamp()).items() if count > 0]
    else:
        if config is None:
            notes.append("its endpoint config is gone: instances unknown")
        else:
            notes.append("no capacity log: assumed each variant's InitialInstanceCount since "
                         "CreationTime")
        current = {str(v.get("VariantName")): _int(v.get("CurrentInstanceCount"), 0)
                   for v in description.get("ProductionVariants") or []}
        elapsed = seconds_between(start, end)
        for variant, spec in variants.items():
            price = _variant_price(table, where, spec)
            count = _int(spec.get("InitialInstanceCount"), 1)
            instance_type = spec.get("InstanceType")
            charges.append(Charge("instances", "hosting", elapsed * count, price,
                                  instance_type=instance_type, instance_count=count,
                                  variant_name=variant))
            charges += _storage(table, where, "hosting", spec.get("VolumeSizeInGB"), count,
                                elapsed, instance_type=instance_type, variant_name=variant)
            if running and current.get(variant, count) > 0:
                rates.append(Rate(variant, instance_type, current.get(variant, count), price))
    return Estimate(ENDPOINT, str(description.get("EndpointName", "")), status, where,
                    region_from, running, start, end, tuple(charges), rates=tuple(rates),
                    notes=tuple(notes))


def _variant_price(table: PriceTable, region: str, spec: Mapping[str, Any]) -> Price | Missing:
    if spec.get("ServerlessConfig") and not spec.get("InstanceType"):
        return Missing("a serverless variant is billed per request and compute time, which "
                       "optml does not estimate")
    return table.instance_price(region, "hosting", str(spec.get("InstanceType") or "local"))


def known_sum(amounts: Iterable[Decimal | None]) -> Decimal | None:
    """The amounts added up, or None when any of them is unknown (never a partial sum)."""
    total = Decimal(0)
    for amount in amounts:
        if amount is None:
            return None
        total += amount
    return total


def _plain(value: Decimal) -> str:
    """A number as a person writes it: no exponent, no trailing zeros."""
    return f"{value.normalize():f}"


@dataclass(frozen=True)
class Totals:
    """Several estimates together."""

    estimates: tuple[Estimate, ...]

    @property
    def cost(self) -> Decimal:
        """The known costs together (see :attr:`complete`)."""
        return sum((e.cost for e in self.estimates if e.cost is not None), Decimal(0))

    @property
    def complete(self) -> bool:
        """Every estimate's cost is known."""
        return all(e.cost is not None for e in self.estimates)

    @property
    def per_hour(self) -> Decimal | None:
        """What the running endpoints cost per hour together; None if any rate is unknown."""
        return known_sum(estimate.per_hour for estimate in self.estimates)


__all__ = ["ENDPOINT", "ENDPOINT_LIVE", "HOURS_PER_MONTH", "JOB_LIVE", "PROCESSING",
           "SECONDS_PER_HOUR", "TRAINING", "TRANSFORM", "Charge", "Estimate", "Rate",
           "SpotSaving", "Totals", "endpoint", "processing_job", "seconds_between",
           "training_job", "transform_job"]
