"""Forgetting a scalable target with everything that hangs off it: its policies and the alarms
they made. DeregisterScalableTarget does it for one target; DeleteEndpoint for every target of
the endpoint, as the service deregisters a deleted endpoint's variants itself -- otherwise an
endpoint made again under the same name would be scaled by the old policies."""

from __future__ import annotations

from pathlib import Path

from local_mode.autoscaling.policies import ScalingPolicy
from local_mode.autoscaling.store import ScalingStore
from local_mode.cloudwatch.alarms import AlarmStore


def delete_policy_alarms(alarms: AlarmStore, policy: ScalingPolicy,
                         keep: set[str] | None = None) -> None:
    """Delete the alarms ``policy`` made (but those in ``keep``: a policy put again keeps the
    alarms its new configuration still has)."""
    for alarm in policy.alarms:
        if keep is None or alarm.name not in keep:
            alarms.delete(alarm.name)


def forget_target(state_root: Path, resource_id: str) -> bool:
    """Deregister ``resource_id``: the target, its policies, their alarms. False when it was
    not registered."""
    removed = ScalingStore(state_root).delete_target(resource_id)
    if removed is None:
        return False
    alarms = AlarmStore(state_root)
    for policy in removed[1]:
        delete_policy_alarms(alarms, policy)
    return True


def forget_endpoint(state_root: Path, endpoint_name: str) -> list[str]:
    """Deregister every variant of ``endpoint_name``; the resource ids deregistered."""
    targets = ScalingStore(state_root).targets_for_endpoint(endpoint_name)
    return [t.resource_id for t in targets if forget_target(state_root, t.resource_id)]
