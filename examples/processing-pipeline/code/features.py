"""The customer records and the features the model sees, in one place.

The processing job cleans and featurises the raw CSV files with this module; the model's
``inference.py`` featurises the rows a batch transform sends with the very same file (train.py
copies it into the model's ``code/``), so training and scoring cannot disagree about a feature.

A raw record is ``customer_id, tenure_months, monthly_charges, contract, support_calls`` and,
in the labelled raw files, ``churned`` last. Raw data is messy: contracts are spelled in several
ways (``Month-to-Month``, ``two year``), labels as ``yes``/``no``/``1``/``0``, and some records
have a missing or impossible value; :func:`parse` normalises the first and rejects the second
with a short reason (:class:`BadRecord`), which the processing job counts.

Features (no fitted parameters, so every processing instance computes them alike on its own
share): tenure in years, log of the monthly charges, month-to-month and two-year indicators
(one-year is the baseline), support calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

COLUMNS = ("customer_id", "tenure_months", "monthly_charges", "contract", "support_calls")
LABEL = "churned"
PLAN_TERMS = ("month-to-month", "one-year", "two-year")
"""The customer's contract terms, as the cleaned data spells them."""
FEATURES = ("tenure_years", "log_monthly_charges", "month_to_month", "two_year",
            "support_calls")
LABELS = {"yes": 1, "no": 0, "1": 1, "0": 0, "true": 1, "false": 0}
MAX_TENURE_MONTHS = 240
MAX_MONTHLY_CHARGES = 1000.0


class BadRecord(ValueError):
    """A record that cannot be used; ``reason`` is a short key the processing job counts."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class Customer:
    customer_id: str
    tenure_months: int
    monthly_charges: float
    contract: str
    support_calls: int
    churned: int | None = None


def _number(text: str, column: str, low: float, high: float) -> float:
    if not text.strip():
        raise BadRecord("missing value", f"{column} is empty")
    try:
        value = float(text)
    except ValueError:
        raise BadRecord("not a number", f"{column}={text!r}") from None
    if not low <= value <= high:  # NaN fails this too
        raise BadRecord("out of range", f"{column}={text!r} is outside [{low:g}, {high:g}]")
    return value


def _whole(text: str, column: str, high: float) -> int:
    value = _number(text, column, 0, high)
    if value != int(value):
        raise BadRecord("not a number", f"{column}={text!r} is not a whole number")
    return int(value)


def normal_contract(text: str) -> str:
    """``' Month to Month'`` -> ``'month-to-month'``; BadRecord for an unknown contract."""
    contract = "-".join(text.strip().lower().replace("_", " ").replace("-", " ").split())
    if not contract:
        raise BadRecord("missing value", "contract is empty")
    if contract not in PLAN_TERMS:
        raise BadRecord("unknown contract", f"contract={text!r}")
    return contract


def parse(values: Sequence[str], *, labelled: bool) -> Customer:
    """One record's fields (a CSV row), checked and normalised."""
    width = len(COLUMNS) + (1 if labelled else 0)
    if len(values) != width:
        raise BadRecord("wrong field count", f"{len(values)} fields, expected {width}")
    customer_id = values[0].strip()
    if not customer_id:
        raise BadRecord("missing value", "customer_id is empty")
    churned = None
    if labelled:
        label = values[5].strip().lower()
        if label not in LABELS:
            raise BadRecord("missing value" if not label else "unknown label",
                            f"{LABEL}={values[5]!r}")
        churned = LABELS[label]
    return Customer(customer_id=customer_id,
                    tenure_months=_whole(values[1], "tenure_months", MAX_TENURE_MONTHS),
                    monthly_charges=_number(values[2], "monthly_charges", 0.01,
                                            MAX_MONTHLY_CHARGES),
                    contract=normal_contract(values[3]),
                    support_calls=_whole(values[4], "support_calls", 100),
                    churned=churned)


def featurise(customer: Customer) -> list[float]:
    """The model's inputs, in :data:`FEATURES` order."""
    return [customer.tenure_months / 12.0, math.log(customer.monthly_charges),
            float(customer.contract == "month-to-month"), float(customer.contract == "two-year"),
            float(customer.support_calls)]
