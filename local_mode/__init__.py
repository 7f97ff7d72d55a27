"""optml local mode: run training jobs, endpoints and batch transform of any /opt/ml-contract
image on this machine, as the service would, with boto3-shaped clients (and ``optml local``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local_mode.wire.server import ApiServer


def client(service_name: str, **kwargs: Any) -> Any:
    """A local client for ``service_name`` ("sagemaker", "sagemaker-runtime", "logs",
    "cloudwatch", "application-autoscaling" or "sts"),
    shaped like boto3's: it takes boto3's client arguments (``region_name``, ``config``,
    credentials, ...) besides local mode's own (``settings``, ``state_dir``; ``backend`` for
    "sagemaker")."""
    from local_mode.sagemaker import client as make_client

    return make_client(service_name, **kwargs)


def server(**kwargs: Any) -> ApiServer:
    """A wire-API server on 127.0.0.1 (``with local_mode.server() as api:``) that unchanged
    boto3, SageMaker SDK and AWS CLI code reaches through ``api.endpoint.environ()``; takes
    :class:`local_mode.wire.server.ApiServer`'s arguments (``port``, ``region``, ``s3_store``,
    ``credentials``, ``state_dir``, ``backend``, ``record``)."""
    from local_mode.wire.server import ApiServer

    return ApiServer(**kwargs)


__all__ = ["client", "server"]
