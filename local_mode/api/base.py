"""What every resource kind of the local ``sagemaker`` client shares.

Each kind's operations are a subclass of :class:`SageMakerBase` that adds only its own methods;
the client composes them. They share the state store, the settings, the backend choice, ARNs (from
:class:`local_mode.client_base.LocalClient`), the service's not-found wording and the runner
lifecycle (:mod:`local_mode.runners`), and nothing else: no kind calls another kind's methods.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from local_mode import runners
from local_mode.backend_choice import choose_backend
from local_mode.client_base import StateDirClient
from local_mode.errors import ResourceNotFound, ValidationException
from local_mode.state import ResourceDir
from toolkit.settings import LOCAL_BACKENDS, Settings

NOT_FOUND = {
    "training-jobs": "Requested resource not found: {name}",
    "models": 'Could not find model "{name}".',
    "endpoint-configs": 'Could not find endpoint configuration "{name}".',
    "endpoints": 'Could not find endpoint "{name}".',
    "transform-jobs": "Could not find requested job with name {name}",
    "processing-jobs": "Could not find requested job with name {name}",
}
"""The service's ValidationException message for a name that does not exist, by kind."""


class SageMakerBase(StateDirClient):
    """The local ``sagemaker`` client's state and shared helpers.

    ``settings``, ``state_dir`` and ``backend`` are local mode's own arguments; the others are
    boto3's client arguments (:class:`local_mode.client_base.LocalClient`)."""

    SERVICE = "sagemaker"
    UNDECLARED_ERRORS = ("ValidationException",)

    def __init__(self, settings: Settings | None = None, *, state_dir: str | Path | None = None,
                 backend: str | None = None, **client_args: Any) -> None:
        super().__init__(settings, state_dir=state_dir, **client_args)
        self.backend = backend or self.settings.local.backend
        if self.backend not in LOCAL_BACKENDS:
            raise ValidationException(f"backend must be auto, docker or process, got "
                                      f"{self.backend!r}")

    def _chosen_backend(self) -> str:
        """The backend a new resource runs on: ``auto`` is Docker when an engine answers."""
        return choose_backend(self.backend)

    def _resource(self, kind: str, name: str) -> ResourceDir:
        """The resource, or the service's ValidationException for a name that does not exist."""
        try:
            return self.store.get(kind, name)
        except ResourceNotFound:
            raise ValidationException(NOT_FOUND[kind].format(name=name)) from None

    def _exists(self, kind: str, name: str) -> bool:
        try:
            self.store.get(kind, name)
        except ResourceNotFound:
            return False
        return True

    def _stop_job(self, lifecycle: runners.Lifecycle, name: str, noun: str) -> dict[str, Any]:
        """Stop{Training,Processing}Job: SIGTERM to the job's runner, which takes it through
        Stopping to Stopped; the service's ValidationException when the job has already
        ended."""
        resource = self._resource(lifecycle.kind, name)
        description = runners.describe_live(resource, lifecycle)
        if lifecycle.settled(description):
            raise ValidationException(f"The {noun} {name} has already "
                                      f"{description[lifecycle.status_field].lower()}")
        runners.signal_runner(resource, signal.SIGTERM)
        return {}

    def _spawn(self, resource: ResourceDir, lifecycle: runners.Lifecycle, backend: str) -> None:
        runners.spawn(self.store, resource, lifecycle, backend, self.settings.environ,
                      warm=self.settings.local.warm_runners)
