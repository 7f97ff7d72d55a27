"""Scalable targets and scaling policies as typed values, checked as the service checks them.

A policy is stored as the configuration the user put (DescribeScalingPolicies echoes it as given)
and read back into typed values here, so the store, the API and the decision read one meaning of
it. What the service would refuse is refused with its ValidationException; what the service
accepts but local mode cannot act on (a metric the local endpoint does not publish, metric math)
is refused too, with a message that says why, rather than accepted and never acted on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from local_mode.autoscaling.ids import SCALABLE_DIMENSION, SERVICE_NAMESPACE, parse_resource_id
from local_mode.cloudwatch.datums import (
    ENDPOINT_INSTANCE_NAMESPACE,
    SAGEMAKER_NAMESPACE,
    Dimensions,
    dimensions_of,
)
from local_mode.errors import ValidationException

DEFAULT_COOLDOWN = 300
"""Seconds: the service's default scale-out, scale-in and step cooldown for SageMaker variants."""
TARGET_TRACKING = "TargetTrackingScaling"
STEP_SCALING = "StepScaling"
PREDICTIVE_SCALING = "PredictiveScaling"
INVOCATIONS_PER_INSTANCE = "SageMakerVariantInvocationsPerInstance"
"""The predefined metric local mode tracks: ``AWS/SageMaker`` ``InvocationsPerInstance``, Sum
per minute, per endpoint and variant."""

TRACKING_PERIOD = 60
"""Seconds: the period of the alarms target tracking creates (service seconds)."""
HIGH_EVALUATION_PERIODS = 3
"""AlarmHigh: above the target for 3 consecutive minutes."""
LOW_EVALUATION_PERIODS = 15
"""AlarmLow: below 90 % of the target for 15 consecutive minutes."""
LOW_THRESHOLD_RATIO = 0.9

ENDPOINT_METRICS = {
    SAGEMAKER_NAMESPACE: frozenset({"Invocations", "InvocationsPerInstance", "ModelLatency",
                                    "OverheadLatency", "Invocation4XXErrors",
                                    "Invocation5XXErrors", "ModelSetupTime"}),
    ENDPOINT_INSTANCE_NAMESPACE: frozenset({"CPUUtilization", "MemoryUtilization"}),
}
"""The metrics a local endpoint publishes (:mod:`local_mode.cloudwatch.recorder`), by namespace:
what a customized metric may track."""
STATISTICS = ("Average", "Minimum", "Maximum", "SampleCount", "Sum")
ADJUSTMENT_TYPES = ("ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity")


def utc(epoch: float) -> datetime:
    """An epoch time as botocore hands timestamps over (timezone-aware)."""
    return datetime.fromtimestamp(epoch, timezone.utc)


# -- scalable targets ------------------------------------------------------------------------
@dataclass(frozen=True)
class SuspendedState:
    """Which scaling is suspended (``SuspendedState``); dynamic scaling is what policies do."""

    dynamic_in: bool = False
    dynamic_out: bool = False
    scheduled: bool = False

    def updated(self, request: Mapping[str, Any] | None) -> SuspendedState:
        """This state with the members ``request`` gives changed (the others kept)."""
        if not request:
            return self
        return SuspendedState(
            bool(request.get("DynamicScalingInSuspended", self.dynamic_in)),
            bool(request.get("DynamicScalingOutSuspended", self.dynamic_out)),
            bool(request.get("ScheduledScalingSuspended", self.scheduled)))

    def to_api(self) -> dict[str, bool]:
        return {"DynamicScalingInSuspended": self.dynamic_in,
                "DynamicScalingOutSuspended": self.dynamic_out,
                "ScheduledScalingSuspended": self.scheduled}


