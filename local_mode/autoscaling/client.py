"""A client shaped like boto3's ``application-autoscaling``, scaling local endpoints' variants.

RegisterScalableTarget, DeregisterScalableTarget, DescribeScalableTargets, PutScalingPolicy,
DescribeScalingPolicies, DeleteScalingPolicy and DescribeScalingActivities, with botocore's
model checking every request and shaping every response (:class:`StateDirClient`), botocore's
paginators, and the service's errors (ValidationException, ObjectNotFoundException,
InvalidNextTokenException). What it stores, each endpoint's runner acts on: it evaluates the
alarms, calls :func:`local_mode.autoscaling.decide.decide` and records the scaling activities.

Only ``sagemaker`` / ``sagemaker:variant:DesiredInstanceCount`` targets of endpoints and variants
that exist in the state directory are accepted; scheduled actions and predictive scaling are not
emulated (the operations say so, see docs/autoscaling-api.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from local_mode.autoscaling import ids
from local_mode.autoscaling.policies import (
    HIGH_EVALUATION_PERIODS,
    LOW_EVALUATION_PERIODS,
    STEP_SCALING,
    TARGET_TRACKING,
    TRACKING_PERIOD,
    AlarmRef,
    ScalableTarget,
    ScalingPolicy,
    SuspendedState,
    check_capacities,
    make_policy,
    refused_policy_type,
)
from local_mode.autoscaling.registration import delete_policy_alarms, forget_target
from local_mode.autoscaling.store import ScalingStore
from local_mode.client_base import StateDirClient
from local_mode.cloudwatch.alarms import Alarm, AlarmStore
from local_mode.errors import LocalModeError, ResourceNotFound, ValidationException, error_class

ObjectNotFoundException = error_class("ObjectNotFoundException")
InvalidNextTokenException = error_class("InvalidNextTokenException")

MAX_RESULTS = 50
"""The Describe operations' default and largest page."""
CONFIGURATION_MEMBER = {TARGET_TRACKING: "TargetTrackingScalingPolicyConfiguration",
                        STEP_SCALING: "StepScalingPolicyConfiguration"}
T = TypeVar("T")


