"""``optml local metrics NAME``: a training job's or an endpoint's metrics, printed or plotted.

For a training job, the points its MetricDefinitions extracted from its log (one row each), as
the first releases printed them. For an endpoint, the metrics the service publishes for it,
per period and variant, from the datapoints its router stores
(:mod:`local_mode.cloudwatch.datums`): ``AWS/SageMaker`` Invocations, InvocationsPerInstance,
Invocation4XXErrors and Invocation5XXErrors (Sum), ModelLatency, OverheadLatency and
ModelSetupTime (Average), and ``/aws/sagemaker/Endpoints`` CPUUtilization and MemoryUtilization
(Average). ``-o json`` prints them as GetMetricData returns them (one result per metric and
variant); ``--plot`` draws each over time (:mod:`local_mode.plot`).

Like every CLI module it imports only click up front; the state store and the queries load
inside the command.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from local_mode.cli.errors import EXIT_FAILED, EXIT_INVALID, fail
from local_mode.cli.kinds import ENDPOINTS, TRAINING_JOBS
from local_mode.cli.options import sagemaker_client, settings, state_dir_option
from local_mode.cli.output import FORMATS, json_default
from local_mode.cli.table import print_table

if TYPE_CHECKING:
    from local_mode.cloudwatch.datums import Datum
    from local_mode.cloudwatch.query import MetricQuery
    from local_mode.state import ResourceDir

ENDPOINT_STATISTICS = {
    "Invocations": "Sum", "InvocationsPerInstance": "Sum", "Invocation4XXErrors": "Sum",
    "Invocation5XXErrors": "Sum", "ModelLatency": "Average", "OverheadLatency": "Average",
    "ModelSetupTime": "Average", "CPUUtilization": "Average", "MemoryUtilization": "Average"}
"""Each endpoint metric's statistic as the service's console shows it, in display order (a
metric not named here is shown by its Average, after these)."""
DEFAULT_ENDPOINT_SINCE = "1h"
KINDS = ("auto", "training-job", "endpoint")


def _complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of NAME: training jobs and endpoints."""
    from click.shell_completion import CompletionItem

    from local_mode.state import StateStore
    from toolkit.errors import OptmlError
    from toolkit.settings import Settings

    try:
        root = ctx.params.get("state_dir") or Settings.from_environ().local.state_dir
        store = StateStore(Path(root))
        names = {r.name for kind in ("training-jobs", "endpoints") for r in store.list(kind)}
    except (OptmlError, OSError):
        return []
    return [CompletionItem(n) for n in sorted(names) if n.startswith(incomplete)]


@click.command("metrics", short_help="Print or plot a training job's or an endpoint's metrics.")
@click.argument("name", shell_complete=_complete)
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also draw the series into this PNG (needs optml[plot]).")
@click.option("-o", "--output", "output", type=click.Choice(FORMATS), default="table",
              show_default=True,
              help="table: one row per point (a job) or per period, variant and metric (an "
                   "endpoint); json: JSON Lines of points (a job), GetMetricData's result (an "
                   "endpoint).")
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Same as -o json.")
@click.option("--since", default=None,
              help="Only what happened since: a duration back from now (10m, 2h, 1d) or an "
                   f"ISO 8601 time (default: all of a job's points, the last "
                   f"{DEFAULT_ENDPOINT_SINCE} of an endpoint's).")
@click.option("--period", type=click.IntRange(min=1), default=None,
              help="An endpoint's metrics per this many seconds: 1, 5, 10, 30 or a multiple "
                   "of 60, as CloudWatch takes (default: the period they are stored at).")
@click.option("--kind", type=click.Choice(KINDS), default="auto", show_default=True,
              help="What NAME is, when a training job and an endpoint share it.")
@state_dir_option
def metrics_command(name: str, plot_file: Path | None, output: str, as_json: bool,
                    since: str | None, period: int | None, kind: str,
                    state_dir: Path | None) -> None:
    """Print (or plot) NAME's metrics: a training job's MetricDefinitions points, or an
    endpoint's invocation and instance metrics per period and variant."""
    from local_mode.cloudwatch.datums import endpoint_metrics_file
    from local_mode.cloudwatch.query import valid_period

    if plot_file is not None and not plot_file.parent.is_dir():
        fail(f"--plot: the directory {str(plot_file.parent)!r} does not exist", EXIT_INVALID)
    if period is not None and not valid_period(period):
        fail(f"--period must be 1, 5, 10, 30 or a multiple of 60 seconds, got {period}",
             EXIT_INVALID)
    from local_mode.errors import ResourceNotFound

    client = sagemaker_client(state_dir)
    found: dict[str, ResourceDir | None] = {}
    for choice, store_kind in (("training-job", TRAINING_JOBS.command),
                               ("endpoint", ENDPOINTS.command)):
        if kind in ("auto", choice):
            with contextlib.suppress(ResourceNotFound):
                found[choice] = client.store.get(store_kind, name)
    if "endpoint" not in found and kind in ("auto", "endpoint"):
        kept = endpoint_metrics_file(client.store.root, name)  # a deleted endpoint's stay
        if kept is not None and kept.is_file():
            found["endpoint"] = None
    if not found:
        what = {"auto": f"training job named {name!r} in {client.store.root} (nor an "
                        "endpoint)",
                "training-job": f"training job named {name!r} in {client.store.root}",
                "endpoint": f"endpoint named {name!r} in {client.store.root}"}[kind]
        fail(f"no local {what}")
    if len(found) > 1:
        fail(f"both a training job and an endpoint are named {name!r}: choose one with "
             "--kind training-job or --kind endpoint", EXIT_INVALID)
    from local_mode.cli.logs import parse_since

    start = parse_since(since).timestamp() if since is not None else None
    output = "json" if as_json else output
    job = found.get("training-job")
    if job is not None:
        _training(name, job, plot_file, output, start)
    else:
        if start is None:
            start = parse_since(DEFAULT_ENDPOINT_SINCE).timestamp()
        _endpoint(name, client.store.root, plot_file, output, start, period)


