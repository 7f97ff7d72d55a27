"""Where a state directory's metric datapoints are, and which of them a query can need.

Three places hold datums (:class:`~local_mode.cloudwatch.datums.Datum`):

- every endpoint's ``<state_root>/cloudwatch/endpoints/<name>.jsonl``
  (:func:`~local_mode.cloudwatch.datums.endpoint_metrics_file`), written by its runner once per
  metric period and kept after the endpoint is deleted, as CloudWatch keeps them:
  ``AWS/SageMaker`` invocation metrics and ``/aws/sagemaker/Endpoints`` instance metrics, with
  dimensions ``EndpointName`` and ``VariantName``;
- every training job's MetricDefinitions series (``metrics.jsonl``, a point per matched log
  line): namespace ``/aws/sagemaker/TrainingJobs``, dimension ``Host`` = ``<job>/algo-1``,
  one datum per point at its second (the series does not say which host printed it);
- what PutMetricData published: ``<state_root>/cloudwatch/custom-metrics.jsonl``, private.

Reading is cheap to narrow: a query that names a namespace and an ``EndpointName`` (or a
``Host``) reads that one endpoint's (or job's) file and the custom metrics, not every file.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from local_mode.cloudwatch.datums import (
    ENDPOINT_INSTANCE_NAMESPACE,
    SAGEMAKER_NAMESPACE,
    TRAINING_NAMESPACE,
    Datum,
    DatumWriter,
    Dimensions,
    cloudwatch_dir,
    endpoint_metrics_file,
    endpoint_metrics_files,
    read_datums,
)
from local_mode.errors import ResourceNotFound
from local_mode.state import ResourceDir, StateStore, make_private_dir
from local_mode.training.metrics import read_series

ENDPOINT_NAMESPACES = (SAGEMAKER_NAMESPACE, ENDPOINT_INSTANCE_NAMESPACE)
TRAINING_HOST = "algo-1"
"""The host a training job's series is published under (``<job>/algo-1``)."""
TRAINING_PERIOD = 1.0
"""A training metric point is stored as a one-second statistic set of one sample."""


def custom_metrics_file(state_root: Path) -> Path:
    """Where PutMetricData's datums are kept."""
    return cloudwatch_dir(state_root) / "custom-metrics.jsonl"


def write_custom(state_root: Path, datums: Iterable[Datum]) -> None:
    """Append ``datums`` to the custom metrics (the folder and file made private)."""
    path = custom_metrics_file(state_root)
    make_private_dir(path.parent)
    writer = DatumWriter(path)
    try:
        writer.write(datums)
    finally:
        writer.close()


def custom_datums(state_root: Path) -> Iterator[Datum]:
    return read_datums(custom_metrics_file(state_root))


def endpoint_datums(state_root: Path, endpoint_name: str | None = None) -> Iterator[Datum]:
    """One endpoint's datums (every endpoint's when None), as their runners wrote them."""
    if endpoint_name is None:
        for path in endpoint_metrics_files(state_root):
            yield from read_datums(path)
        return
    named = endpoint_metrics_file(state_root, endpoint_name)
    if named is not None:
        yield from read_datums(named)


def training_datums(resource: ResourceDir) -> Iterator[Datum]:
    """One training job's MetricDefinitions series as datums (a point each; a line that is not
    a point is skipped, as a torn one may be while the job writes)."""
    try:
        series = training_points(resource.metrics_file)
    except OSError:
        return
    dimensions = (("Host", f"{resource.name}/{TRAINING_HOST}"),)
    for point in series:
        try:
            value = float(point["Value"])
            at = datetime.fromisoformat(str(point["Timestamp"])).timestamp()
            name = str(point["MetricName"])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(value):
            yield Datum.of_values(TRAINING_NAMESPACE, name, dimensions, float(math.floor(at)),
                                  TRAINING_PERIOD, [value])


def training_points(path: Path) -> list[dict[str, Any]]:
    """A training job's series (:func:`local_mode.training.metrics.read_series`), read while
    the job may be writing its last line: a line not yet whole is left out."""
    try:
        return read_series(path)
    except ValueError:
        return _whole_points(path)


def _whole_points(path: Path) -> list[dict[str, Any]]:
    points = []
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                with contextlib.suppress(ValueError):
                    point = json.loads(line)
                    if isinstance(point, dict):
                        points.append(point)
    except OSError:
        return []
    return points


def _resources(store: StateStore, kind: str, name: str | None) -> list[ResourceDir]:
    if name is None:
        return store.list(kind)
    try:
        return [store.get(kind, name)]
    except ResourceNotFound:
        return []


def datums(store: StateStore, namespace: str | None = None,
           dimensions: Dimensions | None = None) -> Iterator[Datum]:
    """The datums a query of ``namespace`` (None: any) with ``dimensions`` (None: any) can need,
    from every place that may hold them; the caller still filters by metric."""
    named = dict(dimensions or ())
    if namespace is None or namespace in ENDPOINT_NAMESPACES:
        yield from endpoint_datums(store.root, named.get("EndpointName"))
    if namespace is None or namespace == TRAINING_NAMESPACE:
        host = named.get("Host")
        job = host.rpartition("/")[0] if host is not None else None
        if host is None or job:
            for resource in _resources(store, "training-jobs", job):
                yield from training_datums(resource)
    yield from custom_datums(store.root)


__all__ = ["ENDPOINT_NAMESPACES", "TRAINING_HOST", "TRAINING_PERIOD", "custom_datums",
           "custom_metrics_file", "datums", "endpoint_datums", "training_datums",
           "training_points", "write_custom"]
