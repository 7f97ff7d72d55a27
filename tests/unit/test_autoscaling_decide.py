"""decide(): the service's scaling rules over real alarm definitions and states, by example and by
invariant (hypothesis): the result within [min, max], no scale-in by a policy that disables it,
cooldowns respected, out means up and in means down."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode.autoscaling.decide import Decision, ScalingHistory, decide
from local_mode.autoscaling.policies import (
    AlarmRef,
    ScalableTarget,
    ScalingPolicy,
    SuspendedState,
    make_policy,
)
from local_mode.cloudwatch.alarms import Alarm, AlarmState
from local_mode.cloudwatch.datums import dimensions_of

RID = "endpoint/ep/variant/AllTraffic"
NOW = 1_700_000_000.0
DIMS = dimensions_of({"EndpointName": "ep", "VariantName": "AllTraffic"})
Alarms = dict[str, tuple[Alarm, AlarmState]]


def target(low: int = 1, high: int = 4, **suspended: bool) -> ScalableTarget:
    return ScalableTarget(RID, low, high, "arn:aws:application-autoscaling:local:0:scalable-target/x",
                          "arn:aws:iam::0:role/r", NOW - 3600, SuspendedState(**suspended))


def tracking(name: str = "track", value: float = 10.0, **config: object) -> ScalingPolicy:
    refs = (AlarmRef(f"TargetTracking-{RID}-AlarmHigh-{name}", f"arn:high:{name}"),
            AlarmRef(f"TargetTracking-{RID}-AlarmLow-{name}", f"arn:low:{name}"))
    return make_policy(name, RID, f"arn:aws:autoscaling:local:0:scalingPolicy:u:resource/"
                       f"sagemaker/{RID}:policyName/{name}", "TargetTrackingScaling", NOW - 3600,
                       {"TargetValue": value, "PredefinedMetricSpecification": {
                           "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                        **config}, refs if not config.get("DisableScaleIn") else refs[:1])


def step(name: str, kind: str, steps: list[tuple[float | None, float | None, int]],
         **config: object) -> ScalingPolicy:
    adjustments = []
    for lower, upper, adjustment in steps:
        item: dict[str, object] = {"ScalingAdjustment": adjustment}
        if lower is not None:
            item["MetricIntervalLowerBound"] = lower
        if upper is not None:
            item["MetricIntervalUpperBound"] = upper
        adjustments.append(item)
    return make_policy(name, RID, f"arn:aws:autoscaling:local:0:scalingPolicy:s:resource/"
                       f"sagemaker/{RID}:policyName/{name}", "StepScaling", NOW - 3600,
                       {"AdjustmentType": kind, "StepAdjustments": adjustments, **config})


def alarm(name: str, threshold: float, operator: str = "GreaterThanThreshold",
          actions: tuple[str, ...] = ()) -> Alarm:
    return Alarm(name=name, namespace="AWS/SageMaker", metric_name="InvocationsPerInstance",
                 dimensions=DIMS, statistic="Sum", period=60, evaluation_periods=3,
                 datapoints_to_alarm=3, threshold=threshold, comparison_operator=operator,
                 alarm_actions=actions)


def state(value: str, *recent: float) -> AlarmState:
    return AlarmState(value=value, reason="test", updated=NOW, recent=tuple(recent))


def high(policy: ScalingPolicy, value: str, *recent: float) -> Alarms:
    assert policy.target_tracking is not None
    name = policy.alarms[0].name
    return {name: (alarm(name, policy.target_tracking.target_value), state(value, *recent))}


def low(policy: ScalingPolicy, value: str, *recent: float) -> Alarms:
    assert policy.target_tracking is not None
    name = policy.alarms[1].name
    return {name: (alarm(name, policy.target_tracking.low_threshold, "LessThanThreshold"),
                   state(value, *recent))}


def step_alarm(policy: ScalingPolicy, name: str, threshold: float, value: str, *recent: float,
               operator: str = "GreaterThanThreshold") -> Alarms:
    return {name: (alarm(name, threshold, operator, (policy.arn,)), state(value, *recent))}


def run(policies: list[ScalingPolicy], alarms: Alarms, desired: int, *,
        history: ScalingHistory | None = None, scope: ScalableTarget | None = None,
        time_scale: float = 1.0, current: int | None = None) -> Decision | None:
    return decide(scope or target(), policies, alarms, desired, history or ScalingHistory(), NOW,
                  time_scale, current=current)


# -- bounds ----------------------------------------------------------------------------------
def test_a_count_below_the_minimum_is_raised_to_it_in_the_services_words() -> None:
    decision = run([], {}, 1, scope=target(low=3, high=5))
    assert decision == Decision(3, "minimum capacity was set to 3",
                                "Setting desired instance count to 3.", None, "bounds")


def test_a_count_above_the_maximum_is_lowered_to_it_even_while_suspended() -> None:
    scope = target(low=1, high=2, dynamic_in=True, dynamic_out=True)
    decision = run([tracking()], {}, 5, scope=scope)
    assert decision == Decision(2, "maximum capacity was set to 2",
                                "Setting desired instance count to 2.", None, "bounds")


# -- target tracking -------------------------------------------------------------------------
def test_alarm_high_scales_out_to_ceil_current_times_metric_over_target() -> None:
    policy = tracking(value=10.0)
    decision = run([policy], high(policy, "ALARM", 12.0, 25.0), 1)
    assert decision is not None
    assert (decision.desired, decision.direction, decision.policy_name) == (3, "out", "track")
    assert decision.description == "Setting desired instance count to 3."
    assert decision.cause == (f"monitor alarm TargetTracking-{RID}-AlarmHigh-track in state "
                              "ALARM triggered policy track")


def test_scale_out_stops_at_the_maximum_and_does_nothing_there() -> None:
    policy = tracking(value=10.0)
    assert run([policy], high(policy, "ALARM", 100.0), 2).desired == 4  # type: ignore[union-attr]
    assert run([policy], high(policy, "ALARM", 100.0), 4) is None


@pytest.mark.parametrize("value", ["OK", "INSUFFICIENT_DATA"])
def test_an_alarm_not_in_alarm_does_nothing(value: str) -> None:
    policy = tracking()
    assert run([policy], high(policy, value, 50.0) | low(policy, value, 1.0), 2) is None


def test_alarm_low_scales_in_but_not_below_the_minimum() -> None:
    policy = tracking(value=10.0)
    decision = run([policy], low(policy, "ALARM", 4.0), 4)
    assert decision is not None and (decision.desired, decision.direction) == (2, "in")
    assert "AlarmLow-track in state ALARM triggered policy track" in decision.cause
    assert run([policy], low(policy, "ALARM", 0.0), 4).desired == 1  # type: ignore[union-attr]


def test_disable_scale_in_never_scales_in() -> None:
    policy = tracking(DisableScaleIn=True)
    name = f"TargetTracking-{RID}-AlarmLow-x"  # even an alarm that looks like its low one
    alarms = {name: (alarm(name, 9.0, "LessThanThreshold"), state("ALARM", 0.0))}
    assert run([policy], alarms, 3) is None


def test_several_policies_scale_out_to_the_largest_proposal() -> None:
    a, b = tracking("a", value=10.0), tracking("b", value=5.0)
    decision = run([a, b], high(a, "ALARM", 15.0) | high(b, "ALARM", 15.0), 1)
    assert decision is not None and (decision.desired, decision.policy_name) == (3, "b")


def test_scale_in_needs_every_target_tracking_policy_to_agree() -> None:
    a, b = tracking("a", value=10.0), tracking("b", value=10.0)
    assert run([a, b], low(a, "ALARM", 1.0) | low(b, "OK", 9.5), 4) is None
    decision = run([a, b], low(a, "ALARM", 1.0) | low(b, "ALARM", 5.0), 4)
    assert decision is not None and (decision.desired, decision.policy_name) == (2, "b")


def test_a_policy_that_disables_scale_in_does_not_stand_in_the_way() -> None:
    a, b = tracking("a", value=10.0), tracking("b", value=10.0, DisableScaleIn=True)
    decision = run([a, b], low(a, "ALARM", 2.0), 4)
    assert decision is not None and (decision.desired, decision.direction) == (1, "in")


def test_scale_out_wins_over_scale_in() -> None:
    a, b = tracking("a"), tracking("b")
    decision = run([a, b], low(a, "ALARM", 1.0) | high(b, "ALARM", 30.0), 2)
    assert decision is not None and (decision.direction, decision.desired) == ("out", 4)


# -- cooldowns and time compression ----------------------------------------------------------
def test_scale_in_cooldown_blocks_scale_in_for_its_compressed_duration() -> None:
    policy = tracking(value=10.0, ScaleInCooldown=300)
    history = ScalingHistory(last_scale_in=NOW - 100)
    assert run([policy], low(policy, "ALARM", 1.0), 3, history=history) is None
    # 300 service seconds at 1/60 of the time: 5 s, long over
    decision = run([policy], low(policy, "ALARM", 1.0), 3, history=history, time_scale=1 / 60)
    assert decision is not None and decision.direction == "in"


def test_the_default_scale_in_cooldown_is_the_services_300_seconds() -> None:
    policy = tracking(value=10.0)
    assert run([policy], low(policy, "ALARM", 1.0), 3,
               history=ScalingHistory(last_scale_in=NOW - 299)) is None
    assert run([policy], low(policy, "ALARM", 1.0), 3,
               history=ScalingHistory(last_scale_in=NOW - 301)) is not None


def test_a_scale_out_ends_the_scale_in_cooldown() -> None:
    policy = tracking(value=10.0)
    history = ScalingHistory(last_scale_out=NOW - 50, last_scale_in=NOW - 100, scale_out_from=2)
    assert run([policy], low(policy, "ALARM", 1.0), 3, history=history) is not None


def test_during_scale_out_cooldown_the_capacity_added_counts_as_there() -> None:
    policy = tracking(value=10.0)
    history = ScalingHistory(last_scale_out=NOW - 60, scale_out_from=1)
    # the metric, measured on the 1 instance before the scale-out to 3, asks for 3: done already
    assert run([policy], high(policy, "ALARM", 25.0), 3, history=history) is None
    # a larger need still scales out during the cooldown
    assert run([policy], high(policy, "ALARM", 38.0), 3,
               history=history).desired == 4  # type: ignore[union-attr]
    # the serving count does not change that within the cooldown: the value may predate it
    assert run([policy], high(policy, "ALARM", 25.0), 3, history=history, current=1) is None
    assert run([policy], high(policy, "ALARM", 25.0), 2,
               history=history, current=2).desired == 3  # type: ignore[union-attr]


def test_after_its_scale_out_cooldown_a_policy_sizes_from_the_desired_count() -> None:
    policy = tracking(value=10.0, ScaleOutCooldown=60)
    history = ScalingHistory(last_scale_out=NOW - 61, scale_out_from=1)
    assert run([policy], high(policy, "ALARM", 13.0), 2,
               history=history).desired == 3  # type: ignore[union-attr]


# -- step scaling ----------------------------------------------------------------------------
OUT_STEPS: list[tuple[float | None, float | None, int]] = [(0, 10, 1), (10, None, 3)]


@pytest.mark.parametrize(("value", "expected"), [(50.5, 3), (59.9, 3), (60.0, 5), (200.0, 5)])
def test_the_step_is_chosen_by_the_newest_value_minus_the_threshold(value: float,
                                                                   expected: int) -> None:
    policy = step("steps", "ChangeInCapacity", OUT_STEPS)
    decision = run([policy], step_alarm(policy, "busy", 50.0, "ALARM", 1.0, value), 2,
                   scope=target(high=10))
    assert decision is not None and decision.desired == expected
    assert decision.cause == "monitor alarm busy in state ALARM triggered policy steps"


def test_an_alarm_that_does_not_name_the_policy_does_not_trigger_it() -> None:
    policy = step("steps", "ChangeInCapacity", OUT_STEPS)
    alarms = {"other": (alarm("other", 50.0, actions=("arn:elsewhere",)), state("ALARM", 99.0))}
    assert run([policy], alarms, 2) is None


def test_a_step_below_the_threshold_scales_in() -> None:
    policy = step("down", "ChangeInCapacity", [(None, 0, -1)])
    alarms = step_alarm(policy, "idle", 5.0, "ALARM", 1.0, operator="LessThanThreshold")
    decision = run([policy], alarms, 3)
    assert decision is not None and (decision.desired, decision.direction) == (2, "in")


@pytest.mark.parametrize(("desired", "percent", "magnitude", "expected"), [
    (4, 10, None, 5),     # 0.4 moves by 1
    (10, 25, None, 12),   # 2.5 truncates to 2
    (10, 25, 3, 13),      # MinAdjustmentMagnitude
    (4, -10, None, 3),    # -0.4 moves by -1
    (10, -25, None, 8),   # -2.5 truncates toward zero
])
def test_percent_change_rounds_as_the_service(desired: int, percent: int, magnitude: int | None,
                                              expected: int) -> None:
    config = {} if magnitude is None else {"MinAdjustmentMagnitude": magnitude}
    bounds: tuple[float | None, float | None] = (0, None) if percent > 0 else (None, 0)
    policy = step("pct", "PercentChangeInCapacity", [(*bounds, percent)], **config)
    operator = "GreaterThanThreshold" if percent > 0 else "LessThanThreshold"
    alarms = step_alarm(policy, "a", 5.0, "ALARM", 6.0 if percent > 0 else 4.0, operator=operator)
    decision = run([policy], alarms, desired, scope=target(high=20))
    assert decision is not None and decision.desired == expected


def test_exact_capacity_sets_the_count() -> None:
    policy = step("exact", "ExactCapacity", [(0, None, 3)])
    assert run([policy], step_alarm(policy, "a", 1.0, "ALARM", 2.0),
               1).desired == 3  # type: ignore[union-attr]


def test_during_a_step_cooldown_the_previous_scale_out_counts_toward_the_next() -> None:
    """The service's example: +2, then the alarm again at a step of +3 adds only 1."""
    policy = step("s", "ChangeInCapacity", [(0, 10, 2), (10, None, 3)], Cooldown=300)
    history = ScalingHistory(last_scale_out=NOW - 30, scale_out_from=2)
    decision = run([policy], step_alarm(policy, "a", 50.0, "ALARM", 70.0), 4, history=history,
                   scope=target(high=10))
    assert decision is not None and decision.desired == 5
    assert run([policy], step_alarm(policy, "a", 50.0, "ALARM", 55.0), 4, history=history) is None


