"""What a scalable target's policies decide, from its alarms' states: pure, no I/O.

The endpoint runner calls :func:`decide` once per metric period for each registered variant, with
the alarms it has just evaluated, and applies the :class:`Decision` (or nothing). The rules are
the service's:

- **Bounds first.** A desired count outside [MinCapacity, MaxCapacity] (the bounds were changed
  by RegisterScalableTarget) is brought inside, the cause saying "minimum capacity was set to N"
  or "maximum capacity was set to N". Suspension does not stop this: it is not dynamic scaling.
- **Target tracking.** Its AlarmHigh in ALARM proposes ``ceil(current x metric / target)``
  instances (the metric being the alarm's newest evaluated value), a scale-out when that is more
  than desired; its AlarmLow in ALARM proposes the same, a scale-in when less. ``DisableScaleIn``:
  the policy never proposes a scale-in (nor stands in the way of another policy's).
- **Step scaling.** Every alarm naming the policy's ARN in its AlarmActions and in ALARM
  triggers it; the step is the one whose interval holds (newest value - threshold), and the
  adjustment (ChangeInCapacity, PercentChangeInCapacity, ExactCapacity) applies to the desired
  count.
- **Several policies.** Scale out when any proposes it, to the largest proposal; scale in only
  when no scale-out is proposed and every target tracking policy that may scale in proposes it,
  to the largest proposal (the smallest step down).
- **Cooldowns** (service seconds x ``time_scale``). Scale-out cooldown (a target tracking
  policy's ScaleOutCooldown, a step policy's Cooldown) after a scale-out: the capacity that
  scale-out added counts as there already, so only a larger scale-out happens -- target tracking
  sizes from the capacity before that scale-out (its metric may have been measured then),
  step scaling adjusts it; outside the cooldown target tracking sizes from ``current``. Scale-in cooldown
  (ScaleInCooldown, Cooldown) after a scale-in blocks the policy's scale-ins; a scale-out ends it.
- **Suspension.** ``DynamicScalingOutSuspended`` drops scale-outs, ``DynamicScalingInSuspended``
  scale-ins.
- The result is clamped to [MinCapacity, MaxCapacity]; no change is no decision.

Alarms come as ``{name: (alarm, state)}``: :class:`local_mode.cloudwatch.alarms.Alarm` and
``AlarmState`` (any objects with the members :class:`AlarmView` and :class:`StateView` name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from local_mode.autoscaling import wording
from local_mode.autoscaling.policies import ScalableTarget, ScalingPolicy, StepScaling

Direction = Literal["out", "in", "bounds"]


class AlarmView(Protocol):
    """What a decision reads of an alarm's definition."""

    @property
    def name(self) -> str: ...

    @property
    def threshold(self) -> float: ...

    @property
    def alarm_actions(self) -> tuple[str, ...]: ...


class StateView(Protocol):
    """What a decision reads of an alarm's state: its value and the evaluated datapoints'
    statistic values, newest last."""

    @property
    def value(self) -> str: ...

    @property
    def recent(self) -> tuple[float, ...]: ...


@dataclass(frozen=True)
class ScalingHistory:
    """A target's last scaling, what the cooldowns are measured from (epoch seconds)."""

    last_scale_out: float | None = None
    last_scale_in: float | None = None
    scale_out_from: int | None = None
    """The desired count before the last scale-out (what its cooldown adjusts)."""

    def after(self, decision: Decision, desired_before: int, now: float) -> ScalingHistory:
        """This history once ``decision`` is applied at ``now`` (a bounds correction counts as
        the scaling it is: up is out, down is in)."""
        if decision.desired > desired_before:
            return ScalingHistory(now, self.last_scale_in, desired_before)
        if decision.desired < desired_before:
            return ScalingHistory(self.last_scale_out, now, self.scale_out_from)
        return self


@dataclass(frozen=True)
class Decision:
    """Set the variant's desired instance count to ``desired``; ``description`` and ``cause``
    are the scaling activity's, in the service's wording."""

    desired: int
    cause: str
    description: str
    policy_name: str | None
    direction: Direction


@dataclass(frozen=True)
class _Proposal:
    capacity: int
    alarm_name: str
    policy_name: str

    def decision(self, capacity: int, direction: Direction) -> Decision:
        return Decision(capacity, wording.alarm_cause(self.alarm_name, self.policy_name),
                        wording.description(capacity), self.policy_name, direction)


