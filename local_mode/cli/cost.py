"""``optml local cost [NAME]``: what each local job, transform and endpoint would cost on the
service, from the price table (:mod:`local_mode.pricing`).

Every training job, processing job, transform job and endpoint of the state directory (or those
called NAME; ``--kind`` to keep some kinds), each with its cost (so far, while it runs), an
endpoint's cost per hour at its current instance count, and the totals. A cost the table cannot
give (``local`` instances, a type or region it lacks) is ``unknown`` with the reason, never 0.

``-o json`` is ``{"PriceTable": {...}, "Resources": [...], "Total": {...}}`` with amounts as
numbers (US dollars) and a resource's ``Kind`` its command group, as ``ps`` prints it; tables
print the reasons and the table's date and source on stderr. A managed spot training job also
has ``Spot``: its ``TrainingTimeInSeconds`` and ``BillableTimeInSeconds`` (already less the spot
saving, as the service reports it), ``BilledSeconds`` (the seconds billed: the same),
``Discount`` and ``DiscountSource`` (the price table's spot saving for the type: the figure
local mode took off the attempts' time, not applied again), ``OnDemandCost`` (the job without
spot), ``BillableCost`` and ``Savings`` (``1 - Billable / Training``, the service's formula).

Like every module of the CLI, this one imports only click up front.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from local_mode.cli.errors import EXIT_INVALID, fail
from local_mode.cli.kinds import BY_COMMAND, in_words
from local_mode.cli.options import complete_names, sagemaker_client, settings, state_dir_option
from local_mode.cli.output import output_option, print_json
from local_mode.cli.table import print_table

if TYPE_CHECKING:
    from datetime import datetime

    from local_mode.pricing.estimate import Charge, Estimate, Totals
    from local_mode.pricing.table import PriceTable
    from local_mode.sagemaker import SageMakerClient

COSTED = ("training-jobs", "processing-jobs", "transform-jobs", "endpoints")
"""The kinds that cost money, in the order they are shown."""


def complete_costed(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of NAME: the names of every kind ``cost`` prices, each once."""
    found: dict[str, Any] = {}
    for kind in COSTED:
        for item in complete_names(kind)(ctx, param, incomplete):
            found.setdefault(item.value, item)
    return list(found.values())


def estimate_of(client: SageMakerClient, kind: str, name: str, table: PriceTable,
                now: datetime, region: str | None) -> Estimate | None:
    """The estimate of one resource (None if it went away meanwhile)."""
    from local_mode.endpoints.capacity import (
        CapacityChange,
        CapacityLogError,
        capacity_file,
        read_capacity,
    )
    from local_mode.errors import ResourceNotFound
    from local_mode.pricing import estimate
    from local_mode.pricing.table import Missing

    described = BY_COMMAND[kind].stored(client, name)
    if not described:
        return None
    if kind == "training-jobs":
        return estimate.training_job(described, table, now, region)
    if kind == "processing-jobs":
        return estimate.processing_job(described, table, now, region)
    if kind == "transform-jobs":
        return estimate.transform_job(described, table, now, region)
    config = None
    with contextlib.suppress(ResourceNotFound, FileNotFoundError):  # deleted: said in a note
        config = client.store.get("endpoint-configs",
                                  str(described.get("EndpointConfigName"))).describe()
    capacity: list[CapacityChange] | Missing | None
    try:
        path = capacity_file(client.store.get("endpoints", name))
        capacity = read_capacity(path) if path.exists() else None
    except (ResourceNotFound, FileNotFoundError):
        return None
    except CapacityLogError as exc:
        capacity = Missing(f"its capacity log cannot be read: {exc}")
    return estimate.endpoint(described, config, capacity, table, now, region)


