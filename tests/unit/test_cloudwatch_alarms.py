"""Metric alarms: M out of N, missing data, the service's reason text, time compression, the
store."""

from __future__ import annotations

import re
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_mode.cloudwatch.alarms import (
    INITIAL_REASON,
    Alarm,
    AlarmState,
    AlarmStore,
    ResourceNotFound,
    evaluate,
    java_double,
)
from local_mode.cloudwatch.datums import SAGEMAKER_NAMESPACE, Datum, dimensions_of
from local_mode.cloudwatch.query import ValidationError

NOW = datetime(2026, 12, 2, 10, 4, tzinfo=timezone.utc).timestamp()
DIMS = dimensions_of({"EndpointName": "ep", "VariantName": "AllTraffic"})
REQUEST = {"AlarmName": "high-latency", "Namespace": SAGEMAKER_NAMESPACE,
           "MetricName": "ModelLatency", "Statistic": "Average", "Period": 60,
           "EvaluationPeriods": 3, "Threshold": 70.0,
           "ComparisonOperator": "GreaterThanThreshold",
           "Dimensions": [{"Name": "EndpointName", "Value": "ep"},
                          {"Name": "VariantName", "Value": "AllTraffic"}]}


def alarm(**members: object) -> Alarm:
    return Alarm.from_request(REQUEST | members)


def series(*values: float | None, end: float = NOW, period: float = 60.0) -> list[Datum]:
    """One datum per period ending at ``end``, oldest first; None leaves the period empty."""
    count = len(values)
    return [Datum.of_values(SAGEMAKER_NAMESPACE, "ModelLatency", DIMS,
                            end - (count - i) * period, period, [v])
            for i, v in enumerate(values) if v is not None]


# -- the reason text --------------------------------------------------------------------------------
def test_every_datapoint_breaching_reads_as_the_service_writes_it() -> None:
    state = evaluate(alarm(), series(75.0, 80.0, 81.0), NOW, 1.0)
    assert state.value == "ALARM"
    assert state.reason == (
        "Threshold Crossed: 3 datapoints [81.0 (02/12/26 10:03:00), 80.0 (02/12/26 10:02:00), "
        "75.0 (02/12/26 10:01:00)] were greater than the threshold (70.0).")
    assert state.recent == (75.0, 80.0, 81.0)


def test_one_good_datapoint_of_three_keeps_a_3_of_3_alarm_ok() -> None:
    state = evaluate(alarm(), series(75.0, 60.5, 81.0), NOW, 1.0)
    assert (state.value, state.reason) == (
        "OK", "Threshold Crossed: 1 datapoint [60.5 (02/12/26 10:02:00)] was not greater than "
              "the threshold (70.0).")


def test_m_out_of_n() -> None:
    two_of_three = alarm(DatapointsToAlarm=2)
    state = evaluate(two_of_three, series(75.0, 60.0, 81.0), NOW, 1.0)
    assert (state.value, state.reason) == (
        "ALARM", "Threshold Crossed: 2 out of the last 3 datapoints [81.0 (02/12/26 10:03:00), "
                 "75.0 (02/12/26 10:01:00)] were greater than the threshold (70.0) (minimum 2 "
                 "datapoints for OK -> ALARM transition).")
    state = evaluate(two_of_three, series(10.0, 60.0, 81.0), NOW, 1.0)
    assert (state.value, state.reason) == (
        "OK", "Threshold Crossed: 2 out of the last 3 datapoints [60.0 (02/12/26 10:02:00), "
              "10.0 (02/12/26 10:01:00)] were not greater than the threshold (70.0) (minimum 2 "
              "datapoints for ALARM -> OK transition).")


