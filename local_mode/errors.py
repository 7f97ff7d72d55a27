"""Errors shaped like the service's, so code written against boto3 handles them unchanged.

Each is a :class:`botocore.exceptions.ClientError` carrying the service's error code; catching
``ClientError`` and reading ``err.response["Error"]["Code"]`` works as it does against the cloud,
and so does ``client.exceptions.ResourceNotFound``.
"""

from __future__ import annotations

from botocore.exceptions import ClientError


class LocalModeError(ClientError):
    """Base: a ClientError whose code is the class's name."""

    code = "InternalFailure"
    http_status = 500

    def __init__(self, message: str, operation: str = "local") -> None:
        super().__init__({"Error": {"Code": self.code, "Message": message},
                          "ResponseMetadata": {"HTTPStatusCode": self.http_status}}, operation)
        self.message = message


class ValidationException(LocalModeError):
    code = "ValidationException"
    http_status = 400


class ResourceNotFound(LocalModeError):
    code = "ResourceNotFound"
    http_status = 400


class ResourceInUse(LocalModeError):
    code = "ResourceInUse"
    http_status = 400


class ResourceLimitExceeded(LocalModeError):
    code = "ResourceLimitExceeded"
    http_status = 400


class ModelError(LocalModeError):
    """InvokeEndpoint: the container answered with an error."""

    code = "ModelError"
    http_status = 424


class ServiceUnavailable(LocalModeError):
    code = "ServiceUnavailable"
    http_status = 503


ALL_ERRORS = (ValidationException, ResourceNotFound, ResourceInUse, ResourceLimitExceeded,
              ModelError, ServiceUnavailable)


class ExceptionsNamespace:
    """``client.exceptions.X`` as boto3 clients expose them."""

    ClientError = ClientError

    def __init__(self) -> None:
        for error in ALL_ERRORS:
            setattr(self, error.__name__, error)
