"""GetMetricStatistics and GetMetricData over stored statistic sets: pure functions of datums.

CloudWatch answers a query from the statistic sets it stores (:mod:`local_mode.cloudwatch.datums`):
the sets whose period starts inside one period of the query are merged (sample counts and sums
added, minimum of the minima, maximum of the maxima) and the statistic asked for is computed from
the merge. This module does the same, with the service's checks and wording:

- ``Period`` is 1, 5, 10, 30 or a multiple of 60 (seconds);
- ``StartTime`` must come before ``EndTime``; the service rounds ``StartTime`` down (to the
  period for high-resolution periods, else to the minute, or to 5 minutes / 1 hour for starts
  more than 15 / 63 days back) and the query's periods start there;
- GetMetricStatistics returns at most 1,440 datapoints (InvalidParameterCombination beyond);
  GetMetricData pages by ``MaxDatapoints`` (default 100,800) with ``NextToken``, and orders each
  result by ``ScanBy`` (newest first by default);
- datapoints of different units are kept apart, and a query naming a ``Unit`` sees only those.

What the service computes and local mode does not is refused, not faked: percentiles and the
other extended statistics (``p99``, ``tm90``, ``IQM``, ...) need every raw sample, which a
statistic set does not keep; metric math and Metrics Insights ``Expression`` queries are not
evaluated. Each is one error saying so.

The errors are the service's classes (:func:`local_mode.errors.error_class`, by the error code
the service sends: ``InvalidParameterValue``, ``InvalidParameterCombination``,
``MissingParameter``, ``InvalidNextToken``, ``ValidationError``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from local_mode.cloudwatch.datums import Datum, Dimensions, dimensions_of
from local_mode.errors import error_class

InvalidParameterValue = error_class("InvalidParameterValue")
InvalidParameterCombination = error_class("InvalidParameterCombination")
MissingParameter = error_class("MissingParameter")
InvalidNextToken = error_class("InvalidNextToken")
ValidationError = error_class("ValidationError")
"""The service's errors by the code it sends (its model's ``ValidationException`` shape is sent
as ``ValidationError``)."""

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
"""The statistics a statistic set answers."""
HIGH_RESOLUTION_PERIODS = (1, 5, 10, 30)
MAX_STATISTICS_DATAPOINTS = 1440
"""GetMetricStatistics: the most datapoints one call may ask for."""
MAX_DATA_DATAPOINTS = 100_800
"""GetMetricData: the default (and largest) number of datapoints in one page."""
MAX_DATA_QUERIES = 500
DAY = 86_400.0

_EXTENDED = re.compile(r"(?:p|tm|wm|tc|ts|pr)\d|(?:TM|WM|TC|TS|PR)\(|IQM\Z", re.IGNORECASE)
_METRIC_ID = re.compile(r"[a-z][a-zA-Z0-9_]*")


# -- values --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Stats:
    """The merged statistic set of one query period (one unit)."""

    sample_count: float
    sum: float
    minimum: float
    maximum: float

    def value(self, statistic: str) -> float:
        """``statistic`` (one of :data:`STATISTICS`) of the set."""
        if statistic == "SampleCount":
            return self.sample_count
        if statistic == "Sum":
            return self.sum
        if statistic == "Minimum":
            return self.minimum
        if statistic == "Maximum":
            return self.maximum
        if statistic == "Average":
            return self.sum / self.sample_count if self.sample_count else 0.0
        raise ValueError(f"unknown statistic {statistic!r}")


def merge(datums: Iterable[Datum]) -> Stats:
    """One set from several (at least one)."""
    listed = list(datums)
    if not listed:
        raise ValueError("nothing to merge")
    return Stats(math.fsum(d.sample_count for d in listed), math.fsum(d.sum for d in listed),
                 min(d.minimum for d in listed), max(d.maximum for d in listed))


def matches(datum: Datum, namespace: str, metric_name: str, dimensions: Dimensions,
            unit: str | None = None) -> bool:
    """Whether ``datum`` is of the metric (namespace, name and exactly these dimensions, as
    CloudWatch identifies a metric) and, when ``unit`` is given, of that unit."""
    return (datum.metric_name == metric_name and datum.namespace == namespace
            and datum.dimensions == dimensions and (unit is None or datum.unit == unit))


def buckets(datums: Iterable[Datum], start: float, end: float,
            period: float) -> dict[tuple[float, str], Stats]:
    """The datums starting in ``[start, end)`` merged per query period (periods of ``period``
    seconds from ``start``) and unit: ``{(period start, unit): Stats}``."""
    grouped: dict[tuple[float, str], list[Datum]] = {}
    for datum in datums:
        if not start <= datum.timestamp < end:
            continue
        index = math.floor((datum.timestamp - start) / period + 1e-9)
        grouped.setdefault((start + index * period, datum.unit), []).append(datum)
    return {key: merge(group) for key, group in grouped.items()}


# -- checks ---------------------------------------------------------------------------------------
def valid_period(period: int) -> bool:
    """The service's periods: 1, 5, 10, 30 or a multiple of 60 seconds."""
    return period in HIGH_RESOLUTION_PERIODS or (period > 0 and period % 60 == 0)


