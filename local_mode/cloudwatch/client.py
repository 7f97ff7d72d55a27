"""A client shaped like boto3's ``cloudwatch`` over a local state directory.

Metrics: GetMetricStatistics, GetMetricData and ListMetrics read the datums the state directory
holds (:mod:`local_mode.cloudwatch.sources`: endpoints' invocation and instance metrics,
training jobs' MetricDefinitions series, PutMetricData's custom metrics) and answer as the service
does (:mod:`local_mode.cloudwatch.query`). PutMetricData stores statistic sets at the datum's
storage resolution (60 s, or 1 s for StorageResolution 1).

Alarms: PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric, DeleteAlarms and SetAlarmState
over :class:`~local_mode.cloudwatch.alarms.AlarmStore`. The client stores and shows alarms; the
endpoint runner evaluates those of its endpoint once per metric period
(:func:`~local_mode.cloudwatch.alarms.evaluate`), which is what moves their state. botocore's
paginators (ListMetrics, GetMetricData, DescribeAlarms) and waiters (``alarm_exists``,
``composite_alarm_exists``) work through ``get_paginator`` / ``get_waiter``.

Errors carry the code the service sends (``InvalidParameterValue``, ``ResourceNotFound``, ...),
and ``client.exceptions`` names them as boto3's does (``InvalidParameterValueException``
catches code ``InvalidParameterValue``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from local_mode.client_base import StateDirClient
from local_mode.cloudwatch import query, sources
from local_mode.cloudwatch.alarms import (
    STATE_VALUES,
    Alarm,
    AlarmRecord,
    AlarmState,
    AlarmStore,
    ResourceNotFound,
)
from local_mode.cloudwatch.datums import Datum, Dimensions, dimensions_of
from local_mode.errors import error_class
from toolkit.settings import Settings

SERVICE = "cloudwatch"
LIST_METRICS_PAGE = 500
DESCRIBE_ALARMS_PAGE = 50
RECENTLY_ACTIVE = {"PT3H": 3 * 3600.0}
MAX_METRIC_DATA = 1000
MAX_VALUES = 150
PAST_LIMIT = 14 * 86_400.0
FUTURE_LIMIT = 2 * 3600.0
STORAGE_RESOLUTIONS = (1, 60)

InvalidFormat = error_class("InvalidFormat")

MetricKey = tuple[str, str, Dimensions]


class CloudWatchClient(StateDirClient):
    """The local ``cloudwatch`` client (see the module's docstring). ``settings`` and
    ``state_dir`` are local mode's own arguments, ``clock`` (epoch seconds) is for tests; the
    others are boto3's client arguments (:class:`local_mode.client_base.LocalClient`)."""

    SERVICE = SERVICE

    def __init__(self, settings: Settings | None = None, *,
                 state_dir: str | Path | None = None, clock: Callable[[], float] | None = None,
                 **client_args: Any) -> None:
        super().__init__(settings, state_dir=state_dir, **client_args)
        self._clock = clock or time.time
        self.alarms = AlarmStore(self.store.root, self._clock)

    # -- metrics -----------------------------------------------------------------------------
    def get_metric_statistics(self, **request: Any) -> dict[str, Any]:
        dimensions = _dimensions(request.get("Dimensions", []))
        found = sources.datums(self.store, request["Namespace"], dimensions)
        return query.get_metric_statistics(found, request, self._clock())

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        read: dict[tuple[str, str | None, str | None], list[Datum]] = {}

        def source(namespace: str, _name: str, dimensions: Dimensions) -> Iterable[Datum]:
            named = dict(dimensions)
            key = (namespace, named.get("EndpointName"), named.get("Host"))
            if key not in read:  # one read of each file per call, however many queries
                read[key] = list(sources.datums(self.store, namespace, dimensions))
            return read[key]

        return query.get_metric_data(source, request, self._clock())

    def list_metrics(self, **request: Any) -> dict[str, Any]:
        now = self._clock()
        namespace, name = request.get("Namespace"), request.get("MetricName")
        filters = [(f["Name"], f.get("Value")) for f in request.get("Dimensions", [])]
        active = request.get("RecentlyActive")
        since = now - RECENTLY_ACTIVE[active] if active is not None else None
        latest: dict[MetricKey, float] = {}
        for datum in sources.datums(self.store, namespace):
            key = (datum.namespace, datum.metric_name, datum.dimensions)
            latest[key] = max(latest.get(key, -math.inf), datum.timestamp + datum.period)
        owner = request.get("OwningAccount")
        keys = sorted(key for key, last in latest.items()
                      if (namespace is None or key[0] == namespace)
                      and (name is None or key[1] == name)
                      and all(_has_dimension(key[2], n, v) for n, v in filters)
                      and (since is None or last >= since)
                      and (owner is None or owner == self.account_id))
        after = _list_token(request["NextToken"]) if "NextToken" in request else None
        if after is not None:
            keys = [key for key in keys if _key_json(key) > after]
        page = keys[:LIST_METRICS_PAGE]
        response: dict[str, Any] = {"Metrics": [
            {"Namespace": ns, "MetricName": metric,
             "Dimensions": [{"Name": n, "Value": v} for n, v in dims]}
            for ns, metric, dims in page]}
        if request.get("IncludeLinkedAccounts"):
            response["OwningAccounts"] = [self.account_id] * len(page)
        if len(keys) > LIST_METRICS_PAGE:
            response["NextToken"] = _encode_token(_key_json(page[-1]))
        return response

    def put_metric_data(self, **request: Any) -> dict[str, Any]:
        namespace = request["Namespace"]
        if namespace.startswith("AWS/"):
            raise query.InvalidParameterValue(
                f"The value {namespace} for parameter Namespace is invalid: namespaces "
                "starting with AWS/ are reserved for AWS services.")
        data = list(request.get("MetricData") or [])
        for entity in request.get("EntityMetricData") or []:
            data += entity.get("MetricData") or []
        if not data:
            raise query.MissingParameter("The parameter MetricData is required.")
        if len(data) > MAX_METRIC_DATA:
            raise query.InvalidParameterValue(
                f"The collection MetricData must not have a size greater than "
                f"{MAX_METRIC_DATA} (got {len(data)}).")
        now = self._clock()
        datums = [_custom_datum(namespace, item, number, now)
                  for number, item in enumerate(data, start=1)]
        sources.write_custom(self.store.root, datums)
        return {}

    # -- alarms ------------------------------------------------------------------------------
    def put_metric_alarm(self, **request: Any) -> dict[str, Any]:
        self.alarms.put(Alarm.from_request(request))
        return {}

    def describe_alarms(self, **request: Any) -> dict[str, Any]:
        names, prefix = request.get("AlarmNames"), request.get("AlarmNamePrefix")
        if names is not None and prefix is not None:
            raise query.InvalidParameterCombination(
                "AlarmNames and AlarmNamePrefix cannot be specified together.")
        types = request.get("AlarmTypes") or ["MetricAlarm"]
        related = request.get("ChildrenOfAlarmName") or request.get("ParentsOfAlarmName")
        records: list[AlarmRecord] = []
        if "MetricAlarm" in types and related is None:  # no composite alarms exist locally
            wanted = set(names) if names is not None else None
            state, action = request.get("StateValue"), request.get("ActionPrefix")
            records = [r for r in self.alarms.records()
                       if (wanted is None or r.alarm.name in wanted)
                       and (prefix is None or r.alarm.name.startswith(prefix))
                       and (state is None or r.state.value == state)
                       and (action is None or any(a.startswith(action) for a in (
                           *r.alarm.alarm_actions, *r.alarm.ok_actions,
                           *r.alarm.insufficient_data_actions)))]
        if "NextToken" in request:
            after = _alarm_token(request["NextToken"])
            records = [r for r in records if r.alarm.name > after]
        limit = request.get("MaxRecords", DESCRIBE_ALARMS_PAGE)
        page = records[:limit]
        response: dict[str, Any] = {"MetricAlarms": [self._metric_alarm(r) for r in page],
                                    "CompositeAlarms": [], "LogAlarms": []}
        if len(records) > limit:
            response["NextToken"] = _encode_token(json.dumps({"after": page[-1].alarm.name}))
        return response

    def describe_alarms_for_metric(self, **request: Any) -> dict[str, Any]:
        dimensions = _dimensions(request["Dimensions"]) if "Dimensions" in request else None
        chosen = [r for r in self.alarms.records()
                  if r.alarm.namespace == request["Namespace"]
                  and r.alarm.metric_name == request["MetricName"]
                  and request.get("Statistic", r.alarm.statistic) == r.alarm.statistic
                  and "ExtendedStatistic" not in request  # no percentile alarms locally
                  and (dimensions is None or r.alarm.dimensions == dimensions)
                  and request.get("Period", r.alarm.period) == r.alarm.period
                  and ("Unit" not in request or request["Unit"] == r.alarm.unit)]
        return {"MetricAlarms": [self._metric_alarm(r) for r in chosen]}

    def delete_alarms(self, **request: Any) -> dict[str, Any]:
        names = list(dict.fromkeys(request["AlarmNames"]))
        missing = [n for n in names if self.alarms.get(n) is None]
        if missing:  # the service deletes none when one is wrong
            raise ResourceNotFound(f"Alarms not found: {', '.join(missing)}. No alarm was "
                                   "deleted.")
        for name in names:
            self.alarms.delete(name)
        return {}

    def set_alarm_state(self, **request: Any) -> dict[str, Any]:
        name, value = request["AlarmName"], request["StateValue"]
        if value not in STATE_VALUES:
            raise query.InvalidParameterValue(f"The value {value} for parameter StateValue is "
                                              "invalid.")
        data: dict[str, Any] = {}
        if "StateReasonData" in request:
            try:
                parsed = json.loads(request["StateReasonData"])
            except ValueError as exc:
                raise InvalidFormat(f"StateReasonData is not valid JSON: {exc}") from None
            if not isinstance(parsed, dict):
                raise InvalidFormat("StateReasonData must be a JSON object.")
            data = parsed
        self.alarms.set_state(name, AlarmState(value, request["StateReason"], data,
                                               self._clock()))
        return {}

    def _metric_alarm(self, record: AlarmRecord) -> dict[str, Any]:
        """DescribeAlarms' MetricAlarm for ``record``."""
        alarm, state = record.alarm, record.state
        shown: dict[str, Any] = {
            "AlarmName": alarm.name, "AlarmArn": alarm.arn(self.meta.region_name,
                                                           self.account_id)}
        if alarm.description:
            shown["AlarmDescription"] = alarm.description
        shown |= {
            "AlarmConfigurationUpdatedTimestamp": query.utc(record.configured),
            "ActionsEnabled": alarm.actions_enabled, "OKActions": list(alarm.ok_actions),
            "AlarmActions": list(alarm.alarm_actions),
            "InsufficientDataActions": list(alarm.insufficient_data_actions),
            "StateValue": state.value, "StateReason": state.reason}
        if state.reason_data:
            shown["StateReasonData"] = json.dumps(state.reason_data, separators=(",", ":"))
        shown |= {
            "StateUpdatedTimestamp": query.utc(state.updated), "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace, "Statistic": alarm.statistic,
            "Dimensions": [{"Name": n, "Value": v} for n, v in alarm.dimensions],
            "Period": alarm.period}
        if alarm.unit is not None:
            shown["Unit"] = alarm.unit
        shown |= {
            "EvaluationPeriods": alarm.evaluation_periods,
            "DatapointsToAlarm": alarm.datapoints_to_alarm, "Threshold": alarm.threshold,
            "ComparisonOperator": alarm.comparison_operator,
            "TreatMissingData": alarm.treat_missing_data,
            "StateTransitionedTimestamp": query.utc(record.transitioned)}
        return shown


# -- helpers ---------------------------------------------------------------------------------------
def _dimensions(listed: Iterable[Mapping[str, str]]) -> Dimensions:
    return dimensions_of({d["Name"]: d["Value"] for d in listed})


def _has_dimension(dimensions: Dimensions, name: str, value: str | None) -> bool:
    return any(n == name and (value is None or v == value) for n, v in dimensions)


def _key_json(key: MetricKey) -> str:
    return json.dumps([key[0], key[1], [list(d) for d in key[2]]], separators=(",", ":"))


def _encode_token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode_token(token: str) -> str:
    return base64.urlsafe_b64decode(token.encode()).decode()


def _list_token(token: str) -> str:
    try:
        text = _decode_token(token)
        if not isinstance(json.loads(text), list):
            raise TypeError(text)
    except (ValueError, TypeError, binascii.Error):
        raise query.InvalidParameterValue("The value for parameter NextToken is invalid: it "
                                          "was not returned by ListMetrics.") from None
    return text


def _alarm_token(token: str) -> str:
    try:
        after = json.loads(_decode_token(token))["after"]
        if not isinstance(after, str):
            raise TypeError(after)
        return after
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise query.InvalidNextToken("The service cannot process the NextToken: it was not "
                                     "returned by DescribeAlarms.") from None


def _custom_datum(namespace: str, item: Mapping[str, Any], number: int, now: float) -> Datum:
    """One PutMetricData MetricDatum as a stored statistic set, checked as the service checks
    it (InvalidParameterValue / InvalidParameterCombination naming the member)."""
    member = f"MetricData.member.{number}"
    given = [m for m in ("Value", "StatisticValues", "Values") if item.get(m) is not None]
    if len(given) > 1:
        raise query.InvalidParameterCombination(
            f"The parameters {member}.{' and '.join(given)} are mutually exclusive.")
    if not given:
        raise query.MissingParameter(f"One of {member}.Value, {member}.StatisticValues or "
                                     f"{member}.Values must be specified.")
    if item.get("Counts") is not None and given != ["Values"]:
        raise query.InvalidParameterCombination(f"{member}.Counts is only valid with "
                                                f"{member}.Values.")
    if given == ["Value"]:
        values = [float(item["Value"])]
        counts = [1.0]
    elif given == ["Values"]:
        values = [float(v) for v in item["Values"]]
        counts = [float(c) for c in item.get("Counts") or [1.0] * len(values)]
        if not values or len(values) > MAX_VALUES:
            raise query.InvalidParameterValue(f"{member}.Values must hold 1 to {MAX_VALUES} "
                                              "values.")
        if len(counts) != len(values):
            raise query.InvalidParameterValue(f"{member}.Values and {member}.Counts must have "
                                              "the same length.")
    else:
        stats = item["StatisticValues"]
        values = [float(stats[k]) for k in ("Sum", "Minimum", "Maximum")]
        counts = [float(stats["SampleCount"])]
    if not all(math.isfinite(v) for v in [*values, *counts]):
        raise query.InvalidParameterValue(f"The values of {member} must be finite numbers "
                                          "(not NaN or infinite).")
    if any(c <= 0 for c in counts):
        raise query.InvalidParameterValue(f"The sample counts of {member} must be positive.")
    resolution = int(item.get("StorageResolution", 60))
    if resolution not in STORAGE_RESOLUTIONS:
        raise query.InvalidParameterValue(f"The value {resolution} for parameter "
                                          f"{member}.StorageResolution must be 1 or 60.")
    at = query.epoch(item["Timestamp"]) if "Timestamp" in item else now
    if not now - PAST_LIMIT <= at <= now + FUTURE_LIMIT:
        raise query.InvalidParameterValue(
            f"The parameter {member}.Timestamp must specify a time no more than two weeks in "
            "the past and no more than two hours in the future.")
    listed = item.get("Dimensions", [])
    if len({d["Name"] for d in listed}) != len(listed):
        raise query.InvalidParameterValue(f"The dimension names of {member} must be unique.")
    start = math.floor(at / resolution) * resolution
    unit = item.get("Unit", "None")
    dimensions = _dimensions(listed)
    if given == ["StatisticValues"]:
        total, low, high = values
        if low > high:
            raise query.InvalidParameterValue(f"{member}.StatisticValues.Minimum must not "
                                              "exceed its Maximum.")
        return Datum(namespace, item["MetricName"], dimensions, float(start), float(resolution),
                     counts[0], total, low, high, unit)
    return Datum(namespace, item["MetricName"], dimensions, float(start), float(resolution),
                 math.fsum(counts), math.fsum(v * c for v, c in zip(values, counts)),
                 min(values), max(values), unit)


__all__ = ["CloudWatchClient", "InvalidFormat"]
