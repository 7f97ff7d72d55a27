"""Clients shaped like boto3's ``sagemaker``, ``sagemaker-runtime``, ``logs`` and ``sts`` clients.

Code written for the service runs locally by swapping the client::

    sm = local_mode.client("sagemaker")          # instead of boto3.client("sagemaker")
    sm.create_training_job(**request)
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name)

Method names, request shapes, response shapes, errors, waiters and paginators are the service's,
from the API model inside botocore (see :mod:`local_mode.client_base`). Each resource kind's
operations live in :mod:`local_mode.api`; this module composes them. :func:`client` also serves
``"sagemaker-runtime"`` (:mod:`local_mode.runtime`), ``"logs"`` (the local jobs' logs as
CloudWatch Logs serves them, :mod:`local_mode.cloudwatch_logs`) and ``"sts"`` (the local
caller's identity, :mod:`local_mode.sts`), so code that makes all four from one factory runs
locally too.
"""

from __future__ import annotations

from typing import Any

from local_mode.api.endpoints import EndpointsAPI
from local_mode.api.processing import ProcessingAPI
from local_mode.api.tags import TagsAPI
from local_mode.api.training import TrainingAPI
from local_mode.api.transform import TransformAPI
from local_mode.client_base import arn
from local_mode.cloudwatch_logs import LogsClient
from local_mode.runtime import RuntimeClient
from local_mode.sts import StsClient

__all__ = ["SageMakerClient", "arn", "client"]


class SageMakerClient(TrainingAPI, ProcessingAPI, EndpointsAPI, TransformAPI, TagsAPI):
    """The local ``sagemaker`` client: training and processing jobs, models, endpoint configs,
    endpoints and transform jobs, and their tags, on one state directory.

    ``settings``, ``state_dir`` and ``backend`` are local mode's own arguments; the others are
    boto3's client arguments (:class:`local_mode.client_base.LocalClient`)."""


def client(service_name: str, **kwargs: Any) -> Any:
    """``local_mode.client(name)`` for ``"sagemaker"``, ``"sagemaker-runtime"``, ``"logs"`` (the
    local jobs' logs as CloudWatch Logs serves them) or ``"sts"`` (the local caller's identity),
    taking boto3's client arguments (``region_name``, ``config``, credentials, ...) besides
    local mode's own (``settings``, ``state_dir``; ``backend`` for ``"sagemaker"``)."""
    if service_name == "sagemaker":
        return SageMakerClient(**kwargs)
    if service_name == "sagemaker-runtime":
        return RuntimeClient(**kwargs)
    if service_name == "logs":
        return LogsClient(**kwargs)
    if service_name == "sts":
        return StsClient(**kwargs)
    raise ValueError(f"unknown local service {service_name!r}; expected 'sagemaker', "
                     "'sagemaker-runtime', 'logs' or 'sts'")
