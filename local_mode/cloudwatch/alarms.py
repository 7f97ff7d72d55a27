"""Metric alarms as CloudWatch evaluates them: M out of N datapoints, missing data, the reason text.

An alarm watches one statistic of one metric over periods of ``Period`` seconds. Each evaluation
looks at the last ``EvaluationPeriods`` (N) complete periods and goes to ALARM when at least
``DatapointsToAlarm`` (M, default N) of them breach the threshold; they need not be consecutive.
A period without data is *missing*, and ``TreatMissingData`` says what it counts as:

- ``breaching`` / ``notBreaching``: a breaching / a good datapoint;
- ``missing`` (the default): only the datapoints present count; with none present the alarm is
  INSUFFICIENT_DATA. As the service does, a single breaching datapoint can alarm when it is at
  least M periods old and every newer period is breaching or missing; a breaching datapoint
  younger than that does not move the alarm yet (the service avoids such premature
  transitions: the missing periods after it may still be filled), and the state is kept;
- ``ignore``: as ``missing``, except that with no datapoint at all the state is kept.

The state says why as the service words it: ``Threshold Crossed: 3 datapoints [81.0 (02/12/26
10:03:00), ...] were greater than the threshold (70.0).``, the ``k out of the last N
datapoints ... (minimum M datapoints for OK -> ALARM transition)`` form for an M-of-N alarm,
``no datapoints were received for 2 periods and 2 missing datapoints were treated as
[Breaching].``, ``Insufficient Data: 3 datapoints were unknown.``; numbers as Java prints
doubles, times in UTC, newest first. ``StateReasonData`` is the service's JSON document
(version, queryDate, startDate, statistic, period, recentDatapoints, threshold,
evaluatedDatapoints).

TIME COMPRESSION: :func:`evaluate` takes ``time_scale`` (the settings' metric period / 60) and
multiplies the alarm's ``Period`` by it, so an alarm written for the cloud (Period 60) evaluates
1-second periods when local mode stores a datapoint a second. The alarm keeps its own Period in
its definition and in ``StateReasonData``.

:class:`AlarmStore` keeps alarms and their states under ``<state_root>/cloudwatch/alarms/``, one
private JSON file each, written atomically under a lock (the CLI, the API and the endpoint
runner update them from different processes).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from local_mode.cloudwatch.datums import Datum, Dimensions, cloudwatch_dir, dimensions_of
from local_mode.cloudwatch.query import STATISTICS, ValidationError, matches, merge
from local_mode.errors import error_class
from local_mode.state import make_private_dir, open_private, read_json, write_json_atomic

ResourceNotFound = error_class("ResourceNotFound")

STATE_VALUES = ("OK", "ALARM", "INSUFFICIENT_DATA")
TREAT_MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
COMPARISONS: Mapping[str, tuple[str, Callable[[float, float], bool]]] = {
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", operator.ge),
    "GreaterThanThreshold": ("greater than", operator.gt),
    "LessThanThreshold": ("less than", operator.lt),
    "LessThanOrEqualToThreshold": ("less than or equal to", operator.le),
}
"""The service's static-threshold operators: how the reason text says each, and the test."""
ALARM_PERIODS = (10, 30)
"""High-resolution alarm periods; any other must be a multiple of 60."""
MAX_EVALUATED_SECONDS = 86_400
"""Period x EvaluationPeriods may cover one day at most."""
INITIAL_REASON = "Unchecked: Initial alarm creation"
MAX_REASON = 1023
MAX_REASON_DATA = 4000
UNSUPPORTED_MEMBERS = ("EvaluationWindow", "WarmUpConfiguration", "EvaluationCriteria",
                       "EvaluationInterval", "ActionConfiguration")
"""PutMetricAlarm members of features local mode does not emulate (refused, not ignored)."""