# -- suspension ------------------------------------------------------------------------------
def test_suspended_dynamic_scaling_does_not_scale() -> None:
    policy = tracking()
    assert run([policy], high(policy, "ALARM", 40.0), 1, scope=target(dynamic_out=True)) is None
    assert run([policy], low(policy, "ALARM", 1.0), 3, scope=target(dynamic_in=True)) is None
    assert run([policy], high(policy, "ALARM", 40.0), 1,
               scope=target(dynamic_in=True)).desired == 4  # type: ignore[union-attr]


def test_history_after_a_decision() -> None:
    up = Decision(3, "c", "d", "p", "out")
    history = ScalingHistory().after(up, 1, NOW)
    assert history == ScalingHistory(NOW, None, 1)
    down = Decision(2, "c", "d", "p", "in")
    assert history.after(down, 3, NOW + 5) == ScalingHistory(NOW, NOW + 5, 1)


# -- invariants ------------------------------------------------------------------------------
STATES = st.sampled_from(["OK", "ALARM", "INSUFFICIENT_DATA"])
VALUES = st.lists(st.floats(0, 500, allow_nan=False), max_size=3)
COOLDOWNS = st.sampled_from([0, 60, 300, 900])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[ScalableTarget, list[ScalingPolicy], Alarms, int,
                                        ScalingHistory, float]:
    low_bound = draw(st.integers(1, 5))
    scope = target(low_bound, draw(st.integers(low_bound, 12)), dynamic_in=draw(st.booleans()),
                   dynamic_out=draw(st.booleans()))
    policies: list[ScalingPolicy] = []
    alarms: Alarms = {}
    for index in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            policy = tracking(f"t{index}", value=draw(st.floats(0.5, 100)),
                              DisableScaleIn=draw(st.booleans()),
                              ScaleOutCooldown=draw(COOLDOWNS), ScaleInCooldown=draw(COOLDOWNS))
            alarms |= high(policy, draw(STATES), *draw(VALUES))
            if len(policy.alarms) > 1:
                alarms |= low(policy, draw(STATES), *draw(VALUES))
        else:
            kind = draw(st.sampled_from(["ChangeInCapacity", "PercentChangeInCapacity",
                                         "ExactCapacity"]))
            up = draw(st.integers(0 if kind == "ExactCapacity" else -5, 8))
            down = draw(st.integers(0, 8)) if kind == "ExactCapacity" else draw(st.integers(-5, 5))
            policy = step(f"s{index}", kind, [(None, 0, down), (0, None, up)],
                          Cooldown=draw(COOLDOWNS))
            alarms |= step_alarm(policy, f"a{index}", draw(st.floats(0, 100)), draw(STATES),
                                 *draw(VALUES), operator=draw(st.sampled_from(
                                     ["GreaterThanThreshold", "LessThanThreshold"])))
        policies.append(policy)
    last_out = draw(st.one_of(st.none(), st.floats(NOW - 2000, NOW)))
    last_in = draw(st.one_of(st.none(), st.floats(NOW - 2000, NOW)))
    history = ScalingHistory(last_out, last_in, draw(st.integers(1, 12)) if last_out else None)
    return scope, policies, alarms, draw(st.integers(0, 15)), history, draw(
        st.sampled_from([1.0, 1 / 60, 0.5]))


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_invariants(scenario: tuple[ScalableTarget, list[ScalingPolicy], Alarms, int,
                                    ScalingHistory, float]) -> None:
    scope, policies, alarms, desired, history, time_scale = scenario
    decision = decide(scope, policies, alarms, desired, history, NOW, time_scale)
    inside = scope.min_capacity <= desired <= scope.max_capacity
    if decision is None:
        assert inside, "a count outside the bounds is always corrected"
        return
    assert scope.min_capacity <= decision.desired <= scope.max_capacity
    assert decision.description == f"Setting desired instance count to {decision.desired}."
    if decision.direction == "bounds":
        assert not inside
        return
    assert inside
    by_name = {p.name: p for p in policies}
    chosen = by_name[decision.policy_name]  # type: ignore[index]
    if decision.direction == "out":
        assert decision.desired > desired and not scope.suspended.dynamic_out
        return
    assert decision.direction == "in" and decision.desired < desired
    assert not scope.suspended.dynamic_in
    if chosen.target_tracking is not None:
        assert not chosen.target_tracking.disable_scale_in
        cooldown = chosen.target_tracking.in_cooldown
    else:
        assert chosen.step_scaling is not None
        cooldown = chosen.step_scaling.effective_cooldown
    cooling = history.last_scale_in is not None and \
        history.last_scale_in + cooldown * time_scale > NOW and \
        not (history.last_scale_out is not None and history.last_scale_out >= history.last_scale_in)
    assert not cooling, "no scale-in during the policy's scale-in cooldown"
    # every target tracking policy that may scale in agreed
    for policy in policies:
        if policy.target_tracking is not None and not policy.target_tracking.disable_scale_in:
            name = policy.alarms[1].name
            assert alarms[name][1].value == "ALARM"


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 50), st.floats(0, 1000, allow_nan=False), st.floats(0.1, 100))
def test_tracking_capacity_is_the_ceiling_of_the_ratio(current: int, metric: float,
                                                       value: float) -> None:
    policy = tracking(value=value)
    assert policy.target_tracking is not None
    got = policy.target_tracking.capacity_for(current, metric)
    exact = current * metric / value
    assert got >= exact - 1e-6 and got - 1 < exact
    assert got == math.ceil(exact) or math.isclose(got, exact, abs_tol=1e-6)