# -- JSON ----------------------------------------------------------------------------------------
def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _charge_json(charge: Charge) -> dict[str, Any]:
    from local_mode.pricing.table import Missing

    body: dict[str, Any] = {"Item": charge.item, "Usage": charge.usage}
    for key, value in (("VariantName", charge.variant_name),
                       ("InstanceType", charge.instance_type),
                       ("InstanceCount", charge.instance_count),
                       ("VolumeSizeInGB", charge.volume_gb)):
        if value is not None:
            body[key] = value
    if charge.item == "storage":
        body["GBSeconds"] = float(charge.quantity)
    else:
        body["InstanceSeconds"] = float(charge.quantity)
    if isinstance(charge.price, Missing):
        body.update(Price=None, Cost=None, Unknown=charge.price.reason)
    else:
        body.update(Price=float(charge.price.value),
                    PriceUnit="USD per GB-month" if charge.item == "storage"
                    else "USD per instance-hour",
                    PriceSource=charge.price.origin, Cost=float(charge.cost or 0))
    return body


def estimate_json(estimate: Estimate) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Kind": estimate.kind, "Name": estimate.name, "Status": estimate.status,
        "Region": estimate.region, "RegionFrom": estimate.region_from,
        "Running": estimate.running, "StartTime": estimate.start, "EndTime": estimate.end,
        "Cost": _number(estimate.cost), "InstanceCost": _number(estimate.instance_cost),
        "StorageCost": _number(estimate.storage_cost), "Unknown": list(estimate.unknown),
        "Charges": [_charge_json(c) for c in estimate.charges], "Notes": list(estimate.notes)}
    if estimate.spot is not None:
        spot = estimate.spot
        body["Spot"] = {"TrainingTimeInSeconds": float(spot.training_seconds),
                        "BillableTimeInSeconds": float(spot.billable_seconds),
                        "Discount": float(spot.discount), "DiscountSource": spot.discount_origin,
                        "BilledSeconds": float(spot.billed_seconds),
                        "OnDemandCost": _number(spot.on_demand_cost),
                        "BillableCost": _number(estimate.instance_cost),
                        "Savings": float(spot.savings)}
    if estimate.kind == "endpoints":
        body["CostPerHour"] = _number(estimate.per_hour) if estimate.running else 0.0
        body["CurrentInstances"] = [
            {"VariantName": r.variant_name, "InstanceType": r.instance_type,
             "InstanceCount": r.count, "CostPerHour": _number(r.per_hour)}
            for r in estimate.rates]
    return body


def totals_json(totals: Totals) -> dict[str, Any]:
    return {"Cost": float(totals.cost), "Complete": totals.complete,
            "Unpriced": [f"{e.kind}/{e.name}" for e in totals.estimates if e.cost is None],
            "CostPerHour": _number(totals.per_hour)}


