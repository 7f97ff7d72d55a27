"""What every local client shares with a boto3 client, whatever its service.

A subclass names its ``SERVICE`` and defines methods named as boto3's (``create_training_job``);
each method whose name is an operation of botocore's model for that service becomes an API call
that behaves as boto3's does around the implementation:

- keyword arguments only (``TypeError`` otherwise, boto3's message);
- the request is checked first: :class:`botocore.exceptions.ParamValidationError` for what boto3
  itself rejects, then the service's own checks (:mod:`local_mode.validation`);
- a service error is a ClientError naming the operation called (botocore's message);
- the response carries ``ResponseMetadata`` as boto3's do.

The constructor takes boto3's client arguments; those that mean nothing locally (credentials,
endpoint URL, SSL, API version) are accepted and ignored. ``region_name`` (or ``config``'s) and
``aws_account_id`` show in ARNs and ``meta``. ``get_waiter``, ``get_paginator``,
``can_paginate`` and ``waiter_names`` come from botocore's own models (:mod:`local_mode.waiters`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from botocore import xform_name
from botocore.config import Config
from botocore.hooks import HierarchicalEmitter
from botocore.paginate import Paginator
from botocore.waiter import Waiter

from local_mode import waiters
from local_mode.errors import ExceptionsNamespace, LocalModeError
from local_mode.state import StateStore
from local_mode.validation import service_model, validate_request
from toolkit.settings import Settings

DEFAULT_REGION = "local"
DEFAULT_ACCOUNT = "000000000000"


def arn(kind: str, name: str, region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT) -> str:
    """A resource's ARN as the service writes it (the name lower-cased)."""
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"


class ClientMeta:
    """``client.meta`` as botocore's: the service model, region, config, event hooks."""

    def __init__(self, service: str, region_name: str, config: Config,
                 method_to_api_mapping: dict[str, str]) -> None:
        self.service_model = service_model(service)
        self.region_name = region_name
        self.config = config
        self.partition = "aws"
        self.endpoint_url = f"local://{service}"
        self.events = HierarchicalEmitter()
        self.method_to_api_mapping = method_to_api_mapping


class LocalClient:
    """Base of the local clients (see the module's docstring)."""

    SERVICE: ClassVar[str]
    UNDECLARED_ERRORS: ClassVar[tuple[str, ...]] = ()
    """Error codes the service raises without declaring them in its model."""
    OPERATIONS: ClassVar[dict[str, str]] = {}
    """``{method_name: OperationName}`` of every implemented operation."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "SERVICE", None) is None:  # a base shared by several services
            return
        operations: dict[str, str] = {}
        for operation in service_model(cls.SERVICE).operation_names:
            name = xform_name(operation)
            method = getattr(cls, name, None)
            if method is None:
                continue
            if getattr(method, "__operation__", None) != operation:
                setattr(cls, name, _api_call(cls.SERVICE, operation, name, method))
            operations[name] = operation
        cls.OPERATIONS = operations

    def __init__(self, *, region_name: str | None = None, config: Config | None = None,
                 aws_account_id: str | None = None, api_version: str | None = None,
                 use_ssl: bool = True, verify: bool | str | None = None,
                 endpoint_url: str | None = None, aws_access_key_id: str | None = None,
                 aws_secret_access_key: str | None = None,
                 aws_session_token: str | None = None) -> None:
        if config is not None and not isinstance(config, Config):
            raise TypeError(f"config must be a botocore.config.Config, got "
                            f"{type(config).__name__}")
        region = region_name or (config.region_name if config is not None else None) or \
            DEFAULT_REGION
        self.account_id = aws_account_id or DEFAULT_ACCOUNT
        self.meta = ClientMeta(self.SERVICE, region, config or Config(region_name=region),
                               dict(self.OPERATIONS))
        self.exceptions = ExceptionsNamespace.of_model(self.meta.service_model,
                                                       self.UNDECLARED_ERRORS)

    @classmethod
    def method_of(cls, operation: str) -> str | None:
        """The method that runs ``operation`` here (None: local mode does not run it)."""
        for method, name in cls.OPERATIONS.items():
            if name == operation:
                return method
        return None

    def _arn(self, kind: str, name: str) -> str:
        return arn(kind, name, self.meta.region_name, self.account_id)

    def __getattr__(self, name: str) -> Any:
        """A boto3 method local mode does not implement says so by the operation's name (an
        AttributeError all the same, so ``hasattr`` tells what runs locally)."""
        if not name.startswith("_"):
            operation = _operation_names(self.SERVICE).get(name)
            if operation is not None:
                raise AttributeError(
                    f"local mode does not emulate {self.SERVICE} {operation} ({name}); "
                    "the client's OPERATIONS lists the operations it runs")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- botocore's waiters and paginators -------------------------------------------------
    @property
    def waiter_names(self) -> list[str]:
        return sorted(waiters.waiter_names(self.SERVICE, self.OPERATIONS))

    def get_waiter(self, waiter_name: str) -> Waiter:
        return waiters.make_waiter(self, self.SERVICE, self.OPERATIONS, waiter_name)

    def can_paginate(self, operation_name: str) -> bool:
        return waiters.can_paginate(self.SERVICE, self.OPERATIONS, operation_name)

    def get_paginator(self, operation_name: str) -> Paginator:
        return waiters.make_paginator(self, self.SERVICE, self.OPERATIONS, operation_name)


class StateDirClient(LocalClient):
    """A local client over a state directory: ``settings`` and ``state_dir`` are local mode's
    own arguments (the directory defaults to the settings' one), the others boto3's client
    arguments. Every client but STS's reads or runs resources kept there."""

    def __init__(self, settings: Settings | None = None, *,
                 state_dir: str | Path | None = None, **client_args: Any) -> None:
        super().__init__(**client_args)
        self.settings = settings or Settings.from_environ()
        self.store = StateStore(Path(state_dir) if state_dir else self.settings.local.state_dir)


@functools.cache
def _operation_names(service: str) -> dict[str, str]:
    """``{method_name: OperationName}`` of every operation of ``service``'s model."""
    return {xform_name(op): op for op in service_model(service).operation_names}


def _api_call(service: str, operation: str, name: str,
              implementation: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(implementation)
    def call(self: LocalClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if args:
            raise TypeError(f"{name}() only accepts keyword arguments.")
        validate_request(operation, kwargs, service)
        try:
            response = implementation(self, **kwargs)
        except LocalModeError as exc:
            renamed = exc.for_operation(operation)
            if renamed is exc:
                raise
            raise renamed.with_traceback(exc.__traceback__) from None
        response.setdefault("ResponseMetadata", {
            "RequestId": str(uuid.uuid4()), "HTTPStatusCode": 200, "HTTPHeaders": {},
            "RetryAttempts": 0})
        return response

    call.__operation__ = operation  # type: ignore[attr-defined]
    return call