# -- the alarm -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Alarm:
    """One metric alarm's definition (PutMetricAlarm's members)."""

    name: str
    namespace: str
    metric_name: str
    dimensions: Dimensions
    statistic: str
    period: int
    """Seconds, as the service counts them (scaled by ``time_scale`` when evaluated)."""
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison_operator: str
    alarm_actions: tuple[str, ...] = ()
    ok_actions: tuple[str, ...] = ()
    treat_missing_data: str = "missing"
    description: str = ""
    unit: str | None = None
    insufficient_data_actions: tuple[str, ...] = ()
    actions_enabled: bool = True

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> Alarm:
        """The alarm a PutMetricAlarm request defines, checked as the service checks it
        (ValidationError); what local mode does not evaluate (metric math, anomaly detection,
        percentiles) is refused with a message saying so."""
        name = request["AlarmName"]
        if request.get("Metrics") is not None or request.get("ThresholdMetricId") is not None:
            raise ValidationError(
                f"Alarm {name}: local mode does not evaluate alarms on metric math or anomaly "
                "detection (Metrics, ThresholdMetricId); give MetricName, Namespace, Statistic "
                "and Threshold.")
        for member in UNSUPPORTED_MEMBERS:
            if request.get(member) is not None:
                raise ValidationError(f"Alarm {name}: local mode does not emulate {member}.")
        if request.get("ExtendedStatistic") is not None:
            raise ValidationError(
                f"Alarm {name}: ExtendedStatistic {request['ExtendedStatistic']}: local mode "
                "keeps statistic sets, not every sample, so it does not compute percentiles; "
                "use Statistic (" + ", ".join(STATISTICS) + ").")
        missing = [m for m in ("MetricName", "Namespace", "Statistic", "Period",
                               "EvaluationPeriods", "Threshold", "ComparisonOperator")
                   if request.get(m) is None]
        if missing:
            raise ValidationError(
                f"{len(missing)} validation error(s) detected: " + "; ".join(
                    f"Value null at '{m[0].lower() + m[1:]}' failed to satisfy constraint: "
                    "Member must not be null" for m in missing))
        operator_name = request["ComparisonOperator"]
        if operator_name not in COMPARISONS:
            raise ValidationError(
                f"ComparisonOperator {operator_name} needs a ThresholdMetricId (an anomaly "
                "detection band), which local mode does not evaluate; use one of "
                + ", ".join(COMPARISONS) + ".")
        period = int(request["Period"])
        if period not in ALARM_PERIODS and period % 60 != 0:
            raise ValidationError(f"Period ({period}) must be 10, 30 or a multiple of 60.")
        periods = int(request["EvaluationPeriods"])
        if period * periods > MAX_EVALUATED_SECONDS:
            raise ValidationError(
                f"The evaluation period (Period x EvaluationPeriods = {period * periods} s) "
                f"must not exceed {MAX_EVALUATED_SECONDS} seconds (one day).")
        to_alarm = int(request.get("DatapointsToAlarm", periods))
        if to_alarm > periods:
            raise ValidationError(f"DatapointsToAlarm ({to_alarm}) must be less than or equal "
                                  f"to EvaluationPeriods ({periods}).")
        treat = request.get("TreatMissingData", "missing")
        if treat not in TREAT_MISSING_DATA:
            raise ValidationError(f"TreatMissingData {treat!r} is not one of "
                                  + ", ".join(TREAT_MISSING_DATA) + ".")
        threshold = float(request["Threshold"])
        if not math.isfinite(threshold):
            raise ValidationError(f"Threshold ({threshold}) must be a finite number.")
        listed = request.get("Dimensions", [])
        if len({d["Name"] for d in listed}) != len(listed):
            raise ValidationError(f"Alarm {name}: a dimension name appears more than once.")
        return cls(
            name=name, namespace=request["Namespace"], metric_name=request["MetricName"],
            dimensions=dimensions_of({d["Name"]: d["Value"] for d in listed}),
            statistic=request["Statistic"], period=period, evaluation_periods=periods,
            datapoints_to_alarm=to_alarm, threshold=threshold,
            comparison_operator=operator_name,
            alarm_actions=tuple(request.get("AlarmActions", ())),
            ok_actions=tuple(request.get("OKActions", ())), treat_missing_data=treat,
            description=request.get("AlarmDescription", ""), unit=request.get("Unit"),
            insufficient_data_actions=tuple(request.get("InsufficientDataActions", ())),
            actions_enabled=bool(request.get("ActionsEnabled", True)))

    def arn(self, region: str, account: str) -> str:
        return f"arn:aws:cloudwatch:{region}:{account}:alarm:{self.name}"

    def breaches(self, value: float) -> bool:
        return COMPARISONS[self.comparison_operator][1](value, self.threshold)

    def watches(self, datum: Datum) -> bool:
        """Whether ``datum`` is of the alarm's metric (and unit, when it names one)."""
        return matches(datum, self.namespace, self.metric_name, self.dimensions, self.unit)

    def to_json(self) -> dict[str, Any]:
        return {"AlarmName": self.name, "Namespace": self.namespace,
                "MetricName": self.metric_name, "Dimensions": [list(d) for d in self.dimensions],
                "Statistic": self.statistic, "Period": self.period,
                "EvaluationPeriods": self.evaluation_periods,
                "DatapointsToAlarm": self.datapoints_to_alarm, "Threshold": self.threshold,
                "ComparisonOperator": self.comparison_operator,
                "AlarmActions": list(self.alarm_actions), "OKActions": list(self.ok_actions),
                "TreatMissingData": self.treat_missing_data,
                "AlarmDescription": self.description, "Unit": self.unit,
                "InsufficientDataActions": list(self.insufficient_data_actions),
                "ActionsEnabled": self.actions_enabled}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alarm:
        return cls(data["AlarmName"], data["Namespace"], data["MetricName"],
                   tuple((str(k), str(v)) for k, v in data["Dimensions"]), data["Statistic"],
                   int(data["Period"]), int(data["EvaluationPeriods"]),
                   int(data["DatapointsToAlarm"]), float(data["Threshold"]),
                   data["ComparisonOperator"], tuple(data["AlarmActions"]),
                   tuple(data["OKActions"]), data["TreatMissingData"],
                   data["AlarmDescription"], data["Unit"],
                   tuple(data["InsufficientDataActions"]), bool(data["ActionsEnabled"]))


