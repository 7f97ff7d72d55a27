"""GetMetricStatistics and GetMetricData over statistic sets: aggregation, the service's checks,
paging."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_mode.cloudwatch.datums import SAGEMAKER_NAMESPACE, Datum, dimensions_of
from local_mode.cloudwatch.query import (
    InvalidNextToken,
    InvalidParameterCombination,
    InvalidParameterValue,
    MissingParameter,
    ValidationError,
    get_metric_data,
    get_metric_statistics,
    page_token,
    rounded_start,
    token_offset,
    valid_period,
)

NOW = 1_770_000_000.0  # a whole minute
DIMS = dimensions_of({"EndpointName": "ep", "VariantName": "AllTraffic"})
DIMENSIONS = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]


def datum(at: float, *values: float, name: str = "Invocations", unit: str = "None",
          dims: tuple[tuple[str, str], ...] = DIMS, period: float = 1.0) -> Datum:
    return Datum.of_values(SAGEMAKER_NAMESPACE, name, dims, at, period, values, unit)


def statistics(datums: Iterable[Datum], **request: object) -> dict:
    base: dict = {"Namespace": SAGEMAKER_NAMESPACE, "MetricName": "Invocations",
                  "Dimensions": DIMENSIONS, "StartTime": NOW - 600, "EndTime": NOW,
                  "Period": 60, "Statistics": ["SampleCount", "Sum", "Average", "Minimum",
                                               "Maximum"]}
    return get_metric_statistics(datums, base | request, NOW)


def test_sets_in_one_period_merge_and_every_statistic_follows() -> None:
    datums = [datum(NOW - 120, 1, 2), datum(NOW - 119, 10), datum(NOW - 61, -3),
              datum(NOW - 60, 7)]
    points = statistics(datums)["Datapoints"]
    assert [p["Timestamp"].timestamp() for p in points] == [NOW - 120, NOW - 60]
    first, second = points
    assert (first["SampleCount"], first["Sum"], first["Minimum"], first["Maximum"]) == \
        (4, 10, -3, 10)
    assert first["Average"] == 2.5 and first["Unit"] == "None"
    assert (second["SampleCount"], second["Sum"], second["Average"]) == (1, 7, 7)


def test_only_the_metric_asked_for_counts() -> None:
    other = dimensions_of({"EndpointName": "ep", "VariantName": "Canary"})
    datums = [datum(NOW - 60, 1), datum(NOW - 60, 5, dims=other),
              datum(NOW - 60, 9, name="ModelLatency"),
              datum(NOW - 60, 2, dims=dimensions_of({"EndpointName": "ep"}))]
    points = statistics(datums)["Datapoints"]
    assert [(p["Sum"], p["SampleCount"]) for p in points] == [(1, 1)]


def test_units_are_kept_apart_and_a_unit_filter_chooses() -> None:
    datums = [datum(NOW - 60, 1, unit="Count"), datum(NOW - 60, 100, unit="Microseconds")]
    points = statistics(datums)["Datapoints"]
    assert sorted((p["Unit"], p["Sum"]) for p in points) == [("Count", 1), ("Microseconds", 100)]
    only = statistics(datums, Unit="Count")["Datapoints"]
    assert [(p["Unit"], p["Sum"]) for p in only] == [("Count", 1)]


def test_only_the_statistics_asked_for_are_returned() -> None:
    point = statistics([datum(NOW - 60, 4)], Statistics=["Maximum"])["Datapoints"][0]
    assert set(point) == {"Timestamp", "Maximum", "Unit"}


@pytest.mark.parametrize("period", [0, 2, 7, 45, 61, 90])
def test_a_period_off_the_services_list_is_refused(period: int) -> None:
    with pytest.raises(InvalidParameterValue, match="must be 1, 5, 10, 30 or a multiple of 60"):
        statistics([], Period=period)


@pytest.mark.parametrize("period", [1, 5, 10, 30, 60, 120, 300, 3600, 86400])
def test_the_services_periods(period: int) -> None:
    assert valid_period(period)


def test_start_must_come_before_end() -> None:
    with pytest.raises(InvalidParameterValue, match="StartTime must be less than"):
        statistics([], StartTime=NOW, EndTime=NOW)


def test_more_than_1440_datapoints_is_an_invalid_combination() -> None:
    with pytest.raises(InvalidParameterCombination,
                       match="requested up to 1,441 datapoints, which exceeds the limit of 1,440"):
        statistics([], StartTime=NOW - 1441, EndTime=NOW, Period=1)
    assert statistics([], StartTime=NOW - 1440, EndTime=NOW, Period=1)["Datapoints"] == []


def test_percentiles_are_refused_not_faked() -> None:
    with pytest.raises(InvalidParameterValue, match="does not compute percentiles"):
        statistics([], Statistics=None, ExtendedStatistics=["p99"])
    with pytest.raises(InvalidParameterCombination):
        statistics([], ExtendedStatistics=["p99"])
    with pytest.raises(MissingParameter):
        statistics([], Statistics=None)


def test_the_start_is_rounded_as_the_service_rounds_it() -> None:
    assert rounded_start(NOW + 37, 60, NOW) == NOW  # to the minute
    assert rounded_start(NOW + 7, 5, NOW) == NOW + 5  # to a high-resolution period
    twenty_days = NOW - 20 * 86400 + 70  # 15 to 63 days back: to 5 minutes
    assert rounded_start(twenty_days, 60, NOW) == twenty_days - twenty_days % 300
    seventy_days = NOW - 70 * 86400 + 70  # further back: to the hour
    assert rounded_start(seventy_days, 3600, NOW) == seventy_days - seventy_days % 3600


# -- the aggregation, for any datums ------------------------------------------------------------
datum_lists = st.lists(st.tuples(st.integers(0, 1199), st.lists(
    st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=4)), max_size=40)


@given(datum_lists, st.sampled_from([1, 5, 10, 30, 60, 120, 300, 600]))
def test_every_sample_lands_in_exactly_one_period(points: list[tuple[int, list[float]]],
                                                   period: int) -> None:
    start, end = NOW - 1200, NOW
    datums = [datum(start + offset, *values) for offset, values in points]
    response = statistics(datums, StartTime=start, EndTime=end, Period=period)
    returned = response["Datapoints"]
    assert math.isclose(sum(p["SampleCount"] for p in returned),
                        sum(len(values) for _, values in points))
    for point in returned:
        at = point["Timestamp"].timestamp()
        assert (at - start) % period == 0
        inside = [v for offset, values in points if at <= start + offset < at + period
                  for v in values]
        assert point["SampleCount"] == len(inside)
        assert math.isclose(point["Sum"], math.fsum(inside), abs_tol=1e-6)
        assert point["Minimum"] == min(inside) and point["Maximum"] == max(inside)
        assert math.isclose(point["Average"], math.fsum(inside) / len(inside), abs_tol=1e-6)


@given(datum_lists, st.sampled_from([1, 10, 60, 300]),
       st.sampled_from(["Sum", "Average", "Minimum", "Maximum", "SampleCount"]),
       st.sampled_from(["TimestampAscending", "TimestampDescending"]))
def test_get_metric_data_agrees_with_get_metric_statistics(
        points: list[tuple[int, list[float]]], period: int, stat: str, scan: str) -> None:
    start, end = NOW - 1200, NOW
    datums = [datum(start + offset, *values) for offset, values in points]
    expected = {p["Timestamp"]: p[stat] for p in statistics(
        datums, StartTime=start, EndTime=end, Period=period, Statistics=[stat])["Datapoints"]}
    response = get_metric_data(lambda *_: datums, {
        "MetricDataQueries": [{"Id": "q", "MetricStat": {
            "Metric": {"Namespace": SAGEMAKER_NAMESPACE, "MetricName": "Invocations",
                       "Dimensions": DIMENSIONS}, "Period": period, "Stat": stat}}],
        "StartTime": start, "EndTime": end, "ScanBy": scan}, NOW)
    (result,) = response["MetricDataResults"]
    assert dict(zip(result["Timestamps"], result["Values"])) == expected
    assert result["Timestamps"] == sorted(result["Timestamps"],
                                          reverse=scan == "TimestampDescending")
    assert result["StatusCode"] == "Complete" and "NextToken" not in response


# -- GetMetricData ---------------------------------------------------------------------------------
def _query(query_id: str, stat: str = "Sum", **extra: object) -> dict:
    return {"Id": query_id, "MetricStat": {"Metric": {
        "Namespace": SAGEMAKER_NAMESPACE, "MetricName": "Invocations",
        "Dimensions": DIMENSIONS}, "Period": 60, "Stat": stat}} | extra


def _data(datums: list[Datum], queries: list[dict], **request: object) -> dict:
    return get_metric_data(lambda *_: datums, {"MetricDataQueries": queries,
                                               "StartTime": NOW - 600, "EndTime": NOW}
                           | request, NOW)


def test_pages_of_max_datapoints_cover_every_point_once() -> None:
    datums = [datum(NOW - 60 * k, k) for k in range(1, 8)]
    queries = [_query("a"), _query("b", "Maximum", Label="peak"),
               _query("hidden", ReturnData=False)]
    seen: dict[str, list[float]] = {"a": [], "b": []}
    request: dict = {"MaxDatapoints": 3}
    pages = 0
    while True:
        response = _data(datums, queries, **request)
        pages += 1
        assert [r["Id"] for r in response["MetricDataResults"]] == ["a", "b"]
        for result in response["MetricDataResults"]:
            seen[result["Id"]] += result["Values"]
        if "NextToken" not in response:
            assert all(r["StatusCode"] == "Complete" for r in response["MetricDataResults"])
            break
        request["NextToken"] = response["NextToken"]
    assert pages == 5  # 14 points, 3 a page
    assert seen["a"] == seen["b"] == [1, 2, 3, 4, 5, 6, 7]  # newest first
    assert _data(datums, queries)["MetricDataResults"][1]["Label"] == "peak"


def test_a_token_of_another_request_is_refused() -> None:
    token = _data([datum(NOW - 60, 1), datum(NOW - 120, 1)], [_query("a")],
                  MaxDatapoints=1)["NextToken"]
    with pytest.raises(InvalidNextToken):
        _data([], [_query("other")], NextToken=token)


@given(st.text(max_size=60))
def test_any_token_text_is_a_position_or_invalid_next_token(text: str) -> None:
    request = {"MetricDataQueries": [_query("a")]}
    try:
        offset = token_offset(text, request)
    except InvalidNextToken:
        return
    assert offset >= 0


@given(st.integers(0, 10**9))
def test_a_token_carries_its_offset(offset: int) -> None:
    request = {"MetricDataQueries": [_query("a")], "StartTime": 1}
    assert token_offset(page_token(offset, request), request | {"MaxDatapoints": 5}) == offset


@pytest.mark.parametrize(("query", "message"), [
    ({"Id": "e", "Expression": "SUM(METRICS())"}, "does not evaluate metric math"),
    (_query("p", "p99"), "does not compute percentiles"),
    (_query("t", "tm90"), "extended statistic"),
    (_query("x", "Avg"), "not a valid statistic"),
    (_query("Upper"), "starts with a lowercase letter"),
    ({"Id": "n"}, "Exactly one of"),
    (_query("w") | {"MetricStat": _query("w")["MetricStat"] | {"Period": 45}},
     "must be 1, 5, 10, 30"),
])
def test_what_local_mode_refuses_says_why(query: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _data([], [query])


def test_query_ids_are_unique() -> None:
    with pytest.raises(ValidationError, match="not unique"):
        _data([], [_query("a"), _query("a")])
