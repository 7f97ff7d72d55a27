"""The router's invocation meters and the statistic sets a period's flush makes of them."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from local_mode.cloudwatch.datums import ENDPOINT_INSTANCE_NAMESPACE, SAGEMAKER_NAMESPACE, Datum
from local_mode.cloudwatch.recorder import EndpointMetrics

DIMS = (("EndpointName", "ep"), ("VariantName", "AllTraffic"))


def by_name(datums: list[Datum]) -> dict[str, Datum]:
    named = {d.metric_name: d for d in datums}
    assert len(named) == len(datums), "one datum per metric and variant"
    return named


def test_a_period_of_invocations_becomes_the_services_metrics() -> None:
    metrics = EndpointMetrics("ep")
    meter = metrics.meter("AllTraffic")
    meter.invocation(200, 2, 0.010, 0.012)
    meter.invocation(404, 2, 0.001, 0.0015)
    meter.invocation(503, 1, 0.002, 0.0021)
    meter.invocation(0, 1, 60.0, 60.001)  # no answer in time: a 5xx
    meter.setup.add(250_000.0)
    datums = by_name(metrics.flush(1_800_000_000.0, 60.0))
    for datum in datums.values():
        assert datum.dimensions == DIMS
        assert (datum.timestamp, datum.period) == (1_800_000_000.0, 60.0)
    invocations = datums["Invocations"]
    assert (invocations.sample_count, invocations.sum, invocations.unit) == (4, 4, "None")
    assert datums["InvocationsPerInstance"].sum == 0.5 + 0.5 + 1 + 1
    assert (datums["Invocation4XXErrors"].sum, datums["Invocation4XXErrors"].sample_count) == (1, 4)
    assert datums["Invocation5XXErrors"].sum == 2
    assert (datums["Invocation5XXErrors"].minimum, datums["Invocation5XXErrors"].maximum) == (0, 1)
    latency = datums["ModelLatency"]
    assert latency.unit == "Microseconds"
    assert math.isclose(latency.sum, (0.010 + 0.001 + 0.002 + 60.0) * 1e6)
    assert math.isclose(latency.maximum, 60e6) and math.isclose(latency.minimum, 1000.0)
    overhead = datums["OverheadLatency"]
    assert math.isclose(overhead.sum, (0.002 + 0.0005 + 0.0001 + 0.001) * 1e6, rel_tol=1e-6)
    assert datums["ModelSetupTime"].sample_count == 1
    assert all(d.namespace == SAGEMAKER_NAMESPACE for d in datums.values())


def test_the_meter_keeps_counting_after_a_flush() -> None:
    metrics = EndpointMetrics("ep")
    meter = metrics.meter("AllTraffic")
    meter.invocation(200, 1, 0.001, 0.002)
    assert len(metrics.flush(0.0, 1.0)) == 6
    assert metrics.flush(1.0, 1.0) == []  # nothing happened, nothing serving: no datum
    meter.invocation(200, 1, 0.001, 0.002)  # the router's reference still counts
    assert by_name(metrics.flush(2.0, 1.0))["Invocations"].sum == 1
    assert metrics.meter("AllTraffic") is meter


def test_an_idle_serving_variant_reports_zero_invocations() -> None:
    metrics = EndpointMetrics("ep")
    metrics.meter("AllTraffic")
    metrics.meter("Canary")
    datums = metrics.flush(0.0, 1.0, serving={"AllTraffic"})
    assert {d.metric_name for d in datums} == {"Invocations", "InvocationsPerInstance",
                                               "Invocation4XXErrors", "Invocation5XXErrors"}
    assert all(d.sum == 0 and d.sample_count == 1 for d in datums)
    assert all(dict(d.dimensions)["VariantName"] == "AllTraffic" for d in datums)


def test_instance_samples_go_to_the_endpoints_namespace() -> None:
    metrics = EndpointMetrics("ep")
    meter = metrics.meter("AllTraffic")
    meter.cpu.add(150.0)
    meter.cpu.add(50.0)
    meter.memory.add(12.5)
    datums = by_name(metrics.flush(0.0, 60.0))
    cpu = datums["CPUUtilization"]
    assert (cpu.namespace, cpu.unit, cpu.sample_count, cpu.sum) == (
        ENDPOINT_INSTANCE_NAMESPACE, "Percent", 2, 200.0)
    assert datums["MemoryUtilization"].maximum == 12.5


requests = st.lists(st.tuples(st.sampled_from([200, 201, 400, 404, 424, 500, 503, 0]),
                              st.integers(1, 8),
                              st.floats(0, 60, allow_nan=False),
                              st.floats(0, 1, allow_nan=False)), min_size=1, max_size=60)


@given(requests)
def test_sums_equal_what_was_counted(sent: list[tuple[int, int, float, float]]) -> None:
    metrics = EndpointMetrics("ep")
    meter = metrics.meter("v")
    for status, serving, model, extra in sent:
        meter.invocation(status, serving, model, model + extra)
    datums = by_name(metrics.flush(0.0, 60.0))
    assert datums["Invocations"].sum == len(sent)
    assert datums["Invocation4XXErrors"].sum == sum(400 <= s < 500 for s, *_ in sent)
    assert datums["Invocation5XXErrors"].sum == sum(s >= 500 or s == 0 for s, *_ in sent)
    assert math.isclose(datums["InvocationsPerInstance"].sum,
                        math.fsum(1 / n for _, n, *_ in sent), rel_tol=1e-9)
    for name in ("ModelLatency", "OverheadLatency", "Invocation4XXErrors"):
        datum = datums[name]
        assert datum.sample_count == len(sent)
        mean = datum.sum / datum.sample_count
        slack = 1e-9 * max(1.0, abs(mean))  # float sums of equal values round either way
        assert datum.minimum - slack <= mean <= datum.maximum + slack
    assert datums["OverheadLatency"].minimum >= 0