def test_the_comparison_operators_and_their_words() -> None:
    for operator, value, words in [("GreaterThanOrEqualToThreshold", 70.0,
                                    "was greater than or equal to"),
                                   ("LessThanThreshold", 1.5, "was less than"),
                                   ("LessThanOrEqualToThreshold", 70.0,
                                    "was less than or equal to")]:
        state = evaluate(alarm(ComparisonOperator=operator, EvaluationPeriods=1),
                         series(value), NOW, 1.0)
        assert state.value == "ALARM" and f"{words} the threshold (70.0)." in state.reason


def test_statistic_and_period_merge_what_the_router_stored() -> None:
    # three one-second sets inside one 60-second period: the alarm sees their Sum
    datums = [Datum.of_values(SAGEMAKER_NAMESPACE, "ModelLatency", DIMS, NOW - 60 + s, 1.0,
                              [30.0]) for s in (0, 10, 59)]
    state = evaluate(alarm(Statistic="Sum", EvaluationPeriods=1), datums, NOW, 1.0)
    assert state.value == "ALARM" and state.recent == (90.0,)
    state = evaluate(alarm(Statistic="Maximum", EvaluationPeriods=1), datums, NOW, 1.0)
    assert state.value == "OK" and state.reason_data["evaluatedDatapoints"] == [
        {"timestamp": "2026-12-02T10:03:00.000+0000", "sampleCount": 3.0, "value": 30.0}]


def test_other_metrics_and_units_are_not_watched() -> None:
    others = [Datum.of_values(SAGEMAKER_NAMESPACE, "Invocations", DIMS, NOW - 60, 60, [99]),
              Datum.of_values(SAGEMAKER_NAMESPACE, "ModelLatency",
                              dimensions_of({"EndpointName": "ep"}), NOW - 60, 60, [99]),
              Datum.of_values(SAGEMAKER_NAMESPACE, "ModelLatency", DIMS, NOW - 60, 60, [99],
                              unit="Milliseconds")]
    state = evaluate(alarm(EvaluationPeriods=1, Unit="Microseconds"), others, NOW, 1.0)
    assert state.value == "INSUFFICIENT_DATA"


def test_reason_data_is_the_services_document() -> None:
    state = evaluate(alarm(Unit="None"), series(75.0, 80.0, 81.0), NOW + 5.5, 1.0)
    assert state.reason_data == {
        "version": "1.0", "queryDate": "2026-12-02T10:04:05.500+0000",
        "startDate": "2026-12-02T10:01:00.000+0000", "unit": "None", "statistic": "Average",
        "period": 60, "recentDatapoints": [75.0, 80.0, 81.0], "threshold": 70.0,
        "evaluatedDatapoints": [
            {"timestamp": "2026-12-02T10:03:00.000+0000", "sampleCount": 1.0, "value": 81.0},
            {"timestamp": "2026-12-02T10:02:00.000+0000", "sampleCount": 1.0, "value": 80.0},
            {"timestamp": "2026-12-02T10:01:00.000+0000", "sampleCount": 1.0, "value": 75.0}]}


def test_a_reason_over_many_periods_fits_the_services_lengths() -> None:
    many = alarm(EvaluationPeriods=1440)
    state = evaluate(many, series(*[100.0 + i for i in range(1440)]), NOW, 1.0)
    assert state.value == "ALARM" and len(state.reason) <= 1023
    assert state.reason.startswith("Threshold Crossed: 1440 datapoints [1539.0 (")
    assert ", ...] were greater than the threshold (70.0)." in state.reason
    import json

    assert len(json.dumps(state.reason_data, separators=(",", ":"))) <= 4000


# -- missing data ----------------------------------------------------------------------------------
def test_no_data_is_insufficient_data_by_default() -> None:
    state = evaluate(alarm(), [], NOW, 1.0)
    assert (state.value, state.reason) == ("INSUFFICIENT_DATA",
                                           "Insufficient Data: 3 datapoints were unknown.")
    assert state.reason_data["recentDatapoints"] == [] and state.recent == ()