# -- tables --------------------------------------------------------------------------------------
def money(value: Decimal | None) -> str:
    """US dollars as a person reads them: cents from a dollar up, four significant digits
    below (a short local job costs fractions of a cent)."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0.00"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    # four significant digits, never in exponent notation: $0.002187, $0.00006552
    places = 3 - math.floor(math.log10(abs(float(value))))
    return f"${float(value):.{max(2, places)}f}"


def _instances(estimate: Estimate) -> str:
    if estimate.kind == "endpoints":
        if not estimate.running:
            return "-"
        return ", ".join(f"{r.count} x {r.instance_type or '?'}" for r in estimate.rates) or "0"
    charge = next((c for c in estimate.charges if c.item == "instances"), None)
    if charge is None:
        return "-"
    return f"{charge.instance_count} x {charge.instance_type}"


def _instance_hours(estimate: Estimate) -> str:
    seconds = sum((c.quantity for c in estimate.charges if c.item == "instances"), Decimal(0))
    return f"{float(seconds / 3600):.4f}"


def print_estimates(estimates: Sequence[Estimate], totals: Totals, table: PriceTable) -> None:
    rows = [[in_words(e.kind), e.name, e.status, _instances(e), _instance_hours(e),
             money(e.cost) + (" so far" if e.running and e.cost is not None else ""),
             money(e.per_hour) if e.kind == "endpoints" and e.running else "-"]
            for e in estimates]
    total = money(totals.cost) + ("" if totals.complete else " + unknown")
    rows.append(["TOTAL", "", "", "", "", total,
                 money(totals.per_hour) if any(e.rates for e in estimates) else "-"])
    print_table(("KIND", "NAME", "STATUS", "INSTANCES", "INSTANCE-HOURS", "COST", "PER HOUR"),
                rows)
    for estimate in estimates:
        for reason in estimate.unknown:
            click.echo(f"{estimate.name}: unknown: {reason}", err=True)
        for note in estimate.notes:
            click.echo(f"{estimate.name}: {note}", err=True)
        if estimate.spot is not None and estimate.spot.on_demand_cost is not None:
            click.echo(f"{estimate.name}: on demand {money(estimate.spot.on_demand_cost)}, "
                       f"saving {float(estimate.spot.savings):.0%}", err=True)
    click.echo(_table_line(table), err=True)


def _table_line(table: PriceTable) -> str:
    packaged = table.packaged
    line = (f"Prices: optml's table {packaged.version} of {packaged.date} (on-demand, USD; "
            f"written down without checking the live pricing page: check current prices, see "
            f"docs/cost.md)")
    if table.override is not None:
        line += f", with {table.override.origin} over it"
    return line


# -- the command ---------------------------------------------------------------------------------
@click.command("cost", short_help="What each job, transform and endpoint would cost.")
@click.argument("name", required=False, shell_complete=complete_costed)
@click.option("--kind", "kinds", multiple=True, type=click.Choice(COSTED),
              help="Only these kinds (repeatable; default: all four).")
@click.option("--region", default=None, metavar="REGION",
              help="Price every resource in REGION (default: the region of its ARN, else the "
                   "price table's default region, us-east-1).")
@output_option("table", json_is='{"PriceTable": {...}, "Resources": [...], "Total": {...}}')
@state_dir_option
def cost(name: str | None, kinds: tuple[str, ...], region: str | None, output: str,
         state_dir: Path | None) -> None:
    """Estimate what every training job, processing job, transform job and endpoint of the
    state directory (or those called NAME) would cost on the service: on-demand prices of the
    price table (OPTML_LOCAL_PRICES_FILE merged over optml's own) x billable instance time,
    plus ML storage; an endpoint's cost so far and per hour at its current instance count.
    Estimates only: see docs/cost.md for what is and is not counted."""
    from local_mode.pricing.estimate import Totals
    from local_mode.pricing.table import PriceTableError, load_prices
    from local_mode.state import now

    try:
        table = load_prices(settings().local.prices_file)
    except PriceTableError as exc:
        fail(str(exc), EXIT_INVALID)
    client = sagemaker_client(state_dir)
    wanted = [k for k in COSTED if not kinds or k in kinds]
    moment = now()
    estimates = []
    for kind in wanted:
        names = [r.name for r in client.store.list(kind)] if name is None else \
            ([name] if _exists(client, kind, name) else [])
        for each in names:
            found = estimate_of(client, kind, each, table, moment, region)
            if found is not None:
                estimates.append(found)
    if name is not None and not estimates:
        words = [in_words(k) for k in wanted]
        what = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
        fail(f"no local {what} named {name!r} in {client.store.root}")
    totals = Totals(tuple(estimates))
    if output == "json":
        print_json({"PriceTable": table.describe(),
                    "Resources": [estimate_json(e) for e in estimates],
                    "Total": totals_json(totals)})
        return
    if not estimates:
        click.echo(f"no jobs, transforms or endpoints in {client.store.root}", err=True)
        return
    print_estimates(estimates, totals, table)


def _exists(client: SageMakerClient, kind: str, name: str) -> bool:
    from local_mode.errors import ResourceNotFound

    try:
        client.store.get(kind, name)
    except ResourceNotFound:
        return False
    return True


COMMANDS = (cost,)
"""``cost``, attached to ``optml local`` by :mod:`local_mode.cli`."""

__all__ = ["COMMANDS", "COSTED", "cost", "estimate_json", "estimate_of", "money",
           "totals_json"]