def check_period(period: int, member: str = "Period",
                 error: type[Exception] = InvalidParameterValue) -> None:
    if not valid_period(period):
        raise error(f"The parameter {member} must be 1, 5, 10, 30 or a multiple of 60 "
                    f"(got {period}).")


def check_statistic(stat: str, member: str) -> None:
    """``stat`` is one a statistic set answers; a percentile or other extended statistic is
    refused as not computed locally, anything else as invalid."""
    if stat in STATISTICS:
        return
    if _EXTENDED.match(stat):
        raise ValidationError(
            f"The statistic {stat!r} ({member}) is an extended statistic: local mode keeps "
            "statistic sets (SampleCount, Sum, Minimum, Maximum), not every sample, so it does "
            "not compute percentiles or trimmed/winsorized statistics. Use one of "
            + ", ".join(STATISTICS) + ".")
    raise ValidationError(f"The value {stat} for parameter {member} is not a valid statistic: "
                          "use one of " + ", ".join(STATISTICS) + ".")


def as_datetime(value: Any) -> datetime:
    """A request's timestamp (a datetime, naive meaning UTC as botocore sends it, an ISO 8601
    string or epoch seconds) as an aware UTC datetime."""
    from botocore.utils import parse_to_aware_datetime

    return parse_to_aware_datetime(value).astimezone(timezone.utc)


def epoch(value: Any) -> float:
    return as_datetime(value).timestamp()


def rounded_start(start: float, period: int, now: float) -> float:
    """Where the service starts a query's periods: ``StartTime`` rounded down to the period for
    high-resolution periods, else to the minute (5 minutes past 15 days back, the hour past 63
    days back)."""
    if period < 60:
        grain = float(period)
    else:
        age = now - start
        grain = 60.0 if age < 15 * DAY else 300.0 if age < 63 * DAY else 3600.0
    return math.floor(start / grain) * grain


def time_range(request: Mapping[str, Any], error: type[Exception]) -> tuple[float, float]:
    start, end = epoch(request["StartTime"]), epoch(request["EndTime"])
    if start >= end:
        raise error("The parameter StartTime must be less than the parameter EndTime.")
    return start, end


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


