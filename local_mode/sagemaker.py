"""Clients shaped like boto3's ``sagemaker``, ``sagemaker-runtime``, ``logs``, ``cloudwatch``,
``application-autoscaling`` and ``sts`` clients.

Code written for the service runs locally by swapping the client::

    sm = local_mode.client("sagemaker")          # instead of boto3.client("sagemaker")
    sm.create_training_job(**request)
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name)

Method names, request shapes, response shapes, errors, waiters and paginators are the service's,
from the API model inside botocore (see :mod:`local_mode.client_base`). Each resource kind's
operations live in :mod:`local_mode.api`; this module composes them. :func:`client` also serves
``"sagemaker-runtime"`` (:mod:`local_mode.runtime`), ``"logs"`` (the local jobs' logs as
CloudWatch Logs serves them, :mod:`local_mode.cloudwatch_logs`), ``"cloudwatch"`` (endpoint and
training metrics, alarms: :mod:`local_mode.cloudwatch.client`), ``"application-autoscaling"``
(scaling endpoint variants: :mod:`local_mode.autoscaling.client`) and ``"sts"`` (the local
caller's identity, :mod:`local_mode.sts`), so code that makes them all from one factory runs
locally too.
"""

from __future__ import annotations

from typing import Any

from local_mode.api.endpoints import EndpointsAPI
from local_mode.api.processing import ProcessingAPI
from local_mode.api.tags import TagsAPI
from local_mode.api.training import TrainingAPI
from local_mode.api.transform import TransformAPI
from local_mode.autoscaling.client import ApplicationAutoScalingClient
from local_mode.client_base import arn
from local_mode.cloudwatch.client import CloudWatchClient
from local_mode.cloudwatch_logs import LogsClient
from local_mode.runtime import RuntimeClient
from local_mode.sts import StsClient

__all__ = ["SageMakerClient", "arn", "client"]


class SageMakerClient(TrainingAPI, ProcessingAPI, EndpointsAPI, TransformAPI, TagsAPI):
    """The local ``sagemaker`` client: training and processing jobs, models, endpoint configs,
    endpoints and transform jobs, and their tags, on one state directory.

    ``settings``, ``state_dir`` and ``backend`` are local mode's own arguments; the others are
    boto3's client arguments (:class:`local_mode.client_base.LocalClient`)."""


CLIENTS: dict[str, type[Any]] = {
    "sagemaker": SageMakerClient, "sagemaker-runtime": RuntimeClient, "logs": LogsClient,
    "cloudwatch": CloudWatchClient, "application-autoscaling": ApplicationAutoScalingClient,
    "sts": StsClient}
"""Every service local mode answers, by boto3's service name."""


def client(service_name: str, **kwargs: Any) -> Any:
    """``local_mode.client(name)`` for a service of :data:`CLIENTS` (``"sagemaker"``,
    ``"sagemaker-runtime"``, ``"logs"``, ``"cloudwatch"``, ``"application-autoscaling"``,
    ``"sts"``), taking boto3's client arguments (``region_name``, ``config``, credentials, ...)
    besides local mode's own (``settings``, ``state_dir``; ``backend`` for ``"sagemaker"``)."""
    made = CLIENTS.get(service_name)
    if made is None:
        raise ValueError(f"unknown local service {service_name!r}; expected one of "
                         f"{', '.join(repr(name) for name in CLIENTS)}")
    return made(**kwargs)