@dataclass(frozen=True)
class AlarmState:
    """An alarm's state as DescribeAlarms shows it."""

    value: str
    """OK, ALARM or INSUFFICIENT_DATA."""
    reason: str
    """The service's StateReason text."""
    reason_data: dict[str, Any] = field(default_factory=dict)
    """The service's StateReasonData document (empty: none, as after creation)."""
    updated: float = 0.0
    """Epoch seconds of this evaluation (or SetAlarmState)."""
    recent: tuple[float, ...] = ()
    """The evaluated datapoints' statistic values, newest last."""

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "reason": self.reason, "reason_data": self.reason_data,
                "updated": self.updated, "recent": list(self.recent)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlarmState:
        return cls(data["value"], data["reason"], dict(data["reason_data"]),
                   float(data["updated"]), tuple(float(v) for v in data["recent"]))


def initial_state(now: float) -> AlarmState:
    """A new (or redefined) alarm's state."""
    return AlarmState("INSUFFICIENT_DATA", INITIAL_REASON, {}, now)


# -- the service's wording ----------------------------------------------------------------------
def java_double(value: float) -> str:
    """``value`` as Java's ``Double.toString`` prints it (the service's reason text):
    ``81.0``, ``0.001``, ``1.0E7``, ``1.5E-5``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(float(value))
        return text if "." in text else text + ".0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    mantissa = text[0] + "." + (text[1:] or "0")
    return ("-" if sign else "") + f"{mantissa}E{len(text) - 1 + exponent}"


def reason_time(seconds: float) -> str:
    """A datapoint's time in a StateReason: ``dd/mm/yy HH:MM:SS`` UTC."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%d/%m/%y %H:%M:%S")


def data_time(seconds: float) -> str:
    """A time in StateReasonData: ``2026-02-12T10:03:00.000+0000``."""
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _was(count: int) -> str:
    return "was" if count == 1 else "were"