def _plot(points: Sequence[dict[str, Any]], plot_file: Path, title: str) -> None:
    from local_mode.plot import PlotExtraMissing, PlotUnavailable, plot_series

    try:
        plot_series(points, plot_file, title=title)
    except PlotUnavailable as exc:  # a missing extra is bad input (2), no points a failure
        fail(str(exc), EXIT_INVALID if isinstance(exc, PlotExtraMissing) else EXIT_FAILED)
    click.echo(f"wrote {plot_file}", err=True)


# -- a training job --------------------------------------------------------------------------------
def _training(name: str, resource: ResourceDir, plot_file: Path | None, output: str,
              start: float | None) -> None:
    """Every metric point MetricDefinitions extracted from the job's log (since ``start``)."""
    from local_mode.cloudwatch.sources import training_points

    series = training_points(resource.metrics_file)
    if start is not None:
        series = [p for p in series
                  if datetime.fromisoformat(str(p["Timestamp"])).timestamp() >= start]
    if plot_file is not None:
        _plot(series, plot_file, name)
    if output == "json":
        for point in series:
            click.echo(json.dumps(point))
        return
    if not series:
        click.echo("no metric points (does the job define MetricDefinitions?)", err=True)
        return
    print_table(("TIMESTAMP", "METRIC", "VALUE"),
                [(str(p["Timestamp"]), p["MetricName"], f"{p['Value']:g}") for p in series])


# -- an endpoint -----------------------------------------------------------------------------------
def endpoint_queries(name: str, datums: Sequence[Datum], period: int) -> list[MetricQuery]:
    """One query per metric and variant the endpoint has data of, in display order (the known
    metrics first, by :data:`ENDPOINT_STATISTICS`, then any other by name)."""
    from local_mode.cloudwatch.datums import ENDPOINT_INSTANCE_NAMESPACE, SAGEMAKER_NAMESPACE
    from local_mode.cloudwatch.query import MetricQuery

    order = list(ENDPOINT_STATISTICS)
    seen = {(d.namespace, d.metric_name, d.dimensions) for d in datums
            if d.namespace in (SAGEMAKER_NAMESPACE, ENDPOINT_INSTANCE_NAMESPACE)
            and dict(d.dimensions).get("EndpointName") == name}

    def key(item: tuple[str, str, tuple[tuple[str, str], ...]]) -> tuple[Any, ...]:
        _namespace, metric, dims = item
        known = order.index(metric) if metric in order else len(order)
        return (dict(dims).get("VariantName", ""), known, metric, dims)

    queries = []
    for number, (namespace, metric, dims) in enumerate(sorted(seen, key=key)):
        variant = dict(dims).get("VariantName", "")
        queries.append(MetricQuery(f"m{number}", f"{variant} {metric}".strip(), namespace,
                                   metric, dims, period, ENDPOINT_STATISTICS.get(metric,
                                                                                 "Average"),
                                   None, True))
    return queries


def _endpoint(name: str, state_root: Path, plot_file: Path | None, output: str,
              start: float, period: int | None) -> None:
    """``period`` None: the one the datums were stored at (the endpoint's runner's, which
    may differ from this shell's OPTML_LOCAL_METRIC_PERIOD_SECONDS)."""
    from local_mode.cloudwatch.query import query_points, utc
    from local_mode.cloudwatch.sources import endpoint_datums

    now = time.time()
    datums = list(endpoint_datums(state_root, name))
    if period is None:
        stored = [d.period for d in datums if d.timestamp >= start]
        period = max(1, round(min(stored))) if stored else \
            settings().local.metric_period_seconds
    queries = endpoint_queries(name, datums, period)
    series = [(q, query_points(q, datums, start, now, now)) for q in queries]
    series = [(q, points) for q, points in series if points]
    if plot_file is not None:
        _plot([{"MetricName": f"{q.label} ({q.stat})", "Value": value,
                "Timestamp": utc(at).isoformat()} for q, points in series for at, value in points],
              plot_file, f"endpoint {name}")
    if output == "json":
        results = [{"Id": q.id, "Label": q.label,
                    "Timestamps": [utc(at) for at, _ in reversed(points)],
                    "Values": [value for _, value in reversed(points)],
                    "StatusCode": "Complete"} for q, points in series]
        click.echo(json.dumps({"MetricDataResults": results, "Messages": []}, indent=2,
                              default=json_default))
        return
    if not series:
        since = datetime.fromtimestamp(start, timezone.utc).astimezone()
        click.echo(f"no datapoints for endpoint {name} since {since:%Y-%m-%d %H:%M:%S} "
                   "(its router stores them once per metric period while it serves)", err=True)
        return
    units = {(d.namespace, d.metric_name, d.dimensions): d.unit for d in datums}
    rows = sorted(((at, index, q, value) for index, (q, points) in enumerate(series)
                   for at, value in points), key=lambda row: (row[0], row[1]))
    print_table(("TIME", "VARIANT", "METRIC", "STAT", "VALUE", "UNIT"),
                [(utc(at).astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                  dict(q.dimensions).get("VariantName", ""), q.metric_name, q.stat,
                  f"{value:g}", units.get((q.namespace, q.metric_name, q.dimensions), ""))
                 for at, _, q, value in rows])


__all__ = ["ENDPOINT_STATISTICS", "endpoint_queries", "metrics_command"]