# -- GetMetricStatistics --------------------------------------------------------------------------
def get_metric_statistics(datums: Iterable[Datum], request: Mapping[str, Any],
                          now: float) -> dict[str, Any]:
    """GetMetricStatistics' response to ``request`` (validated against botocore's model) from
    ``datums`` (any; those of other metrics are left out)."""
    statistics = request.get("Statistics")
    extended = request.get("ExtendedStatistics")
    if statistics and extended:
        raise InvalidParameterCombination(
            "Statistics and ExtendedStatistics cannot both be specified.")
    if extended:
        raise InvalidParameterValue(
            f"ExtendedStatistics {', '.join(extended)}: local mode keeps statistic sets "
            "(SampleCount, Sum, Minimum, Maximum), not every sample, so it does not compute "
            "percentiles. Ask for Statistics (" + ", ".join(STATISTICS) + ").")
    if not statistics:
        raise MissingParameter("Either Statistics or ExtendedStatistics must be specified.")
    period = int(request["Period"])
    check_period(period)
    start, end = time_range(request, InvalidParameterValue)
    first = rounded_start(start, period, now)
    count = math.ceil((end - first) / period)
    if count > MAX_STATISTICS_DATAPOINTS:
        raise InvalidParameterCombination(
            f"You have requested up to {count:,} datapoints, which exceeds the limit of "
            f"{MAX_STATISTICS_DATAPOINTS:,}. You may reduce the datapoints requested by "
            "increasing Period, or decreasing the time range.")
    dimensions = dimensions_of({d["Name"]: d["Value"] for d in request.get("Dimensions", [])})
    unit = request.get("Unit")
    chosen = (d for d in datums if matches(d, request["Namespace"], request["MetricName"],
                                           dimensions, unit))
    points = []
    for (at, datum_unit), stats in sorted(buckets(chosen, first, end, period).items()):
        point: dict[str, Any] = {"Timestamp": utc(at)}
        for statistic in statistics:
            point[statistic] = stats.value(statistic)
        point["Unit"] = datum_unit
        points.append(point)
    return {"Label": request["MetricName"], "Datapoints": points}


# -- GetMetricData ---------------------------------------------------------------------------------
DatumSource = Callable[[str, str, Dimensions], Iterable[Datum]]
"""Where GetMetricData finds a metric's datums: ``(namespace, name, dimensions) -> datums``
(more may come; those of other metrics are left out)."""


@dataclass(frozen=True)
class MetricQuery:
    """One MetricStat query of GetMetricData, checked."""

    id: str
    label: str
    namespace: str
    metric_name: str
    dimensions: Dimensions
    period: int
    stat: str
    unit: str | None
    return_data: bool


def parse_queries(queries: Sequence[Mapping[str, Any]]) -> list[MetricQuery]:
    """GetMetricData's ``MetricDataQueries`` as :class:`MetricQuery`, checked as the service
    checks them (ValidationError naming the member), Expressions refused as not evaluated."""
    if not queries:
        raise ValidationError("The parameter MetricDataQueries must contain at least one query.")
    if len(queries) > MAX_DATA_QUERIES:
        raise ValidationError(f"The collection MetricDataQueries must not have a size greater "
                              f"than {MAX_DATA_QUERIES}.")
    parsed: list[MetricQuery] = []
    seen: set[str] = set()
    for number, query in enumerate(queries, start=1):
        member = f"MetricDataQueries.member.{number}"
        query_id = query["Id"]
        if not _METRIC_ID.fullmatch(query_id):
            raise ValidationError(f"The value {query_id} for parameter {member}.Id is not valid: "
                                  "an Id starts with a lowercase letter and holds only letters, "
                                  "digits and underscores.")
        if query_id in seen:
            raise ValidationError(f"The value {query_id} for parameter {member}.Id is not "
                                  "unique.")
        seen.add(query_id)
        stat_query, expression = query.get("MetricStat"), query.get("Expression")
        if (stat_query is None) == (expression is None):
            raise ValidationError(f"Exactly one of {member}.MetricStat and {member}.Expression "
                                  "must be specified.")
        if expression is not None:
            raise ValidationError(
                f"{member}.Expression ({expression!r}): local mode does not evaluate metric "
                "math or Metrics Insights expressions; query each metric with a MetricStat and "
                "combine the values yourself.")
        assert stat_query is not None
        if "Period" in query:
            raise ValidationError(f"{member}.Period is for Expression queries only; a "
                                  "MetricStat query gives its period in MetricStat.Period.")
        period = int(stat_query["Period"])
        check_period(period, f"{member}.MetricStat.Period", ValidationError)
        stat = stat_query["Stat"]
        check_statistic(stat, f"{member}.MetricStat.Stat")
        metric = stat_query["Metric"]
        if "Namespace" not in metric or "MetricName" not in metric:
            raise ValidationError(f"{member}.MetricStat.Metric needs a Namespace and a "
                                  "MetricName.")
        dimensions = dimensions_of({d["Name"]: d["Value"] for d in metric.get("Dimensions", [])})
        parsed.append(MetricQuery(query_id, query.get("Label", metric["MetricName"]),
                                  metric["Namespace"], metric["MetricName"], dimensions, period,
                                  stat, stat_query.get("Unit"),
                                  bool(query.get("ReturnData", True))))
    return parsed