def _listed(points: list[tuple[float, float]], prefix: str, suffix: str) -> str:
    """``prefix [v (time), ...] suffix``, dropping the oldest points (shown as ``...``) so the
    whole fits the service's StateReason length."""
    items = [f"{java_double(v)} ({reason_time(at)})" for at, v in points]
    shown = len(items)
    while True:
        inner = ", ".join(items[:shown] + (["..."] if shown < len(items) else []))
        text = f"{prefix} [{inner}] {suffix}"
        if len(text) <= MAX_REASON or shown == 0:
            return text
        shown -= 1


# -- evaluation ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Slot:
    start: float
    sample_count: float | None
    value: float | None


def periods_of(alarm: Alarm, now: float, time_scale: float) -> tuple[float, list[float]]:
    """The evaluated periods' length in real seconds and their starts, oldest first: the last
    ``evaluation_periods`` complete periods before ``now``, aligned to multiples of the
    length."""
    length = round(alarm.period * time_scale, 9)
    if length <= 0:
        raise ValueError(f"time_scale must be positive, got {time_scale}")
    end = math.floor(now / length + 1e-9) * length
    count = alarm.evaluation_periods
    return length, [end - (count - i) * length for i in range(count)]


def evaluate(alarm: Alarm, datums: Iterable[Datum], now: float, time_scale: float,
             previous: AlarmState | None = None) -> AlarmState:
    """The alarm's state at ``now`` from ``datums`` (any; those of other metrics are left out).

    Pure. ``time_scale`` multiplies ``alarm.period`` (see the module's docstring); ``previous``
    is the state to keep where the service keeps it (``ignore`` with no data, a breaching
    datapoint too recent to alarm on); None stands for a new alarm's."""
    length, starts = periods_of(alarm, now, time_scale)
    grouped: dict[int, list[Datum]] = {}
    for datum in datums:
        if not alarm.watches(datum):
            continue
        index = math.floor((datum.timestamp - starts[0]) / length + 1e-9)
        if 0 <= index < len(starts):
            grouped.setdefault(index, []).append(datum)
    slots = []
    for index, start in enumerate(starts):
        if index in grouped:
            stats = merge(grouped[index])
            slots.append(_Slot(start, stats.sample_count, stats.value(alarm.statistic)))
        else:
            slots.append(_Slot(start, None, None))
    return _decide(alarm, slots, now, previous)


def _decide(alarm: Alarm, slots: list[_Slot], now: float,
            previous: AlarmState | None) -> AlarmState:
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    present = [(s.start, s.value) for s in slots if s.value is not None]
    missing = n - len(present)
    breaching = [(at, v) for at, v in present if alarm.breaches(v)]
    good = [(at, v) for at, v in present if not alarm.breaches(v)]
    data = _reason_data(alarm, slots, now)
    recent = tuple(v for _, v in present)

    def state(value: str, reason: str) -> AlarmState:
        return AlarmState(value, reason, data, now, recent)

    treat = alarm.treat_missing_data
    if not present:
        if treat in ("breaching", "notBreaching"):
            value = "ALARM" if treat == "breaching" else "OK"
            return state(value, f"Threshold Crossed: no datapoints were received for "
                                f"{_plural(n, 'period')} and {_plural(n, 'missing datapoint')} "
                                f"{_was(n)} treated as [{_treated(treat)}].")
        if treat == "ignore" and previous is not None:
            return previous
        return state("INSUFFICIENT_DATA",
                     f"Insufficient Data: {_plural(n, 'datapoint')} {_was(n)} unknown.")
    if missing and treat in ("breaching", "notBreaching"):
        count = len(breaching) + (missing if treat == "breaching" else 0)
        value = "ALARM" if count >= m else "OK"
        supports = (treat == "breaching") == (value == "ALARM")
        if supports:
            return state(value, _substituted_reason(alarm, value, breaching, good, missing))
        return state(value, _reason(alarm, value, breaching, good))
    if len(breaching) >= m:
        return state("ALARM", _reason(alarm, "ALARM", breaching, good))
    if missing and _alarms_on_old_breach(alarm, slots):
        return state("ALARM", _reason(alarm, "ALARM", breaching, good, m_of_n=True))
    if good:
        return state("OK", _reason(alarm, "OK", breaching, good))
    # only breaching datapoints, too recent to alarm on: the service waits for the rest
    if previous is not None:
        return previous
    return state("INSUFFICIENT_DATA",
                 f"Insufficient Data: {_plural(missing, 'datapoint')} {_was(missing)} unknown.")