def test_policies_are_sorted_so_ties_name_the_same_policy() -> None:
    a, b = tracking("a"), tracking("b")
    alarms = high(a, "ALARM", 20.0) | high(b, "ALARM", 20.0)
    first = run([a, b], alarms, 1)
    assert first == run([b, a], alarms, 1)
    assert first is not None and first.policy_name == "a"


def test_in_the_scale_out_cooldown_the_serving_count_does_not_resize_an_old_value() -> None:
    """A value measured on 1 instance (40 per instance against a target of 10) took it to 4;
    10 s into the 300 s cooldown the same value, read with 4 serving, must not ask for 16."""
    policy = tracking(ScaleOutCooldown=300)
    alarms = high(policy, "ALARM", 40.0, 40.0, 40.0)
    first = decide(target(high=20), [policy], alarms, 1, ScalingHistory(), 0.0, 1.0, current=1)
    assert first is not None and first.desired == 4
    history = ScalingHistory().after(first, 1, 0.0)
    assert decide(target(high=20), [policy], alarms, 4, history, 10.0, 1.0, current=4) is None
    # a larger load within the cooldown still scales out, sized from the count before it
    bigger = high(policy, "ALARM", 80.0, 80.0, 80.0)
    more = decide(target(high=20), [policy], bigger, 4, history, 10.0, 1.0, current=4)
    assert more is not None and more.desired == 8
    # after the cooldown the serving count is what the value was measured with
    later = decide(target(high=20), [policy], alarms, 4, history, 301.0, 1.0, current=4)
    assert later is not None and later.desired == 16