def test_missing_treated_as_breaching_or_not() -> None:
    state = evaluate(alarm(TreatMissingData="breaching"), [], NOW, 1.0)
    assert (state.value, state.reason) == (
        "ALARM", "Threshold Crossed: no datapoints were received for 3 periods and 3 missing "
                 "datapoints were treated as [Breaching].")
    state = evaluate(alarm(TreatMissingData="notBreaching", EvaluationPeriods=1), [], NOW, 1.0)
    assert (state.value, state.reason) == (
        "OK", "Threshold Crossed: no datapoints were received for 1 period and 1 missing "
              "datapoint was treated as [NonBreaching].")
    state = evaluate(alarm(TreatMissingData="notBreaching"), series(10.0, None, None), NOW, 1.0)
    assert (state.value, state.reason) == (
        "OK", "Threshold Crossed: 1 datapoint [10.0 (02/12/26 10:01:00)] was not greater than "
              "the threshold (70.0) and 2 missing datapoints were treated as [NonBreaching].")
    state = evaluate(alarm(TreatMissingData="breaching"), series(80.0, None, 90.0), NOW, 1.0)
    assert state.value == "ALARM" and state.reason.endswith(
        "were greater than the threshold (70.0) and 1 missing datapoint was treated as "
        "[Breaching].")


def test_ignore_keeps_the_state_without_data() -> None:
    before = AlarmState("ALARM", "earlier", {"x": 1}, NOW - 60, (99.0,))
    assert evaluate(alarm(TreatMissingData="ignore"), [], NOW, 1.0, before) is before
    assert evaluate(alarm(TreatMissingData="ignore"), [], NOW, 1.0).value == \
        "INSUFFICIENT_DATA"
    assert evaluate(alarm(TreatMissingData="ignore"), series(10.0, None, None), NOW, 1.0,
                    before).value == "OK"


def test_an_old_enough_breach_alarms_on_partial_data_a_recent_one_waits() -> None:
    three_of_five = alarm(EvaluationPeriods=5, DatapointsToAlarm=3)
    state = evaluate(three_of_five, series(None, None, 90.0, None, None), NOW, 1.0)
    assert (state.value, state.reason) == (
        "ALARM", "Threshold Crossed: 1 out of the last 5 datapoints [90.0 (02/12/26 10:01:00)] "
                 "was greater than the threshold (70.0) (minimum 3 datapoints for OK -> ALARM "
                 "transition).")
    before = AlarmState("OK", "earlier", {}, NOW - 60)
    assert evaluate(three_of_five, series(None, None, None, None, 90.0), NOW, 1.0,
                    before) is before
    assert evaluate(three_of_five, series(None, None, None, 90.0, 10.0), NOW, 1.0).value == "OK"


# -- time compression -------------------------------------------------------------------------------
def test_time_scale_multiplies_the_period() -> None:
    # stored a datapoint a second (time_scale 1/60): the 60-second alarm evaluates seconds
    datums = series(75.0, 80.0, 81.0, end=NOW, period=1.0)
    state = evaluate(alarm(), datums, NOW + 0.25, 1 / 60)
    assert state.value == "ALARM" and state.recent == (75.0, 80.0, 81.0)
    assert state.reason_data["period"] == 60  # the alarm's own Period
    assert state.reason_data["startDate"] == "2026-12-02T10:03:57.000+0000"


@given(st.lists(st.floats(0, 200, allow_nan=False), min_size=3, max_size=3),
       st.sampled_from([1, 2, 5, 10, 60]))
def test_evaluation_is_the_same_at_any_time_scale(values: list[float], seconds: int) -> None:
    scale = seconds / 60
    cloud = evaluate(alarm(), series(*values), NOW, 1.0)
    local = evaluate(alarm(), series(*values, end=NOW, period=seconds), NOW, scale)
    assert (local.value, local.recent) == (cloud.value, cloud.recent)