def _alarms_on_old_breach(alarm: Alarm, slots: list[_Slot]) -> bool:
    """The service's rule for partial data: ALARM when a breaching datapoint is at least
    DatapointsToAlarm periods old (the newest period being 1 old) and every newer period is
    breaching or missing."""
    for age, slot in enumerate(reversed(slots), start=1):
        if slot.value is None:
            continue
        if not alarm.breaches(slot.value):
            return False
        if age >= alarm.datapoints_to_alarm:
            return True
    return False


def _treated(treat: str) -> str:
    return "Breaching" if treat == "breaching" else "NonBreaching"


def _reason(alarm: Alarm, value: str, breaching: list[tuple[float, float]],
            good: list[tuple[float, float]], m_of_n: bool = False) -> str:
    """The Threshold Crossed text for ``value`` (ALARM or OK) over the datapoints present."""
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    shown = (breaching if value == "ALARM" else good)[::-1]  # newest first
    phrase = COMPARISONS[alarm.comparison_operator][0]
    verb = f"{_was(len(shown))} {'' if value == 'ALARM' else 'not '}{phrase}"
    threshold = f"the threshold ({java_double(alarm.threshold)})"
    if m == n and not m_of_n:
        return _listed(shown, f"Threshold Crossed: {_plural(len(shown), 'datapoint')}",
                       f"{verb} {threshold}.")
    minimum, transition = (m, "OK -> ALARM") if value == "ALARM" else (n - m + 1, "ALARM -> OK")
    return _listed(shown, f"Threshold Crossed: {len(shown)} out of the last {n} datapoints",
                   f"{verb} {threshold} (minimum {_plural(minimum, 'datapoint')} for "
                   f"{transition} transition).")


def _substituted_reason(alarm: Alarm, value: str, breaching: list[tuple[float, float]],
                        good: list[tuple[float, float]], missing: int) -> str:
    """The text when missing datapoints, treated as breaching or not, decided the state."""
    shown = (breaching if value == "ALARM" else good)[::-1]
    tail = (f"{_plural(missing, 'missing datapoint')} {_was(missing)} treated as "
            f"[{_treated(alarm.treat_missing_data)}].")
    if not shown:
        return f"Threshold Crossed: {tail}"
    phrase = COMPARISONS[alarm.comparison_operator][0]
    verb = f"{_was(len(shown))} {'' if value == 'ALARM' else 'not '}{phrase}"
    return _listed(shown, f"Threshold Crossed: {_plural(len(shown), 'datapoint')}",
                   f"{verb} the threshold ({java_double(alarm.threshold)}) and {tail}")


def _reason_data(alarm: Alarm, slots: list[_Slot], now: float) -> dict[str, Any]:
    """The service's StateReasonData document, trimmed (oldest evaluated datapoints first) to
    its 4,000 characters."""
    data: dict[str, Any] = {"version": "1.0", "queryDate": data_time(now),
                            "startDate": data_time(slots[0].start)}
    if alarm.unit is not None:
        data["unit"] = alarm.unit
    data["statistic"] = alarm.statistic
    data["period"] = alarm.period
    data["recentDatapoints"] = [s.value for s in slots if s.value is not None]
    data["threshold"] = alarm.threshold
    data["evaluatedDatapoints"] = [
        {"timestamp": data_time(s.start), "sampleCount": s.sample_count, "value": s.value}
        for s in reversed(slots) if s.value is not None]
    while len(json.dumps(data, separators=(",", ":"))) > MAX_REASON_DATA:
        if data["evaluatedDatapoints"]:
            data["evaluatedDatapoints"].pop()
        else:
            data["recentDatapoints"].pop(0)
    return data