def _token(operation: str, query: Any, last: str) -> str:
    raw = json.dumps({"o": operation, "q": query, "k": last}, sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _after(operation: str, query: Any, token: str | None) -> str | None:
    """The key a NextToken continues after; InvalidNextTokenException for a token this client
    did not issue for this same query."""
    if token is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or data.get("o") != operation or \
            data.get("q") != json.loads(json.dumps(query)) or not isinstance(data.get("k"), str):
        raise InvalidNextTokenException("Invalid token")
    return str(data["k"])


def _page(operation: str, query: Any, items: Sequence[T], key: Callable[[T], str],
          request: dict[str, Any], result_key: str, show: Callable[[T], dict[str, Any]],
          descending: bool = False) -> dict[str, Any]:
    """A page of ``items``, which come sorted by ``key`` (unique), descending or not."""
    limit = request.get("MaxResults", MAX_RESULTS)
    if not 1 <= limit <= MAX_RESULTS:
        raise ValidationException(f"MaxResults must be between 1 and {MAX_RESULTS}, got {limit}")
    after = _after(operation, query, request.get("NextToken"))
    if after is not None:
        keys = [key(item) for item in items]
        items = items[keys.index(after) + 1:] if after in keys else \
            [item for item in items if (key(item) < after if descending else key(item) > after)]
    response: dict[str, Any] = {result_key: [show(item) for item in items[:limit]]}
    if len(items) > limit:
        response["NextToken"] = _token(operation, query, key(items[limit - 1]))
    return response


def _not_registered(resource: str) -> LocalModeError:
    return ObjectNotFoundException(
        f"No scalable target registered for service namespace: {ids.SERVICE_NAMESPACE}, "
        f"resource ID: {resource}, scalable dimension: {ids.SCALABLE_DIMENSION}")


class ApplicationAutoScalingClient(StateDirClient):
    """The local ``application-autoscaling`` client (see the module's docstring). ``settings``
    and ``state_dir`` are local mode's own arguments; the others are boto3's client arguments
    (:class:`local_mode.client_base.LocalClient`)."""

    SERVICE = "application-autoscaling"

    @property
    def scaling(self) -> ScalingStore:
        return ScalingStore(self.store.root)

    @property
    def alarms(self) -> AlarmStore:
        return AlarmStore(self.store.root)

    # -- scalable targets --------------------------------------------------------------------
    def register_scalable_target(self, **request: Any) -> dict[str, Any]:
        ids.check_namespace(request["ServiceNamespace"], request["ScalableDimension"])
        resource = request["ResourceId"]
        self._check_variant(resource)
        existing = self.scaling.target(resource)
        low, high = request.get("MinCapacity"), request.get("MaxCapacity")
        if existing is None:
            if low is None or high is None:
                raise ValidationException("MinCapacity and MaxCapacity are required to register "
                                          f"a new scalable target ({resource})")
            target = ScalableTarget(
                resource, low, high, ids.target_arn(self.meta.region_name, self.account_id),
                request.get("RoleARN") or ids.role_arn(self.account_id), time.time(),
                SuspendedState().updated(request.get("SuspendedState")),
                tuple(sorted((request.get("Tags") or {}).items())))
        else:
            target = ScalableTarget(
                resource, existing.min_capacity if low is None else low,
                existing.max_capacity if high is None else high, existing.arn,
                existing.role_arn, existing.created,
                existing.suspended.updated(request.get("SuspendedState")), existing.tags)
        check_capacities(target.min_capacity, target.max_capacity)
        self.scaling.put_target(target)
        return {"ScalableTargetARN": target.arn}

    def deregister_scalable_target(self, **request: Any) -> dict[str, Any]:
        ids.check_namespace(request["ServiceNamespace"], request["ScalableDimension"])
        resource = request["ResourceId"]
        ids.parse_resource_id(resource)
        if not forget_target(self.store.root, resource):
            raise _not_registered(resource)
        return {}

    def describe_scalable_targets(self, **request: Any) -> dict[str, Any]:
        ids.check_namespace(request["ServiceNamespace"], request.get("ScalableDimension"))
        wanted = request.get("ResourceIds")
        targets = [t for t in self.scaling.targets() if wanted is None or t.resource_id in wanted]
        query = [sorted(wanted) if wanted is not None else None]
        return _page("DescribeScalableTargets", query, targets, lambda t: t.resource_id, request,
                     "ScalableTargets", ScalableTarget.describe)

    # -- policies ----------------------------------------------------------------------------
    def put_scaling_policy(self, **request: Any) -> dict[str, Any]:
        ids.check_namespace(request["ServiceNamespace"], request["ScalableDimension"])
        resource, name = request["ResourceId"], request["PolicyName"]
        ids.parse_resource_id(resource)
        if self.scaling.target(resource) is None:
            raise _not_registered(resource)
        existing = self.scaling.policy(resource, name)
        policy_type = request.get("PolicyType") or (existing.policy_type if existing else None)
        if policy_type is None:
            raise ValidationException("PolicyType is required to create a scaling policy")
        member = CONFIGURATION_MEMBER.get(policy_type)
        if member is None:
            raise ValidationException(refused_policy_type(policy_type))
        for other, other_member in CONFIGURATION_MEMBER.items():
            if other != policy_type and other_member in request:
                raise ValidationException(f"{other_member} cannot be given with PolicyType "
                                          f"{policy_type}")
        if "PredictiveScalingPolicyConfiguration" in request:
            raise ValidationException(refused_policy_type("PredictiveScaling"))
        if member not in request:
            raise ValidationException(f"{member} is required for PolicyType {policy_type}")
        arn = existing.arn if existing else ids.policy_arn(self.meta.region_name,
                                                           self.account_id, resource, name)
        created = existing.created if existing else time.time()
        action = existing.action if existing and existing.action else \
            f"{arn}:createdBy/{uuid.uuid4()}"
        policy = make_policy(name, resource, arn, policy_type, created, request[member],
                             action=action)  # checked before any alarm is made
        if policy.target_tracking is not None:
            refs = self._put_tracking_alarms(policy)
            policy = make_policy(name, resource, arn, policy_type, created, request[member],
                                 refs, action)
        if not self.scaling.put_policy(policy):  # deregistered meanwhile
            self._delete_alarms(policy)
            raise _not_registered(resource)
        if existing is not None:
            self._delete_alarms(existing, keep={a.name for a in policy.alarms})
        response: dict[str, Any] = {"PolicyARN": arn}
        if policy.alarms:
            response["Alarms"] = [alarm.to_api() for alarm in policy.alarms]
        return response

    def describe_scaling_policies(self, **request: Any) -> dict[str, Any]:
        ids.check_namespace(request["ServiceNamespace"], request.get("ScalableDimension"))
        resource, names = request.get("ResourceId"), request.get("PolicyNames")
        if resource is not None:
            ids.parse_resource_id(resource)
        policies = [p for p in self.scaling.policies(resource)
                    if names is None or p.name in names]
        query = [resource, sorted(names) if names is not None else None]
        return _page("DescribeScalingPolicies", query, policies,
                     lambda p: json.dumps([p.resource_id, p.name]), request, "ScalingPolicies",
                     ScalingPolicy.describe)

    def delete_scaling_policy(self, **request: Any) -> dict[str, Any]:
        ids.check_namespace(request["ServiceNamespace"], request["ScalableDimension"])
        resource, name = request["ResourceId"], request["PolicyName"]
        ids.parse_resource_id(resource)
        removed = self.scaling.delete_policy(resource, name)
        if removed is None:
            raise ObjectNotFoundException(
                f"No scaling policy found for service namespace: {ids.SERVICE_NAMESPACE}, "
                f"resource ID: {resource}, scalable dimension: {ids.SCALABLE_DIMENSION}, "
                f"policy name: {name}")
        self._delete_alarms(removed)
        return {}

    # -- activities --------------------------------------------------------------------------
    def describe_scaling_activities(self, **request: Any) -> dict[str, Any]:
        ids.check_namespace(request["ServiceNamespace"], request.get("ScalableDimension"))
        resource = request.get("ResourceId")
        if resource is not None:
            ids.parse_resource_id(resource)
        activities = self.scaling.activities(resource, now=time.time())
        return _page("DescribeScalingActivities", [resource], activities,
                     lambda a: f"{a.start:020.6f}/{a.activity_id}", request,
                     "ScalingActivities", lambda a: a.describe(), descending=True)

    # -- helpers -----------------------------------------------------------------------------
    def _check_variant(self, resource: str) -> None:
        """The endpoint and its variant exist (the variants of the endpoint's config, and of
        its description once the runner published them); a serverless variant has no instance
        count to scale."""
        endpoint, variant = ids.parse_resource_id(resource)
        try:
            description = self.store.get("endpoints", endpoint).describe()
        except (ResourceNotFound, FileNotFoundError):
            raise ValidationException(f"Could not find endpoint \"{endpoint}\" (resource ID "
                                      f"{resource})") from None
        variants: dict[str, dict[str, Any]] = {}
        config = description.get("EndpointConfigName")
        if config:
            try:
                request = self.store.get("endpoint-configs", config).request()
            except (ResourceNotFound, FileNotFoundError):
                request = {}
            variants.update({v["VariantName"]: v for v in request.get("ProductionVariants", [])})
        for summary in description.get("ProductionVariants") or []:
            variants.setdefault(summary["VariantName"], summary)
        if variant not in variants:
            raise ValidationException(f"The variant \"{variant}\" does not exist in endpoint "
                                      f"\"{endpoint}\" (its variants: "
                                      f"{', '.join(sorted(variants)) or 'none'})")
        if variants[variant].get("ServerlessConfig"):
            raise ValidationException(f"The variant \"{variant}\" of endpoint \"{endpoint}\" is "
                                      "serverless: it has no instance count to scale")

    def _put_tracking_alarms(self, policy: ScalingPolicy) -> tuple[AlarmRef, ...]:
        """The alarms the service makes for a target tracking policy: AlarmHigh (above the
        target for 3 of 3 minutes) and, unless scale-in is disabled, AlarmLow (below 90 % of it
        for 15 of 15 minutes), both acting on the policy."""
        tracking = policy.target_tracking
        assert tracking is not None
        metric = tracking.metric
        kinds = [("AlarmHigh", tracking.target_value, "GreaterThanThreshold",
                  HIGH_EVALUATION_PERIODS)]
        if not tracking.disable_scale_in:
            kinds.append(("AlarmLow", tracking.low_threshold, "LessThanThreshold",
                          LOW_EVALUATION_PERIODS))
        store, refs = self.alarms, []
        for kind, threshold, operator, periods in kinds:
            alarm = Alarm(
                name=f"TargetTracking-{policy.resource_id}-{kind}-{uuid.uuid4()}",
                namespace=metric.namespace, metric_name=metric.metric_name,
                dimensions=metric.dimensions, statistic=metric.statistic,
                period=TRACKING_PERIOD, evaluation_periods=periods, datapoints_to_alarm=periods,
                threshold=threshold, comparison_operator=operator,
                alarm_actions=(policy.action,),
                description=f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy "
                            f"{policy.action}.",
                unit=metric.unit)
            store.put(alarm)
            refs.append(AlarmRef(alarm.name, alarm.arn(self.meta.region_name, self.account_id)))
        return tuple(refs)

    def _delete_alarms(self, policy: ScalingPolicy, keep: set[str] | None = None) -> None:
        delete_policy_alarms(self.alarms, policy, keep)
