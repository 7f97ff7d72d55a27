"""The service's wording of scaling activities, in one place (DescribeScalingActivities shows it
and users grep for it): Description, Cause and StatusMessage of a SageMaker variant's activity."""

from __future__ import annotations


def description(desired: int) -> str:
    return f"Setting desired instance count to {desired}."


def alarm_cause(alarm_name: str, policy_name: str) -> str:
    return f"monitor alarm {alarm_name} in state ALARM triggered policy {policy_name}"


def minimum_cause(minimum: int) -> str:
    return f"minimum capacity was set to {minimum}"


def maximum_cause(maximum: int) -> str:
    return f"maximum capacity was set to {maximum}"


def waiting(desired: int) -> str:
    """StatusMessage while the new instances start (InProgress)."""
    return (f"Successfully set desired instance count to {desired}. Waiting for change to be "
            "fulfilled by sagemaker.")


def fulfilled(desired: int) -> str:
    """StatusMessage once the variant serves with that many instances (Successful)."""
    return (f"Successfully set desired instance count to {desired}. Change successfully "
            "fulfilled by sagemaker.")


def failed(desired: int, reason: str) -> str:
    """StatusMessage when the change could not be made (Failed)."""
    return f"Failed to set desired instance count to {desired}. Reason: {reason}"