# -- the store ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlarmRecord:
    """What the store keeps of one alarm: its definition, state, and the service's times."""

    alarm: Alarm
    state: AlarmState
    configured: float
    """When the definition was last changed (AlarmConfigurationUpdatedTimestamp)."""
    transitioned: float
    """When the state value last changed (StateTransitionedTimestamp)."""

    def to_json(self) -> dict[str, Any]:
        return {"alarm": self.alarm.to_json(), "state": self.state.to_json(),
                "configured": self.configured, "transitioned": self.transitioned}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlarmRecord:
        return cls(Alarm.from_json(data["alarm"]), AlarmState.from_json(data["state"]),
                   float(data["configured"]), float(data["transitioned"]))


class AlarmStore:
    """The alarms of one state directory: ``<state_root>/cloudwatch/alarms/<sha256 of the
    name>.json`` (an alarm's name may hold any character), private, written atomically under
    one lock."""

    def __init__(self, state_root: Path, clock: Callable[[], float] | None = None) -> None:
        self.directory = cloudwatch_dir(state_root) / "alarms"
        self._clock = clock or _now

    def _path(self, name: str) -> Path:
        return self.directory / (hashlib.sha256(name.encode()).hexdigest() + ".json")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        make_private_dir(self.directory)
        fd = open_private(self.directory / ".lock", os.O_WRONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def record(self, name: str) -> AlarmRecord | None:
        try:
            record = AlarmRecord.from_json(read_json(self._path(name)))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return record if record.alarm.name == name else None

    def records(self) -> list[AlarmRecord]:
        """Every alarm's record, by name."""
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError:
            return []
        found = []
        for path in paths:
            with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
                found.append(AlarmRecord.from_json(read_json(path)))
        return sorted(found, key=lambda r: r.alarm.name)

    def put(self, alarm: Alarm) -> None:
        """Create or update ``alarm``; a changed definition starts again from
        INSUFFICIENT_DATA (an unchanged one keeps its state)."""
        with self._locked():
            existing = self.record(alarm.name)
            if existing is not None and existing.alarm == alarm:
                return
            now = self._clock()
            write_json_atomic(self._path(alarm.name),
                              AlarmRecord(alarm, initial_state(now), now, now).to_json())

    def get(self, name: str) -> Alarm | None:
        record = self.record(name)
        return None if record is None else record.alarm

    def delete(self, name: str) -> bool:
        """Remove the alarm; False when there was none."""
        with self._locked():
            if self.record(name) is None:
                return False
            with contextlib.suppress(FileNotFoundError):
                self._path(name).unlink()
            return True

    def list(self) -> list[Alarm]:
        return [record.alarm for record in self.records()]

    def state(self, name: str) -> AlarmState:
        """The alarm's state (ResourceNotFound when there is no such alarm)."""
        record = self.record(name)
        if record is None:
            raise _not_found(name)
        return record.state

    def set_state(self, name: str, state: AlarmState, evaluated: Alarm | None = None) -> bool:
        """Record ``state`` (ResourceNotFound when there is no such alarm); the transition time
        moves only when the value changes. ``evaluated``: the definition ``state`` was worked
        out from -- when the alarm was put again since, nothing is written (a changed alarm
        starts from INSUFFICIENT_DATA, not from its old definition's state) and False is
        returned."""
        if state.value not in STATE_VALUES:
            raise ValueError(f"unknown alarm state {state.value!r}")
        with self._locked():
            record = self.record(name)
            if record is None:
                raise _not_found(name)
            if evaluated is not None and record.alarm != evaluated:
                return False
            transitioned = record.transitioned if record.state.value == state.value \
                else state.updated
            write_json_atomic(self._path(name),
                              replace(record, state=state, transitioned=transitioned).to_json())
            return True


def _not_found(name: str) -> Exception:
    return ResourceNotFound(f"Alarm {name} not found")


def _now() -> float:
    return datetime.now(timezone.utc).timestamp()


__all__ = ["COMPARISONS", "INITIAL_REASON", "STATE_VALUES", "TREAT_MISSING_DATA", "Alarm",
           "AlarmRecord", "AlarmState", "AlarmStore", "ResourceNotFound", "data_time",
           "evaluate", "initial_state", "java_double", "periods_of", "reason_time"]
