"""An endpoint's instance count over time: what its hosting bill is made of.

The service bills an endpoint per instance-second from each instance's launch until it is
stopped, whatever traffic it serves, so the cost of an autoscaled endpoint is the integral of its
instance count. The endpoint runner records every change of that count here
(:meth:`CapacityLog.record`), and ``optml local cost`` integrates it (:func:`instance_seconds`).

One JSON line per change in ``endpoints/<name>/capacity.jsonl`` (:func:`capacity_file`)::

    {"when": 1764777600.25, "variant": "AllTraffic", "instance_type": "ml.m5.large", "count": 2}

``count`` is the number of instances of that variant *and instance type* running from ``when``
on -- launched, whether or not they answer ``/ping`` yet, until they are stopped. A record of one
(variant, instance type) leaves every other pair's count as it was: during a blue/green update
the old fleet of ``AllTraffic`` on ``ml.m5.large`` and the new one on ``ml.c5.xlarge`` are two
pairs, each recorded on its own; when both fleets have the same type, ``count`` is their sum.
The runner records 0 when it stops a pair's last instance.

The file is append-only, private (0600) and written one line per ``write``; a reader skips a
last line cut short by a crash, and refuses any other malformed line (:class:`CapacityLogError`)
rather than silently dropping instance-hours from a bill.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_mode.state import ResourceDir, append_private

CAPACITY_FILE = "capacity.jsonl"
"""The capacity log's name inside an endpoint's state directory."""

Pair = tuple[str, str]
"""A (variant name, instance type) pair: what one capacity record counts."""


class CapacityLogError(ValueError):
    """A capacity log line that is not a capacity record (other than a torn last line)."""


def capacity_file(resource: ResourceDir) -> Path:
    """Where ``resource`` (an endpoint) keeps its capacity log."""
    return resource.path / CAPACITY_FILE


@dataclass(frozen=True)
class CapacityChange:
    """From ``when`` (epoch seconds) on, ``count`` instances of ``instance_type`` run for the
    variant ``variant_name``."""

    when: float
    variant_name: str
    instance_type: str
    count: int

    @property
    def pair(self) -> Pair:
        return (self.variant_name, self.instance_type)


def _checked(when: Any, variant_name: Any, instance_type: Any, count: Any) -> CapacityChange:
    """A record whose members have the right types and values (TypeError/ValueError else)."""
    if isinstance(when, bool) or not isinstance(when, (int, float)) or not math.isfinite(when):
        raise ValueError(f"when must be a finite number of epoch seconds, got {when!r}")
    for member, value in (("variant_name", variant_name), ("instance_type", instance_type)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{member} must be a non-empty string, got {value!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")
    return CapacityChange(float(when), variant_name, instance_type, count)


class CapacityLog:
    """The writing end of one endpoint's capacity log (the endpoint runner's)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def create(self) -> None:
        """Create the log, empty, if there is none (idempotent). A runner calls this when it
        starts, before any instance: an endpoint with a log, even an empty one, has its
        instance time recorded from the start, while one without a log predates the log and is
        estimated from its config instead (:func:`local_mode.pricing.estimate.endpoint`)."""
        append_private(self.path).close()

    def record(self, variant_name: str, instance_type: str, count: int, when: float) -> None:
        """From ``when`` on, ``count`` instances of ``instance_type`` run for ``variant_name``
        (all its fleets of that type together). ValueError for a negative count, an empty name
        or a time that is not a finite number."""
        change = _checked(when, variant_name, instance_type, count)
        line = json.dumps({"when": change.when, "variant": change.variant_name,
                           "instance_type": change.instance_type, "count": change.count},
                          separators=(",", ":")) + "\n"
        with append_private(self.path) as handle:  # O_APPEND: one write, never interleaved
            handle.write(line.encode())


def read_capacity(path: Path) -> list[CapacityChange]:
    """Every record of the capacity log at ``path`` in the order written (empty when there is
    no such file). A last line without its newline is one a writer was cut off in and is
    skipped; any other line that is not a record raises :class:`CapacityLogError` naming the
    file and line."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    lines.pop()  # b"" when the file ends with a newline, else an unfinished (torn) line
    changes = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            changes.append(_checked(record.get("when"), record.get("variant"),
                                    record.get("instance_type"), record.get("count")))
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError included
            raise CapacityLogError(f"{path}: line {number}: not a capacity record: "
                                   f"{exc}") from None
    return changes


def counts_at(changes: Iterable[CapacityChange], when: float) -> dict[Pair, int]:
    """The instance count of every pair the log names, as it was at ``when`` (records at
    ``when`` included); 0 for a pair not yet launched then."""
    counts: dict[Pair, int] = {}
    for change in sorted(changes, key=lambda c: c.when):
        counts.setdefault(change.pair, 0)
        if change.when <= when:
            counts[change.pair] = change.count
    return counts


def instance_seconds(changes: Iterable[CapacityChange], start: float,
                     end: float) -> dict[Pair, float]:
    """Instance-seconds of each (variant, instance type) pair between ``start`` and ``end``:
    the integral of its count, which is 0 before the pair's first record and then the count of
    its latest record. Records are taken in time order (a stable sort, so of two records at one
    instant the one written last wins). Every pair the log names is in the result, with 0.0 if
    it ran no instance in the window; an empty window (``end <= start``) gives 0.0 for all."""
    ordered = sorted(changes, key=lambda c: c.when)
    totals: dict[Pair, float] = {change.pair: 0.0 for change in ordered}
    if end <= start:
        return totals
    current: dict[Pair, tuple[float, int]] = {}  # pair -> (since, count)
    for change in ordered:
        previous = current.get(change.pair)
        if previous is not None:
            totals[change.pair] += _overlap(previous[0], change.when, start, end) * previous[1]
        current[change.pair] = (change.when, change.count)
    for pair, (since, count) in current.items():
        totals[pair] += _overlap(since, end, start, end) * count
    return totals


def _overlap(a: float, b: float, start: float, end: float) -> float:
    """The length of [a, b] within [start, end]."""
    return max(0.0, min(b, end) - max(a, start))


__all__ = ["CAPACITY_FILE", "CapacityChange", "CapacityLog", "CapacityLogError", "Pair",
           "capacity_file", "counts_at", "instance_seconds", "read_capacity"]
