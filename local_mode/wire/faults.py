"""What went wrong with a request, in the service's terms, before any protocol writes it down.

Every protocol answers errors in its own form (a JSON ``__type``, an ``x-amzn-ErrorType`` header,
an XML ``<Error>``), but the facts are the same: the service's error code, its message, the HTTP
status and, for a modeled error such as ``ModelError``, the extra members boto3 puts beside
``Error``. :func:`fault_of` turns whatever a local client raised into those facts, so no protocol
module decides on its own what a ``ParamValidationError`` or a crash means on the wire.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError

from local_mode.validation import INVALID_REQUEST
from local_mode.wire.codec import SerializationError, error_members

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fault:
    """An error answer: the service's ``code``, ``message``, HTTP ``status`` and the modeled
    error shape's other ``members`` (already in wire form)."""

    code: str
    message: str
    status: int = 400
    members: dict[str, Any] = field(default_factory=dict)

    @property
    def sender(self) -> bool:
        """The caller's fault (4xx) rather than the service's (5xx)."""
        return self.status < 500


def fault_of(error: Exception, service_model: Any) -> Fault:
    """The fault a local client's exception stands for. A request botocore itself would have
    refused gets the service's own code for an invalid request (``ValidationException`` for
    SageMaker, ``InvalidParameterException`` for CloudWatch Logs, :data:`INVALID_REQUEST`): a
    client that skipped botocore's checks (curl, another SDK) gets what the service would
    answer. Anything else is local mode's own failure (500, logged)."""
    invalid_parameter = INVALID_REQUEST.get(service_model.service_name, "ValidationException")
    if isinstance(error, ClientError):
        response = error.response
        details = response.get("Error", {})
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
        return Fault(details.get("Code", "InternalFailure"), details.get("Message", ""),
                     status, error_members(error, service_model))
    if isinstance(error, ParamValidationError):
        return Fault(invalid_parameter, str(error.kwargs.get("report", error)).strip())
    if isinstance(error, SerializationError):
        return Fault("SerializationException", str(error))
    log.exception("local mode failed to answer a request")
    return Fault("InternalFailure", f"local mode failed: {type(error).__name__}: {error}", 500)


def unknown_operation(service: str, operation: str, implemented: list[str]) -> Fault:
    """An operation the service has that local mode does not run, or one it does not have."""
    known = ", ".join(sorted(implemented))
    return Fault("UnknownOperationException",
                 f"local mode does not emulate {service} {operation}; it runs: {known}")
