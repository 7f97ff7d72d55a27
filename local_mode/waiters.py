"""Waiters and paginators from botocore's own models (``waiters-2``, ``paginators-1``).

The acceptors, the operations and the waiter names are the service's, so a waiter ends, fails
and names itself exactly as boto3's would. Only the polling delay differs: local resources
change state in moments, so a local waiter polls every :data:`LOCAL_WAITER_DELAY` seconds and
makes as many more attempts as keep its total time the service's (delay x max attempts).
``WaiterConfig={"Delay": ..., "MaxAttempts": ...}`` overrides both, as with boto3.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Protocol

from botocore import xform_name
from botocore.exceptions import OperationNotPageableError
from botocore.paginate import Paginator, PaginatorModel
from botocore.waiter import Waiter, WaiterModel, create_waiter_with_client

from local_mode.validation import model_loader, operation_model


class OperationClient(Protocol):
    """What botocore's waiters and paginators need of a client: its ``meta`` (the service
    model), and one method per operation named as boto3 names it (``describe_training_job``),
    which botocore finds by name and the type system cannot express."""

    @property
    def meta(self) -> Any: ...


LOCAL_WAITER_DELAY = 0.05
"""Seconds between polls of a local waiter (the service's waiters poll every 30-120 s). A poll is
a describe that reads one small JSON file, so polling often costs nothing and a waiter returns
within 50 ms of the job's end instead of up to 200 ms."""


@lru_cache(maxsize=4)
def waiter_model(service: str) -> WaiterModel:
    return WaiterModel(model_loader().load_service_model(service, "waiters-2"))


@lru_cache(maxsize=4)
def paginator_model(service: str) -> PaginatorModel:
    return PaginatorModel(model_loader().load_service_model(service, "paginators-1"))


def waiter_names(service: str, operations: Mapping[str, str]) -> dict[str, str]:
    """``{python_name: WaiterName}`` of the service's waiters whose operation the client
    implements (``operations`` maps its method names to operation names)."""
    implemented = set(operations.values())
    model = waiter_model(service)
    return {xform_name(name): name for name in model.waiter_names
            if model.get_waiter(name).operation in implemented}


def make_waiter(client: OperationClient, service: str, operations: Mapping[str, str], name: str) -> Waiter:
    """botocore's waiter ``name`` on ``client``, polling at the local delay."""
    available = waiter_names(service, operations)
    if name not in available:
        raise ValueError(f"Waiter does not exist: {name}")
    waiter = create_waiter_with_client(available[name], waiter_model(service), client)
    total = waiter.config.delay * waiter.config.max_attempts
    waiter.config.delay = LOCAL_WAITER_DELAY
    waiter.config.max_attempts = max(1, math.ceil(total / LOCAL_WAITER_DELAY))
    return waiter


def can_paginate(service: str, operations: Mapping[str, str], name: str) -> bool:
    operation = operations.get(name)
    if operation is None:
        return False
    try:
        paginator_model(service).get_paginator(operation)
    except ValueError:
        return False
    return True


def make_paginator(client: OperationClient, service: str, operations: Mapping[str, str],
                   name: str) -> Paginator:
    """botocore's paginator for the client's method ``name`` (NextToken, MaxResults, MaxItems,
    PageSize and StartingToken all as with boto3)."""
    if not can_paginate(service, operations, name):
        raise OperationNotPageableError(operation_name=name)
    operation = operations[name]
    return Paginator(getattr(client, name), paginator_model(service).get_paginator(operation),
                     operation_model(operation, service))
