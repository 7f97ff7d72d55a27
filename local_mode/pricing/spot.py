"""Where a resource is priced, and a managed spot job's billable time as the service reports it.

Kept apart from the cost estimates (:mod:`local_mode.pricing.estimate`) because the training
runner needs it to record ``BillableTimeInSeconds`` as the service does, and nothing else of
pricing.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from local_mode.pricing.table import Missing, PriceTable, Quoted


def region_for(arn: str | None, given: str | None, table: PriceTable) -> tuple[str, str]:
    """The region to price a resource in, and where it came from: ``given`` (``--region``),
    else the region of its ARN unless that is local mode's own ``local``, else the table's
    default region."""
    if given:
        return given, "--region"
    parts = (arn or "").split(":")
    if len(parts) > 3 and parts[3] and parts[3] != "local":
        return parts[3], "ARN"
    return table.default_region, "default"


def spot_discount_for(instance_type: str, arn: str | None, table: PriceTable
                      ) -> Quoted | Missing:
    """The price table's managed spot saving for ``instance_type`` in the region of ``arn``
    (:func:`region_for`): the region's figure for the type, else the table's default; Missing
    when the table has neither (no figure is not a saving of 0)."""
    where, _ = region_for(arn, None, table)
    quoted = table.spot_discount(where, instance_type)
    if quoted.origin not in {file.origin for file in table.files}:
        return Missing(f"the price table has no managed spot saving for {instance_type} in "
                       f"{where} and no spot_discount_default")
    return quoted


def spot_billable_seconds(attempt_seconds: float | Decimal, instance_type: str,
                          arn: str | None, table: PriceTable) -> int | Missing:
    """A managed spot job's ``BillableTimeInSeconds`` as the service reports it: the training
    attempts' time less the table's spot saving ``d`` for its type and region,
    ``max(1, round(attempt_seconds x (1 - d)))`` (half up) for a job with any training time,
    0 for one without. The service's documented savings
    ``1 - BillableTimeInSeconds / TrainingTimeInSeconds`` then show the saving. Missing when
    the table has no spot figure for the type (:func:`spot_discount_for`)."""
    discount = spot_discount_for(instance_type, arn, table)
    if isinstance(discount, Missing):
        return discount
    seconds = Decimal(str(attempt_seconds))
    if seconds <= 0:
        return 0
    billed = (seconds * (1 - discount.value)).to_integral_value(ROUND_HALF_UP)
    return max(1, int(billed))
