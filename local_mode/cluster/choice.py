"""Pick the backend that runs a job's hosts, by name.

Apart from the protocols (the package's ``__init__``), which both backends import: a module that
offered the choice there would import the backends that import it. Each backend's module is
loaded when it is chosen: a job runner starts (and is on a job's critical path) with only the one
it runs on.
"""

from __future__ import annotations

from local_mode.cluster import Backend, Workload
from local_mode.errors import BackendUnsupported
from toolkit.settings import Settings


def make_backend(name: str, settings: Settings, state_dir: str = "") -> Backend:
    """The backend called ``name`` (``docker`` or ``process``; ``auto`` is resolved before),
    for a job of the state directory ``state_dir`` (what labels its containers; empty for one
    that belongs to none). Neither contacts anything here: the Docker backend reaches its
    engine on first use."""
    if name == "process":
        from local_mode.cluster.process import ProcessBackend

        return ProcessBackend(settings.environ, settings.local.stop_grace_seconds)
    if name == "docker":
        from local_mode.cluster.docker import DockerBackend

        return DockerBackend(settings, state_dir=state_dir)
    raise BackendUnsupported(f"backend {name!r} cannot run training or processing jobs; use docker or process "
                             "(OPTML_LOCAL_BACKEND)")


def check_at_create(name: str, settings: Settings, workload: Workload) -> None:
    """Refuse at the Create call, in the caller's process, what the backend called ``name``
    could not run (an image the engine lacks, an entrypoint the process backend cannot honour)
    rather than minutes later in the runner; what the check opened is closed again."""
    backend = make_backend(name, settings)
    try:
        backend.check(workload)
    finally:
        backend.teardown()
