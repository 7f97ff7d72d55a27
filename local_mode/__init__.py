"""optml local mode: run training jobs, endpoints and batch transform of any /opt/ml-contract
image on this machine, as the service would, with boto3-shaped clients (and ``optml local``)."""

from __future__ import annotations

from typing import Any


def client(service_name: str, **kwargs: Any) -> Any:
    """A local client for ``service_name`` ("sagemaker" or "sagemaker-runtime"), shaped like
    boto3's: it takes boto3's client arguments (``region_name``, ``config``, credentials, ...)
    besides local mode's own (``settings``, ``state_dir``, ``backend``)."""
    from local_mode.sagemaker import client as make_client

    return make_client(service_name, **kwargs)


__all__ = ["client"]
