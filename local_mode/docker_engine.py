"""What every user of the Docker engine in local mode shares: reaching it, and what it refuses.

Training jobs, endpoints, transform jobs, create-time checks and ``optml check`` all talk to the
same local engine. They connect the same way, treat "no engine" the same way (one error that says
what to do), remove objects the same way (something already gone is fine) and refuse an image the
engine does not have the same way: local mode never pulls (no registry is reachable from its
machines), so such an image is one the job could never run, as the service's unpullable image.
Keeping these here gives each of them one wording and one behaviour.
"""

from __future__ import annotations

from typing import Any

from local_mode.errors import ServiceUnavailable, ValidationException

CONTROL_TIMEOUT = 120.0
"""Seconds for one control call (create, kill, remove) to the engine."""
PROBE_TIMEOUT = 3.0
"""Seconds :func:`docker_reachable` gives an engine to answer (a quick yes/no for ``auto``)."""


class DockerUnavailable(ServiceUnavailable):
    """No Docker engine answers (local mode's Docker backends need one); caught, as with any
    ServiceUnavailable, by ``except client.exceptions.ServiceUnavailable``."""


class ImageNotFound(ValidationException):
    """The image a request names is not in the local engine (local mode never pulls)."""


def connect(timeout: float | None = CONTROL_TIMEOUT, version: str | None = None) -> Any:
    """A docker client from the environment (DOCKER_HOST, ...); ``timeout=None`` for streams."""
    try:
        import docker
    except ImportError:  # pragma: no cover - docker is in optml[local]
        raise DockerUnavailable("the Docker backend needs the docker package: "
                                "pip install 'optml[local]'") from None
    try:
        return docker.DockerClient.from_env(timeout=timeout, version=version)
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(f"no Docker engine is reachable ({exc}); start one or use the "
                                "process backend") from None


def reachable_client(timeout: float | None = CONTROL_TIMEOUT) -> Any:
    """A client whose engine answered a ping; DockerUnavailable (saying what to do) if not."""
    client = connect(timeout)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        client.close()
        raise DockerUnavailable(f"no Docker engine is reachable ({exc}); start one or use the "
                                "process backend") from None
    return client


def docker_reachable() -> bool:
    """Whether an engine answers now (what backend ``auto`` means, and what examples need)."""
    try:
        client = reachable_client(PROBE_TIMEOUT)
    except DockerUnavailable:
        return False
    client.close()
    return True


def ignore_missing(call: Any, *args: Any, **kwargs: Any) -> None:
    """Run an engine call that removes, kills or stops something; an object that is already
    gone (or going, or not running) is fine."""
    import docker.errors

    try:
        call(*args, **kwargs)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # "removal already in progress", "not running"
            raise


def require_image(client: Any, image: str, field: str, operation: str | None = None) -> None:
    """Raise :class:`ImageNotFound` naming ``field`` and ``image`` unless the engine has it.

    ``operation`` is the API call being refused, when the caller knows it (a client re-issues
    an error raised without one for the operation that was called).
    """
    import docker.errors

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise ImageNotFound(
            f"{field}: Requested image {image} not found in the local Docker engine; local "
            "mode never pulls images (no registry is reachable from here): build it "
            "(docker build -t ...) or load it (docker load -i ...) first", operation) from None
