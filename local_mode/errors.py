"""Errors shaped like the service's, so code written against boto3 handles them unchanged.

Each is a :class:`botocore.exceptions.ClientError` carrying the service's error code; catching
``ClientError`` and reading ``err.response["Error"]["Code"]`` works as it does against the cloud,
and so does ``except client.exceptions.ResourceNotFound``. The message is botocore's
("An error occurred (Code) when calling the Operation operation: ..."): an error raised below
the client (the state store, a spec) does not know the operation, so the client re-issues it
for the operation that was called (:meth:`LocalModeError.for_operation`).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:  # a type only: botocore.model costs a runner ~60 ms of start-up
    from botocore.model import ServiceModel


class LocalModeError(ClientError):
    """Base: a ClientError whose code is the class's ``code``."""

    code = "InternalFailure"
    http_status = 500

    def __init__(self, message: str, operation: str | None = None) -> None:
        super().__init__({"Error": {"Code": self.code, "Message": message},
                          "ResponseMetadata": {"RequestId": str(uuid.uuid4()),
                                               "HTTPStatusCode": self.http_status,
                                               "HTTPHeaders": {}, "RetryAttempts": 0}},
                         operation or "")
        if operation is None:  # raised below the client: the client names the operation
            self.args = (f"An error occurred ({self.code}): {message}",)
        self.message = message

    def for_operation(self, operation: str) -> LocalModeError:
        """This error as raised by ``operation`` (same class, code, message and response)."""
        if self.operation_name == operation:
            return self
        renamed = type(self).__new__(type(self))
        renamed.__dict__.update(self.__dict__)
        ClientError.__init__(renamed, self.response, operation)
        return renamed

    def __reduce__(self) -> tuple[Any, ...]:
        # by class where pickle can find it (ImageNotFound stays ImageNotFound); by code for the
        # classes error_class() makes on the fly
        cls = type(self)
        importable = getattr(sys.modules.get(cls.__module__), cls.__qualname__, None) is cls
        return _rebuild, (cls if importable else cls.code, self.message,
                          self.operation_name or None, self.response)


def _rebuild(kind: type[LocalModeError] | str, message: str, operation: str | None,
             response: dict[str, Any]) -> LocalModeError:
    cls = error_class(kind) if isinstance(kind, str) else kind
    error = cls(message, operation)
    error.response = response
    return error


class ValidationException(LocalModeError):
    code = "ValidationException"
    http_status = 400


class BackendUnsupported(ValidationException):
    """The chosen backend cannot run this job or model (an image's own entrypoint on the process
    backend, a job without an image on Docker); the message says why and what would.

    One class for training, endpoints and transform jobs: at create time it is the service's
    ValidationException, so callers catch it the same way whichever kind refused.
    """


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


class ValidationError(LocalModeError):
    """sagemaker-runtime's name for a bad request (no such endpoint, payload too large)."""

    code = "ValidationError"
    http_status = 400


class InternalFailure(LocalModeError):
    code = "InternalFailure"
    http_status = 500


class ModelNotReadyException(LocalModeError):
    code = "ModelNotReadyException"
    http_status = 429


DEFINED = {error.code: error for error in (
    ValidationException, ResourceNotFound, ResourceInUse, ResourceLimitExceeded, ModelError,
    ServiceUnavailable, ValidationError, InternalFailure, ModelNotReadyException)}


@cache
def error_class(code: str) -> type[LocalModeError]:
    """The one class for ``code`` (so ``except client.exceptions.X`` catches it from every
    client): a class above, else one made once for an error the API model declares."""
    if code in DEFINED:
        return DEFINED[code]
    return type(code, (LocalModeError,), {"code": code, "http_status": 400,
                                          "__module__": __name__})


class ExceptionsNamespace:
    """``client.exceptions.X`` as boto3 clients expose them: every error the service's API model
    declares, by its shape's name, plus ``ClientError``, ``from_code`` and the undeclared codes
    local mode raises (``ValidationException``, which the service raises without declaring it).

    A shape's class is the one for the code the service sends, which the model may spell apart
    from the shape (cloudwatch's ``InvalidParameterValueException`` is sent as
    ``InvalidParameterValue``), so ``except client.exceptions.X`` catches what is raised."""

    ClientError = ClientError

    def __init__(self, codes: Mapping[str, str]) -> None:
        """``codes``: ``{name on the namespace: error code sent}``."""
        self._by_code: dict[str, Any] = {}
        for name, code in codes.items():
            made = error_class(code)
            setattr(self, name, made)
            self._by_code.setdefault(code, made)

    @classmethod
    def of_model(cls, model: ServiceModel, undeclared: tuple[str, ...] = ()
                 ) -> ExceptionsNamespace:
        codes = {shape.name: (shape.metadata.get("error") or {}).get("code", shape.name)
                 for shape in model.error_shapes}
        return cls({**codes, **{code: code for code in undeclared}})

    def from_code(self, code: str) -> Any:
        return self._by_code.get(code, ClientError)