# -- M of N, for any datapoints ---------------------------------------------------------------------
def _listed(reason: str) -> list[float]:
    inside = re.search(r"\[(.*?)\]", reason)
    assert inside is not None, reason
    return [float(v) for v in re.findall(r"(\S+) \(\d\d/\d\d/\d\d \d\d:\d\d:\d\d\)",
                                         inside.group(1))]


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=n, max_size=n),
    st.integers(1, n))),
    st.sampled_from(["GreaterThanThreshold", "GreaterThanOrEqualToThreshold",
                     "LessThanThreshold", "LessThanOrEqualToThreshold"]),
    st.floats(-1e9, 1e9, allow_nan=False))
def test_complete_data_alarms_exactly_when_m_of_n_breach(
        case: tuple[list[float], int], operator: str, threshold: float) -> None:
    values, m = case
    watched = alarm(EvaluationPeriods=len(values), DatapointsToAlarm=m, Threshold=threshold,
                    ComparisonOperator=operator)
    state = evaluate(watched, series(*values), NOW, 1.0)
    breaching = [v for v in values if watched.breaches(v)]
    assert state.value == ("ALARM" if len(breaching) >= m else "OK")
    supporting = breaching if state.value == "ALARM" else \
        [v for v in values if not watched.breaches(v)]
    assert _listed(state.reason) == supporting[::-1]  # newest first
    assert (" not " in state.reason) == (state.value == "OK")
    assert f"the threshold ({java_double(threshold)})" in state.reason
    assert state.recent == tuple(values)


@given(st.lists(st.one_of(st.none(), st.floats(0, 140, allow_nan=False)), min_size=1,
                max_size=6).flatmap(lambda v: st.tuples(st.just(v), st.integers(1, len(v)))),
       st.sampled_from(["breaching", "notBreaching"]))
def test_missing_data_counts_as_its_treatment_says(case: tuple[list[float | None], int],
                                                   treat: str) -> None:
    values, m = case
    watched = alarm(EvaluationPeriods=len(values), DatapointsToAlarm=m, TreatMissingData=treat)
    state = evaluate(watched, series(*values), NOW, 1.0)
    count = sum(1 for v in values if (v is None and treat == "breaching")
                or (v is not None and v > 70.0))
    assert state.value == ("ALARM" if count >= m else "OK")
    assert state.reason.startswith("Threshold Crossed: ")


@given(st.lists(st.one_of(st.none(), st.floats(0, 140, allow_nan=False)), min_size=1,
                max_size=6).flatmap(lambda v: st.tuples(st.just(v), st.integers(1, len(v)))))
def test_missing_never_alarms_without_a_breach_nor_stays_ok_on_m_breaches(
        case: tuple[list[float | None], int]) -> None:
    values, m = case
    watched = alarm(EvaluationPeriods=len(values), DatapointsToAlarm=m)
    state = evaluate(watched, series(*values), NOW, 1.0)
    breaching = sum(1 for v in values if v is not None and v > 70.0)
    if all(v is None for v in values):
        assert state.value == "INSUFFICIENT_DATA"
    elif breaching == 0:
        assert state.value == "OK"
    elif breaching >= m:
        assert state.value == "ALARM"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_java_doubles_read_back_exactly(value: float) -> None:
    text = java_double(value)
    assert float(text) == value
    assert "." in text and "e" not in text


@pytest.mark.parametrize(("value", "text"), [
    (81.0, "81.0"), (0.001, "0.001"), (1e7, "1.0E7"), (1.5e-5, "1.5E-5"), (-2.0, "-2.0"),
    (123456789.0, "1.23456789E8"), (0.19726775956284198, "0.19726775956284198"), (0.0, "0.0"),
    (9999999.5, "9999999.5")])
def test_java_double_examples(value: float, text: str) -> None:
    assert java_double(value) == text


