"""Metric datapoints as CloudWatch stores them: one statistic set per metric and period.

CloudWatch keeps, for each metric (namespace, name, dimensions) and each period of its storage
resolution, the sample count, sum, minimum and maximum of what was published in that period; every
statistic a query asks for (Sum, Average, SampleCount, Minimum, Maximum) is computed from these
sets, over periods that are multiples of the stored one. Local mode stores the same thing: an
endpoint's router aggregates its requests in memory and appends one :class:`Datum` per metric at
the end of each period (``OPTML_LOCAL_METRIC_PERIOD_SECONDS``, the service's 60 s by default) to
``<state>/cloudwatch/endpoints/<endpoint>.jsonl`` (:func:`endpoint_metrics_file`); readers take
what is complete. The file is CloudWatch's, not the endpoint's: as on the service, an endpoint's
metrics outlive it, and an endpoint made again under the same name adds to the same metrics.

A line is written whole in one ``write`` of an append-only file, so a reader sees either all of
it or (while it is being written) a torn last line, which :func:`read_datums` skips.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from local_mode.state import NAME_RULES, append_private, make_private_dir

Dimensions = tuple[tuple[str, str], ...]
"""A metric's dimensions as (name, value) pairs sorted by name: hashable, one spelling each."""

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
"""The service's namespace of invocation metrics (per EndpointName and VariantName)."""
ENDPOINT_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
"""The service's namespace of an endpoint's instance metrics (CPU, memory)."""
TRAINING_NAMESPACE = "/aws/sagemaker/TrainingJobs"
"""The service's namespace of a training job's MetricDefinitions metrics (per Host)."""


def cloudwatch_dir(state_root: Path) -> Path:
    """Where a state directory keeps what CloudWatch would: metrics, alarms."""
    return Path(state_root) / "cloudwatch"


def endpoint_metrics_file(state_root: Path, endpoint_name: str) -> Path | None:
    """The file of an endpoint's datums; None for a name no endpoint can have (a query's
    ``EndpointName`` is the caller's text and must never become another path)."""
    if not NAME_RULES["endpoints"].accepts(endpoint_name):
        return None
    return cloudwatch_dir(state_root) / "endpoints" / f"{endpoint_name}.jsonl"


def endpoint_metrics_files(state_root: Path) -> list[Path]:
    """Every endpoint's datum file, sorted by name."""
    try:
        return sorted(p for p in (cloudwatch_dir(state_root) / "endpoints").iterdir()
                      if p.suffix == ".jsonl" and endpoint_metrics_file(state_root, p.stem) == p)
    except (FileNotFoundError, NotADirectoryError):
        return []


def dimensions_of(mapping: Mapping[str, str]) -> Dimensions:
    """``{"EndpointName": "e", "VariantName": "v"}`` as :data:`Dimensions`."""
    return tuple(sorted((str(k), str(v)) for k, v in mapping.items()))


@dataclass(frozen=True, slots=True)
class Datum:
    """The statistic set of one metric over one period starting at ``timestamp``."""

    namespace: str
    metric_name: str
    dimensions: Dimensions
    timestamp: float
    """Epoch seconds at which the period starts."""
    period: float
    """Seconds the set covers: the storage resolution it was published at."""
    sample_count: float
    sum: float
    minimum: float
    maximum: float
    unit: str = "None"

    @classmethod
    def of_values(cls, namespace: str, metric_name: str, dimensions: Dimensions,
                  timestamp: float, period: float, values: Iterable[float],
                  unit: str = "None") -> Datum:
        """The set of ``values`` (at least one)."""
        listed = list(values)
        if not listed:
            raise ValueError("a datum needs at least one value")
        return cls(namespace, metric_name, dimensions, timestamp, period, float(len(listed)),
                   math.fsum(listed), min(listed), max(listed), unit)

    def to_json(self) -> dict[str, Any]:
        return {"Namespace": self.namespace, "MetricName": self.metric_name,
                "Dimensions": dict(self.dimensions), "Timestamp": self.timestamp,
                "Period": self.period, "SampleCount": self.sample_count, "Sum": self.sum,
                "Minimum": self.minimum, "Maximum": self.maximum, "Unit": self.unit}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Datum:
        return cls(str(data["Namespace"]), str(data["MetricName"]),
                   dimensions_of(data.get("Dimensions") or {}), float(data["Timestamp"]),
                   float(data["Period"]), float(data["SampleCount"]), float(data["Sum"]),
                   float(data["Minimum"]), float(data["Maximum"]), str(data.get("Unit", "None")))


class DatumWriter:
    """Appends datums to one file (private, created on the first write), a line each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None

    def write(self, datums: Iterable[Datum]) -> None:
        lines = b"".join(json.dumps(d.to_json(), separators=(",", ":")).encode() + b"\n"
                         for d in datums)
        if not lines:
            return
        if self._file is None:
            make_private_dir(self.path.parent)
            self._file = append_private(self.path)
        self._file.write(lines)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_datums(path: Path) -> Iterator[Datum]:
    """The datums in ``path`` in the order written; none when it does not exist (yet, or any
    more); a torn or foreign line is skipped."""
    try:
        handle = path.open("rb")
    except (FileNotFoundError, NotADirectoryError):
        return
    with handle:
        for line in handle:
            if not line.endswith(b"\n"):
                return  # being written right now
            try:
                yield Datum.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue
