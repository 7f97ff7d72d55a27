"""What names a scalable target: the service namespace, the scalable dimension and the resource id.

Local mode scales one kind of target, a SageMaker endpoint's production variant, whose resource
id is ``endpoint/<endpoint name>/variant/<variant name>`` and whose dimension is
``sagemaker:variant:DesiredInstanceCount``. Anything else the service scales (ECS services,
DynamoDB tables, inference components, ...) is refused here with one message that says so.
The ARNs are shaped as the service's: a policy's names its target, a target's carries an id.
"""

from __future__ import annotations

import re
import uuid

from local_mode.errors import ValidationException

SERVICE_NAMESPACE = "sagemaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SERVICE_ROLE_NAME = ("aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                     "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")
"""The service-linked role the service uses for SageMaker targets (``RoleARN`` when omitted)."""

_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
"""An endpoint's or a variant's name, as botocore's sagemaker model has both."""
_RESOURCE_ID = re.compile(rf"endpoint/(?P<endpoint>{_NAME})/variant/(?P<variant>{_NAME})")

ONLY_VARIANTS = ("local mode scales SageMaker endpoint variants only (ServiceNamespace "
                 f"'{SERVICE_NAMESPACE}', ScalableDimension '{SCALABLE_DIMENSION}', ResourceId "
                 "'endpoint/<endpoint name>/variant/<variant name>')")


def check_namespace(namespace: str, dimension: str | None = None) -> None:
    """ValidationException unless ``namespace`` (and ``dimension``, when given) are the ones
    local mode scales."""
    if namespace != SERVICE_NAMESPACE:
        raise ValidationException(f"Unsupported service namespace {namespace!r}: {ONLY_VARIANTS}")
    if dimension is not None and dimension != SCALABLE_DIMENSION:
        raise ValidationException(f"Unsupported scalable dimension {dimension!r}: "
                                  f"{ONLY_VARIANTS}")


def parse_resource_id(resource_id: str) -> tuple[str, str]:
    """``(endpoint name, variant name)`` of ``endpoint/<endpoint>/variant/<variant>``; the
    service's ValidationException for anything else."""
    found = _RESOURCE_ID.fullmatch(resource_id) if isinstance(resource_id, str) else None
    if found is None:
        raise ValidationException(f"Unsupported resource id {resource_id!r}: {ONLY_VARIANTS}")
    return found.group("endpoint"), found.group("variant")


def resource_id(endpoint_name: str, variant_name: str) -> str:
    """The resource id of an endpoint's variant (checked: it parses back to both names)."""
    made = f"endpoint/{endpoint_name}/variant/{variant_name}"
    parse_resource_id(made)
    return made


def target_arn(region: str, account: str) -> str:
    """A new scalable target's ARN (``...:scalable-target/<36 hex digits>``, as the service's)."""
    ident = (uuid.uuid4().hex + uuid.uuid4().hex)[:36]
    return f"arn:aws:application-autoscaling:{region}:{account}:scalable-target/{ident}"


def policy_arn(region: str, account: str, resource: str, name: str) -> str:
    """A new scaling policy's ARN: ``arn:aws:autoscaling:<region>:<account>:scalingPolicy:
    <uuid>:resource/sagemaker/<resource id>:policyName/<name>``."""
    return (f"arn:aws:autoscaling:{region}:{account}:scalingPolicy:{uuid.uuid4()}:"
            f"resource/{SERVICE_NAMESPACE}/{resource}:policyName/{name}")


def role_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/{SERVICE_ROLE_NAME}"