def query_points(query: MetricQuery, datums: Iterable[Datum], start: float, end: float,
                 now: float) -> list[tuple[float, float]]:
    """``(period start, value)`` of every period of ``query`` that has data, oldest first
    (periods of different units merged, as GetMetricData returns one series per query)."""
    first = rounded_start(start, query.period, now)
    per_period: dict[float, list[Datum]] = {}
    for datum in datums:
        if first <= datum.timestamp < end and matches(datum, query.namespace, query.metric_name,
                                                      query.dimensions, query.unit):
            index = math.floor((datum.timestamp - first) / query.period + 1e-9)
            per_period.setdefault(first + index * query.period, []).append(datum)
    return [(at, merge(group).value(query.stat)) for at, group in sorted(per_period.items())]


def _fingerprint(request: Mapping[str, Any]) -> str:
    """What a NextToken belongs to: the request without its paging members."""
    kept = {k: v for k, v in request.items() if k not in ("NextToken", "MaxDatapoints")}
    text = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def page_token(offset: int, request: Mapping[str, Any]) -> str:
    raw = json.dumps({"o": offset, "q": _fingerprint(request)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def token_offset(token: str, request: Mapping[str, Any]) -> int:
    """The offset a NextToken of this same request carries (InvalidNextToken otherwise)."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = data["o"]
        if data["q"] != _fingerprint(request) or not isinstance(offset, int) or offset < 0:
            raise ValueError(token)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidNextToken("The service cannot process the NextToken: it was not "
                               "returned by a previous call with the same request.") from None
    return offset


def get_metric_data(source: DatumSource, request: Mapping[str, Any],
                    now: float) -> dict[str, Any]:
    """GetMetricData's response to ``request`` (validated against botocore's model): each
    ReturnData query's periods that have data, ordered by ``ScanBy``, paged by
    ``MaxDatapoints`` over all queries in order."""
    queries = parse_queries(request["MetricDataQueries"])
    start, end = time_range(request, ValidationError)
    descending = request.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    limit = int(request.get("MaxDatapoints", MAX_DATA_DATAPOINTS))
    if limit < 1:
        raise ValidationError("The parameter MaxDatapoints must be greater than 0.")
    offset = token_offset(request["NextToken"], request) if "NextToken" in request else 0
    series: list[tuple[MetricQuery, list[tuple[float, float]]]] = []
    for query in queries:
        if not query.return_data:
            continue
        points = query_points(query, source(query.namespace, query.metric_name,
                                            query.dimensions), start, end, now)
        series.append((query, points[::-1] if descending else points))
    results = []
    position = 0  # index of the series' first point among all points, in order
    for query, points in series:
        lo = min(max(offset - position, 0), len(points))
        hi = min(max(offset + limit - position, 0), len(points))
        shown = points[lo:hi]
        results.append({"Id": query.id, "Label": query.label,
                        "Timestamps": [utc(at) for at, _ in shown],
                        "Values": [value for _, value in shown],
                        "StatusCode": "Complete" if hi == len(points) else "PartialData"})
        position += len(points)
    response: dict[str, Any] = {"MetricDataResults": results, "Messages": []}
    if offset + limit < position:
        response["NextToken"] = page_token(offset + limit, request)
    return response


__all__ = ["HIGH_RESOLUTION_PERIODS", "MAX_DATA_DATAPOINTS", "MAX_STATISTICS_DATAPOINTS",
           "STATISTICS", "DatumSource", "InvalidNextToken", "InvalidParameterCombination",
           "InvalidParameterValue", "MetricQuery", "MissingParameter", "Stats", "ValidationError",
           "as_datetime", "buckets", "check_period", "check_statistic", "epoch",
           "get_metric_data", "get_metric_statistics", "matches", "merge", "parse_queries",
           "query_points", "rounded_start", "utc", "valid_period"]