# -- the definition ----------------------------------------------------------------------------------
def test_a_request_becomes_an_alarm_with_the_services_defaults() -> None:
    defined = Alarm.from_request(REQUEST | {"AlarmActions": ["arn:aws:x"], "Unit": "Percent"})
    assert defined.datapoints_to_alarm == 3 and defined.treat_missing_data == "missing"
    assert defined.alarm_actions == ("arn:aws:x",) and defined.unit == "Percent"
    assert defined.dimensions == DIMS and defined.actions_enabled
    assert defined.arn("us-east-1", "123456789012") == \
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:high-latency"
    assert Alarm.from_json(defined.to_json()) == defined


@pytest.mark.parametrize(("members", "message"), [
    ({"Period": 45}, "must be 10, 30 or a multiple of 60"),
    ({"DatapointsToAlarm": 4}, "DatapointsToAlarm \\(4\\) must be less than or equal"),
    ({"TreatMissingData": "sometimes"}, "TreatMissingData"),
    ({"Period": 3600, "EvaluationPeriods": 25}, "must not exceed 86400 seconds"),
    ({"Statistic": None, "ExtendedStatistic": "p99"}, "does not compute percentiles"),
    ({"Metrics": [{"Id": "m"}]}, "metric math"),
    ({"ComparisonOperator": "GreaterThanUpperThreshold"}, "ThresholdMetricId"),
    ({"Threshold": None, "EvaluationPeriods": None},
     "2 validation error\\(s\\).*'evaluationPeriods'.*'threshold'"),
    ({"EvaluationInterval": 60}, "does not emulate EvaluationInterval"),
])
def test_a_bad_definition_is_refused(members: dict, message: str) -> None:
    request = {k: v for k, v in (REQUEST | members).items() if v is not None}
    with pytest.raises(ValidationError, match=message):
        Alarm.from_request(request)


# -- the store ---------------------------------------------------------------------------------------
def test_the_store_keeps_alarms_and_states_privately(tmp_path: Path) -> None:
    clock = iter([100.0, 200.0, 300.0])
    store = AlarmStore(tmp_path, clock=lambda: next(clock))
    odd = alarm(AlarmName="latency / ep 1 — é")
    store.put(odd)
    store.put(alarm())
    assert [a.name for a in store.list()] == ["high-latency", "latency / ep 1 — é"]
    assert store.get(odd.name) == odd and store.get("absent") is None
    assert store.state(odd.name) == AlarmState("INSUFFICIENT_DATA", INITIAL_REASON, {}, 100.0)
    for path in (tmp_path / "cloudwatch" / "alarms").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cloudwatch" / "alarms").stat().st_mode) == 0o700

    alarmed = AlarmState("ALARM", "Threshold Crossed: ...", {"version": "1.0"}, 150.0, (99.0,))
    store.set_state(odd.name, alarmed)
    again = AlarmState("ALARM", "Threshold Crossed: still", {}, 160.0, (98.0,))
    store.set_state(odd.name, again)
    record = store.record(odd.name)
    assert record is not None and record.state == again
    assert record.transitioned == 150.0 and record.configured == 100.0

    store.put(odd)  # unchanged: the state stays
    assert store.state(odd.name) == again
    store.put(alarm(AlarmName=odd.name, Threshold=80.0))  # changed: starts again
    assert store.state(odd.name).value == "INSUFFICIENT_DATA"
    assert store.get(odd.name) is not None and store.get(odd.name).threshold == 80.0

    assert store.delete(odd.name) and not store.delete(odd.name)
    assert [a.name for a in store.list()] == ["high-latency"]
    with pytest.raises(ResourceNotFound, match="Alarm absent not found"):
        store.state("absent")
    with pytest.raises(ResourceNotFound):
        store.set_state("absent", again)


def test_an_empty_store_lists_nothing_and_creates_nothing(tmp_path: Path) -> None:
    store = AlarmStore(tmp_path / "state")
    assert store.list() == [] and store.get("x") is None
    assert not (tmp_path / "state").exists()