@dataclass(frozen=True)
class ScalableTarget:
    """A registered production variant: the bounds its policies scale it within."""

    resource_id: str
    min_capacity: int
    max_capacity: int
    arn: str
    role_arn: str
    created: float
    """Epoch seconds of its first registration."""
    suspended: SuspendedState = field(default_factory=SuspendedState)
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def endpoint_name(self) -> str:
        return parse_resource_id(self.resource_id)[0]

    @property
    def variant_name(self) -> str:
        return parse_resource_id(self.resource_id)[1]

    def describe(self) -> dict[str, Any]:
        """The target as DescribeScalableTargets shows it."""
        return {"ServiceNamespace": SERVICE_NAMESPACE, "ResourceId": self.resource_id,
                "ScalableDimension": SCALABLE_DIMENSION, "MinCapacity": self.min_capacity,
                "MaxCapacity": self.max_capacity, "RoleARN": self.role_arn,
                "CreationTime": utc(self.created), "SuspendedState": self.suspended.to_api(),
                "ScalableTargetARN": self.arn}

    def to_json(self) -> dict[str, Any]:
        return {"ResourceId": self.resource_id, "MinCapacity": self.min_capacity,
                "MaxCapacity": self.max_capacity, "ScalableTargetARN": self.arn,
                "RoleARN": self.role_arn, "CreationTime": self.created,
                "SuspendedState": self.suspended.to_api(), "Tags": dict(self.tags)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScalableTarget:
        return cls(str(data["ResourceId"]), int(data["MinCapacity"]), int(data["MaxCapacity"]),
                   str(data["ScalableTargetARN"]), str(data["RoleARN"]),
                   float(data["CreationTime"]),
                   SuspendedState().updated(data.get("SuspendedState")),
                   tuple(sorted((data.get("Tags") or {}).items())))


def check_capacities(min_capacity: int, max_capacity: int) -> None:
    """The service's rules for a variant's bounds: at least one instance, min <= max."""
    if min_capacity < 1:
        raise ValidationException(f"MinCapacity {min_capacity} is not valid: an endpoint "
                                  "variant's minimum instance count must be at least 1")
    if max_capacity < min_capacity:
        raise ValidationException(f"Maximum capacity ({max_capacity}) cannot be less than "
                                  f"minimum capacity ({min_capacity})")


# -- policies --------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricSpec:
    """The one metric a target tracking policy's alarms watch."""

    namespace: str
    metric_name: str
    dimensions: Dimensions
    statistic: str
    unit: str | None = None


@dataclass(frozen=True)
class TargetTracking:
    """``TargetTrackingScalingPolicyConfiguration`` as local mode acts on it."""

    target_value: float
    metric: MetricSpec
    scale_out_cooldown: int | None = None
    scale_in_cooldown: int | None = None
    disable_scale_in: bool = False

    @property
    def out_cooldown(self) -> int:
        """Service seconds, the service's default when not given."""
        return DEFAULT_COOLDOWN if self.scale_out_cooldown is None else self.scale_out_cooldown

    @property
    def in_cooldown(self) -> int:
        return DEFAULT_COOLDOWN if self.scale_in_cooldown is None else self.scale_in_cooldown

    @property
    def low_threshold(self) -> float:
        """AlarmLow's threshold: 90 % of the target value."""
        return self.target_value * LOW_THRESHOLD_RATIO

    def capacity_for(self, current: int, metric_value: float) -> int:
        """The capacity that brings the metric back to the target: ceil(current x metric /
        target) (a hair of float noise does not add an instance)."""
        wanted = current * metric_value / self.target_value
        return max(0, math.ceil(wanted - 1e-9))


@dataclass(frozen=True)
class StepAdjustment:
    """One step: applies when (metric - threshold) is within [lower, upper) above the
    threshold, (lower, upper] below it; None is unbounded."""

    lower: float | None
    upper: float | None
    adjustment: int

    def contains(self, difference: float) -> bool:
        low = -math.inf if self.lower is None else self.lower
        high = math.inf if self.upper is None else self.upper
        if difference >= 0:
            return low <= difference < high
        return low < difference <= high


@dataclass(frozen=True)
class StepScaling:
    """``StepScalingPolicyConfiguration`` as local mode acts on it."""

    adjustment_type: str
    steps: tuple[StepAdjustment, ...]
    cooldown: int | None = None
    min_adjustment_magnitude: int | None = None
    metric_aggregation_type: str | None = None

    @property
    def effective_cooldown(self) -> int:
        return DEFAULT_COOLDOWN if self.cooldown is None else self.cooldown

    def step_for(self, difference: float) -> StepAdjustment | None:
        """The step for ``metric - threshold`` (the larger adjustment where two would apply)."""
        matching = [step for step in self.steps if step.contains(difference)]
        return max(matching, key=lambda step: step.adjustment, default=None)

    def new_capacity(self, current: int, step: StepAdjustment) -> int:
        """``current`` adjusted by ``step`` as the service adjusts it: a percent change is
        truncated toward zero but moves by at least 1 (and by MinAdjustmentMagnitude)."""
        if self.adjustment_type == "ExactCapacity":
            return step.adjustment
        if self.adjustment_type == "ChangeInCapacity":
            return current + step.adjustment
        change = current * step.adjustment / 100.0
        delta = 0 if change == 0 else int(math.copysign(max(1, math.floor(abs(change))), change))
        if delta and self.min_adjustment_magnitude and abs(delta) < self.min_adjustment_magnitude:
            delta = int(math.copysign(self.min_adjustment_magnitude, delta))
        return current + delta


@dataclass(frozen=True)
class AlarmRef:
    """An alarm a target tracking policy made (``Alarms`` in its responses)."""

    name: str
    arn: str

    def to_api(self) -> dict[str, str]:
        return {"AlarmName": self.name, "AlarmARN": self.arn}


@dataclass(frozen=True)
class ScalingPolicy:
    """A policy on a scalable target. ``configuration`` is the JSON text of the configuration
    member as put (echoed by DescribeScalingPolicies); the typed view of it is
    ``target_tracking`` or ``step_scaling``."""

    name: str
    resource_id: str
    arn: str
    policy_type: str
    created: float
    configuration: str
    target_tracking: TargetTracking | None = None
    step_scaling: StepScaling | None = None
    alarms: tuple[AlarmRef, ...] = ()
    action: str = ""
    """What the policy's own alarms name in AlarmActions (its ARN + ``:createdBy/<uuid>``)."""

    def describe(self) -> dict[str, Any]:
        member = ("TargetTrackingScalingPolicyConfiguration" if self.policy_type == TARGET_TRACKING
                  else "StepScalingPolicyConfiguration")
        described: dict[str, Any] = {
            "PolicyARN": self.arn, "PolicyName": self.name, "ServiceNamespace": SERVICE_NAMESPACE,
            "ResourceId": self.resource_id, "ScalableDimension": SCALABLE_DIMENSION,
            "PolicyType": self.policy_type, member: json.loads(self.configuration),
            "CreationTime": utc(self.created)}
        if self.alarms:
            described["Alarms"] = [alarm.to_api() for alarm in self.alarms]
        return described

    def to_json(self) -> dict[str, Any]:
        return {"PolicyName": self.name, "ResourceId": self.resource_id, "PolicyARN": self.arn,
                "PolicyType": self.policy_type, "CreationTime": self.created,
                "Configuration": json.loads(self.configuration),
                "Alarms": [alarm.to_api() for alarm in self.alarms], "Action": self.action}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScalingPolicy:
        return make_policy(str(data["PolicyName"]), str(data["ResourceId"]),
                           str(data["PolicyARN"]), str(data["PolicyType"]),
                           float(data["CreationTime"]), data["Configuration"],
                           tuple(AlarmRef(a["AlarmName"], a["AlarmARN"])
                                 for a in data.get("Alarms") or ()),
                           str(data.get("Action", "")))


def make_policy(name: str, resource: str, arn: str, policy_type: str, created: float,
                configuration: Mapping[str, Any], alarms: tuple[AlarmRef, ...] = (),
                action: str = "") -> ScalingPolicy:
    """A policy from its configuration member, checked (ValidationException)."""
    text = json.dumps(configuration, sort_keys=True)
    if policy_type == TARGET_TRACKING:
        return ScalingPolicy(name, resource, arn, policy_type, created, text,
                             target_tracking=parse_target_tracking(configuration, resource),
                             alarms=alarms, action=action)
    if policy_type == STEP_SCALING:
        return ScalingPolicy(name, resource, arn, policy_type, created, text,
                             step_scaling=parse_step_scaling(configuration), alarms=alarms,
                             action=action)
    raise ValidationException(refused_policy_type(policy_type))


def refused_policy_type(policy_type: str) -> str:
    if policy_type == PREDICTIVE_SCALING:
        return ("PolicyType PredictiveScaling is not emulated: local mode has no load history "
                "to forecast from; use TargetTrackingScaling or StepScaling")
    return f"Unsupported PolicyType {policy_type!r}: use TargetTrackingScaling or StepScaling"


# -- target tracking -------------------------------------------------------------------------
def parse_target_tracking(config: Mapping[str, Any], resource: str) -> TargetTracking:
    endpoint, variant = parse_resource_id(resource)
    predefined: Mapping[str, Any] = config.get("PredefinedMetricSpecification") or {}
    customized: Mapping[str, Any] | None = config.get("CustomizedMetricSpecification")
    if bool(predefined) == (customized is not None):
        raise ValidationException("TargetTrackingScalingPolicyConfiguration needs exactly one of "
                                  "PredefinedMetricSpecification and "
                                  "CustomizedMetricSpecification")
    target = float(config["TargetValue"])
    if not target > 0 or math.isinf(target):
        raise ValidationException(f"TargetValue must be a positive number, got {target}")
    if customized is not None:
        metric = _customized_metric(customized, endpoint)
    else:
        metric = _predefined_metric(predefined, endpoint, variant)
    cooldowns = {}
    for member in ("ScaleOutCooldown", "ScaleInCooldown"):
        value = config.get(member)
        if value is not None and value < 0:
            raise ValidationException(f"{member} must be 0 or more seconds, got {value}")
        cooldowns[member] = None if value is None else int(value)
    return TargetTracking(target, metric, cooldowns["ScaleOutCooldown"],
                          cooldowns["ScaleInCooldown"], bool(config.get("DisableScaleIn", False)))


def _predefined_metric(spec: Mapping[str, Any], endpoint: str, variant: str) -> MetricSpec:
    kind = spec["PredefinedMetricType"]
    if kind != INVOCATIONS_PER_INSTANCE:
        if str(kind).startswith("SageMakerVariant"):
            raise ValidationException(f"PredefinedMetricType {kind} is not emulated: local "
                                      f"endpoints publish {INVOCATIONS_PER_INSTANCE}'s metric "
                                      "(or track another of theirs with a "
                                      "CustomizedMetricSpecification)")
        raise ValidationException(f"PredefinedMetricType {kind} does not apply to "
                                  f"{SCALABLE_DIMENSION}: use {INVOCATIONS_PER_INSTANCE}")
    if "ResourceLabel" in spec:
        raise ValidationException(f"ResourceLabel applies to ALBRequestCountPerTarget only, not "
                                  f"to {kind}")
    return MetricSpec(SAGEMAKER_NAMESPACE, "InvocationsPerInstance",
                      dimensions_of({"EndpointName": endpoint, "VariantName": variant}), "Sum")


def _customized_metric(spec: Mapping[str, Any], endpoint: str) -> MetricSpec:
    queries = spec.get("Metrics")
    simple = [m for m in ("MetricName", "Namespace", "Dimensions", "Statistic", "Unit")
              if m in spec]
    if queries is not None:
        if simple:
            raise ValidationException(f"CustomizedMetricSpecification: Metrics cannot be given "
                                      f"with {', '.join(simple)}")
        metric = _single_query(queries)
    else:
        missing = [m for m in ("MetricName", "Namespace", "Statistic") if m not in spec]
        if missing:
            raise ValidationException(f"CustomizedMetricSpecification needs {', '.join(missing)} "
                                      "(or Metrics)")
        metric = MetricSpec(spec["Namespace"], spec["MetricName"],
                            _dimensions(spec.get("Dimensions") or (),
                                        "CustomizedMetricSpecification.Dimensions"),
                            spec["Statistic"], spec.get("Unit"))
    _check_endpoint_metric(metric, endpoint)
    return metric


def _single_query(queries: list[Mapping[str, Any]]) -> MetricSpec:
    """The one metric of a ``Metrics`` list: local alarms watch a single metric, so metric math
    (an ``Expression``, or several metrics) is refused by name."""
    if any("Expression" in query for query in queries) or len(queries) != 1:
        raise ValidationException("CustomizedMetricSpecification.Metrics: metric math is not "
                                  "emulated; local mode tracks one metric, given as one query "
                                  "with a MetricStat")
    query = queries[0]
    if query.get("ReturnData") is False:
        raise ValidationException("CustomizedMetricSpecification.Metrics: the query must "
                                  "return data (ReturnData true)")
    stat = query.get("MetricStat")
    if stat is None:
        raise ValidationException("CustomizedMetricSpecification.Metrics[0] needs a MetricStat")
    metric = stat["Metric"]
    missing = [m for m in ("MetricName", "Namespace") if m not in metric]
    if missing:
        raise ValidationException("CustomizedMetricSpecification.Metrics[0].MetricStat.Metric "
                                  f"needs {', '.join(missing)}")
    if stat["Stat"] not in STATISTICS:
        raise ValidationException(f"Stat {stat['Stat']!r} is not emulated: local alarms compute "
                                  f"{', '.join(STATISTICS)}")
    return MetricSpec(metric["Namespace"], metric["MetricName"],
                      _dimensions(metric.get("Dimensions") or (),
                                  "Metrics[0].MetricStat.Metric.Dimensions"),
                      stat["Stat"], stat.get("Unit"))


def _dimensions(given: Any, where: str) -> Dimensions:
    names = [d["Name"] for d in given]
    if len(set(names)) != len(names):
        raise ValidationException(f"{where}: each dimension name at most once, got {names}")
    return dimensions_of({d["Name"]: d["Value"] for d in given})


def _check_endpoint_metric(metric: MetricSpec, endpoint: str) -> None:
    """A customized metric must be one the endpoint publishes locally, for this endpoint: an
    alarm on any other would never have data, and the policy would never act."""
    names = ENDPOINT_METRICS.get(metric.namespace)
    if names is None or metric.metric_name not in names:
        known = "; ".join(f"{ns}: {', '.join(sorted(ms))}" for ns, ms in ENDPOINT_METRICS.items())
        raise ValidationException(f"Metric {metric.namespace} {metric.metric_name} is not one a "
                                  f"local endpoint publishes ({known})")
    dims = dict(metric.dimensions)
    if dims.get("EndpointName") != endpoint:
        raise ValidationException(f"The customized metric's dimensions must include "
                                  f"EndpointName={endpoint} (the scalable target's endpoint), "
                                  f"got {dims}")
    if metric.statistic not in STATISTICS:
        raise ValidationException(f"Statistic {metric.statistic!r} is not one of "
                                  f"{', '.join(STATISTICS)}")


# -- step scaling ----------------------------------------------------------------------------
def parse_step_scaling(config: Mapping[str, Any]) -> StepScaling:
    kind = config.get("AdjustmentType")
    if kind is None:
        raise ValidationException("StepScalingPolicyConfiguration.AdjustmentType is required")
    raw = config.get("StepAdjustments") or []
    if not raw:
        raise ValidationException("StepScalingPolicyConfiguration.StepAdjustments needs at "
                                  "least one step adjustment")
    steps = tuple(StepAdjustment(s.get("MetricIntervalLowerBound"),
                                 s.get("MetricIntervalUpperBound"), int(s["ScalingAdjustment"]))
                  for s in raw)
    _check_steps(steps)
    if kind == "ExactCapacity" and any(step.adjustment < 0 for step in steps):
        raise ValidationException("ScalingAdjustment cannot be negative with AdjustmentType "
                                  "ExactCapacity")
    magnitude = config.get("MinAdjustmentMagnitude")
    if magnitude is not None:
        if kind != "PercentChangeInCapacity":
            raise ValidationException("MinAdjustmentMagnitude is only valid with AdjustmentType "
                                      "PercentChangeInCapacity")
        if magnitude < 1:
            raise ValidationException(f"MinAdjustmentMagnitude must be at least 1, got "
                                      f"{magnitude}")
    cooldown = config.get("Cooldown")
    if cooldown is not None and cooldown < 0:
        raise ValidationException(f"Cooldown must be 0 or more seconds, got {cooldown}")
    return StepScaling(kind, steps, None if cooldown is None else int(cooldown),
                       None if magnitude is None else int(magnitude),
                       config.get("MetricAggregationType"))


def _check_steps(steps: tuple[StepAdjustment, ...]) -> None:
    """The service's rules: no step unbounded on both sides, lower < upper, at most one step
    unbounded below and one above, no overlap and no gap, a negative lower bound needs a step
    unbounded below and a positive upper bound one unbounded above."""
    for step in steps:
        if step.lower is None and step.upper is None:
            raise ValidationException("A step adjustment cannot have both "
                                      "MetricIntervalLowerBound and MetricIntervalUpperBound "
                                      "null")
        if step.lower is not None and step.upper is not None and step.upper <= step.lower:
            raise ValidationException(f"MetricIntervalUpperBound ({step.upper}) must be greater "
                                      f"than MetricIntervalLowerBound ({step.lower})")
    if sum(step.lower is None for step in steps) > 1:
        raise ValidationException("Only one step adjustment can have a null "
                                  "MetricIntervalLowerBound")
    if sum(step.upper is None for step in steps) > 1:
        raise ValidationException("Only one step adjustment can have a null "
                                  "MetricIntervalUpperBound")
    ordered = sorted(steps, key=lambda s: -math.inf if s.lower is None else s.lower)
    for before, after in zip(ordered, ordered[1:]):
        if before.upper is None or after.lower is None or before.upper != after.lower:
            raise ValidationException(
                f"Step adjustments cannot overlap or leave a gap: [{before.lower}, "
                f"{before.upper}) is followed by [{after.lower}, {after.upper})")
    if any(s.lower is not None and s.lower < 0 for s in steps) and \
            all(s.lower is not None for s in steps):
        raise ValidationException("A step adjustment with a negative MetricIntervalLowerBound "
                                  "needs a step adjustment with a null MetricIntervalLowerBound")
    if any(s.upper is not None and s.upper > 0 for s in steps) and \
            all(s.upper is not None for s in steps):
        raise ValidationException("A step adjustment with a positive MetricIntervalUpperBound "
                                  "needs a step adjustment with a null MetricIntervalUpperBound")
