"""Pick the backend that runs an endpoint's or a transform job's containers, by name.

Apart from the protocols (the package's ``__init__``), which both backends import: a module that
offered the choice there would import the backends that import it.
"""

from __future__ import annotations

from collections.abc import Mapping

from local_mode.docker_engine import ENDPOINT_LABEL
from local_mode.endpoints.backends import Backend
from local_mode.endpoints.backends.docker import DockerServingBackend
from local_mode.endpoints.backends.process import ProcessBackend
from local_mode.errors import BackendUnsupported


def make_backend(name: str, environ: Mapping[str, str], *,
                 owner: tuple[str, str] | None = None, state_dir: str = "",
                 stop_grace: float | None = None) -> Backend:
    """The backend called ``name``. For ``docker``: ``owner`` is the label (``optml.endpoint``
    or ``optml.transform``) and name every container and network gets, ``state_dir`` the state
    directory (also a label, so two state directories never sweep each other's containers),
    and ``stop_grace`` caps the SIGTERM-to-SIGKILL grace. The engine is contacted lazily."""
    if name == "process":
        return ProcessBackend(environ)
    if name == "docker":
        return DockerServingBackend(owner or (ENDPOINT_LABEL, "local"), state_dir, stop_grace)
    raise BackendUnsupported(f"backend {name!r} cannot run endpoints; use docker or process "
                             "(OPTML_LOCAL_BACKEND)")