def decide(target: ScalableTarget, policies: Sequence[ScalingPolicy],
           alarms: Mapping[str, tuple[AlarmView, StateView]], desired: int,
           history: ScalingHistory, now: float, time_scale: float, *,
           current: int | None = None) -> Decision | None:
    """The change the target's policies make to ``desired`` now, or None (see the module's
    docstring). ``current``: the instances the metric was measured with (serving), when the
    caller knows it; otherwise the desired count stands for it."""
    low, high = target.min_capacity, target.max_capacity
    if desired < low:
        return Decision(low, wording.minimum_cause(low), wording.description(low), None,
                        "bounds")
    if desired > high:
        return Decision(high, wording.maximum_cause(high), wording.description(high), None,
                        "bounds")
    outs: list[_Proposal] = []
    ins: list[_Proposal] = []
    vetoed = False
    for policy in sorted(policies, key=lambda p: p.name):
        if policy.target_tracking is not None:
            out, scale_in, veto = _target_tracking(policy, alarms, desired, history, now,
                                                   time_scale, current)
            outs += out
            ins += scale_in
            vetoed = vetoed or veto
        elif policy.step_scaling is not None:
            out, scale_in = _step(policy, policy.step_scaling, alarms, desired, history, now,
                                  time_scale)
            outs += out
            ins += scale_in
    if target.suspended.dynamic_out:
        outs = []
    if target.suspended.dynamic_in:
        ins = []
    if outs:
        best = max(outs, key=lambda p: p.capacity)
        capacity = min(best.capacity, high)
        return best.decision(capacity, "out") if capacity > desired else None
    if ins and not vetoed:
        best = max(ins, key=lambda p: p.capacity)
        capacity = max(best.capacity, low)
        return best.decision(capacity, "in") if capacity < desired else None
    return None


def _in_cooldown(since: float | None, seconds: int, time_scale: float, now: float) -> bool:
    return since is not None and now < since + seconds * time_scale


def _scale_in_cooling(history: ScalingHistory, seconds: int, time_scale: float,
                      now: float) -> bool:
    """A scale-in cooldown blocks scale-ins until it ends, or until a scale-out ends it."""
    if history.last_scale_in is None:
        return False
    if history.last_scale_out is not None and history.last_scale_out >= history.last_scale_in:
        return False
    return _in_cooldown(history.last_scale_in, seconds, time_scale, now)


def _alarming(entry: tuple[AlarmView, StateView] | None) -> float | None:
    """The newest evaluated value of an alarm in ALARM (None: not in ALARM, or no value)."""
    if entry is None:
        return None
    _, state = entry
    if state.value != "ALARM" or not state.recent:
        return None
    return float(state.recent[-1])


def _target_tracking(policy: ScalingPolicy, alarms: Mapping[str, tuple[AlarmView, StateView]],
                     desired: int, history: ScalingHistory, now: float, time_scale: float,
                     current: int | None) -> tuple[list[_Proposal], list[_Proposal], bool]:
    """(scale-out proposals, scale-in proposals, whether the policy vetoes scale-in)."""
    tracking = policy.target_tracking
    assert tracking is not None
    high = next((a.name for a in policy.alarms if "-AlarmHigh-" in a.name), None)
    low = next((a.name for a in policy.alarms if "-AlarmLow-" in a.name), None)
    outs: list[_Proposal] = []
    ins: list[_Proposal] = []
    value = _alarming(alarms.get(high)) if high is not None else None
    if value is not None and high is not None:
        # within the scale-out cooldown the capacity that scale-out added counts as there
        # already: size from the capacity before it (the value may have been measured then),
        # so only a larger scale-out happens
        cooling = _in_cooldown(history.last_scale_out, tracking.out_cooldown, time_scale, now)
        if cooling and history.scale_out_from is not None:
            base = history.scale_out_from
        else:
            base = desired if current is None else current
        capacity = tracking.capacity_for(base, value)
        if capacity > desired:
            outs.append(_Proposal(capacity, high, policy.name))
    if tracking.disable_scale_in:
        return outs, ins, False
    value = _alarming(alarms.get(low)) if low is not None else None
    if value is None or low is None:
        return outs, ins, True
    capacity = tracking.capacity_for(desired if current is None else current, value)
    if capacity >= desired or _scale_in_cooling(history, tracking.in_cooldown, time_scale, now):
        return outs, ins, True
    ins.append(_Proposal(capacity, low, policy.name))
    return outs, ins, False


def _triggering(policy: ScalingPolicy, alarms: Mapping[str, tuple[AlarmView, StateView]]
                ) -> Iterable[tuple[AlarmView, float]]:
    """The alarms in ALARM whose actions name the policy, with their newest values."""
    for name in sorted(alarms):
        alarm, _ = alarms[name]
        value = _alarming(alarms[name])
        if value is not None and policy.arn in alarm.alarm_actions:
            yield alarm, value


def _step(policy: ScalingPolicy, step: StepScaling,
          alarms: Mapping[str, tuple[AlarmView, StateView]], desired: int,
          history: ScalingHistory, now: float,
          time_scale: float) -> tuple[list[_Proposal], list[_Proposal]]:
    outs: list[_Proposal] = []
    ins: list[_Proposal] = []
    cooling_out = _in_cooldown(history.last_scale_out, step.effective_cooldown, time_scale, now)
    for alarm, value in _triggering(policy, alarms):
        chosen = step.step_for(value - alarm.threshold)
        if chosen is None:
            continue
        base = desired
        if cooling_out and history.scale_out_from is not None and (
                step.adjustment_type != "ExactCapacity" and chosen.adjustment > 0):
            base = history.scale_out_from
        capacity = step.new_capacity(base, chosen)
        if capacity > desired:
            outs.append(_Proposal(capacity, alarm.name, policy.name))
        elif capacity < desired and not _scale_in_cooling(history, step.effective_cooldown,
                                                          time_scale, now):
            ins.append(_Proposal(capacity, alarm.name, policy.name))
    return outs, ins
