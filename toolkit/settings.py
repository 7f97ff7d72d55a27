"""The one place that reads the process environment.

:func:`Settings.from_environ` is called once by an entry point; the resulting immutable object is
passed to everything else. Bad values fail here, naming the variable, instead of deep inside a job.
Child processes get :attr:`Settings.environ`, the snapshot taken at that moment.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

from toolkit.errors import ConfigError
from toolkit.layout import DEFAULT_ROOT, Layout

ENVIRONMENT_SOURCE = "environment"
"""The ``source`` of every :class:`ConfigError` a bad variable raises here, so a command line can
tell a bad environment (the user's to fix, one line) from a bad file or a bug."""
_ENV = ENVIRONMENT_SOURCE
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


#: sun_path holds 108 bytes on Linux and 104 on macOS, with the terminating NUL.
LOCAL_BACKENDS = ("auto", "docker", "process")
"""What ``OPTML_LOCAL_BACKEND`` (and local mode's ``backend`` arguments) may name."""
MAX_UNIX_SOCKET_PATH = 100


def _get_str(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name)
    return default if value is None or value == "" else value


def _get_int(env: Mapping[str, str], name: str, default: int | None, minimum: int = 0,
             maximum: int | None = None) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(_ENV, f"must be an integer, got {raw!r}", field=name) from None
    if value < minimum:
        raise ConfigError(_ENV, f"must be >= {minimum}, got {value}", field=name)
    if maximum is not None and value > maximum:
        raise ConfigError(_ENV, f"must be <= {maximum}, got {value}", field=name)
    return value


def _get_float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(_ENV, f"must be a number, got {raw!r}", field=name) from None
    if not math.isfinite(value):
        raise ConfigError(_ENV, f"must be a finite number, got {raw!r}", field=name)
    if value < minimum:
        raise ConfigError(_ENV, f"must be >= {minimum}, got {value}", field=name)
    return value


def _get_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(_ENV, f"must be true or false, got {raw!r}", field=name)


def _get_dir(env: Mapping[str, str], name: str) -> Path | None:
    """A directory that may not exist yet; a file in its place (or in place of a parent) is a
    bad value now, rather than an error deep inside the first command that creates it."""
    raw = _get_str(env, name)
    if raw is None:
        return None
    path = Path(raw)
    for candidate in (path, *path.parents):
        if os.path.exists(candidate):  # False also when it cannot be looked at: left to the user
            if not os.path.isdir(candidate):
                raise ConfigError(_ENV, f"must name a directory, but {str(candidate)!r} is not "
                                  "one", field=name)
            break
    return path


def _get_file(env: Mapping[str, str], name: str) -> Path | None:
    """A file that must exist when named: a typo is a bad value now, not a silently ignored
    override later."""
    raw = _get_str(env, name)
    if raw is None:
        return None
    path = Path(raw)
    if not path.is_file():
        raise ConfigError(_ENV, f"must name an existing file, got {raw!r}", field=name)
    return path


def _get_log_level(env: Mapping[str, str], name: str, default: int) -> int:
    """Accept a number (``20``) or a level name (``INFO``), as users write both."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    names = {"CRITICAL": 50, "FATAL": 50, "ERROR": 40, "WARNING": 30, "WARN": 30, "INFO": 20,
             "DEBUG": 10, "NOTSET": 0}
    try:
        return names[text.upper()]
    except KeyError:
        raise ConfigError(_ENV, f"must be a log level number or name, got {raw!r}",
                          field=name) from None


@dataclass(frozen=True)
class TrainingSettings:
    """What the ``train`` entry takes from the environment (the contract's, plus optml knobs)."""

    program: str | None = None
    """``SAGEMAKER_PROGRAM``: wins over the ``sagemaker_program`` hyperparameter."""
    submit_directory: str | None = None
    """``SAGEMAKER_SUBMIT_DIRECTORY``: wins over ``sagemaker_submit_directory``."""
    log_level: int | None = None
    """``SAGEMAKER_CONTAINER_LOG_LEVEL``: wins over ``sagemaker_container_log_level``."""
    region: str | None = None
    job_name: str | None = None
    job_arn: str | None = None
    stop_grace_seconds: float = 110.0
    """``OPTML_STOP_GRACE_SECONDS``: SIGTERM-to-SIGKILL grace; below the platform's 120 s."""
    host_resolve_timeout_seconds: float = 300.0
    """``OPTML_HOST_RESOLVE_TIMEOUT``: how long to wait for every host name to resolve."""
    master_port: int = 7777
    """``OPTML_MASTER_PORT``: the torchrun rendezvous port (the reference toolkits use 7777)."""
    install_requirements: bool = True
    """``OPTML_INSTALL_REQUIREMENTS``: set false to skip ``requirements.txt`` (pre-baked images)."""
    torch_distributed: bool | None = None
    """``OPTML_TORCH_DISTRIBUTED``: launch with torchrun; same as the hyperparameter
    ``sagemaker_torch_distributed_enabled`` (the variable wins when set)."""
    nproc_per_node: int | None = None
    """``OPTML_NPROC_PER_NODE``: torchrun processes per host (default: GPUs, else 1)."""

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> TrainingSettings:
        log_level = env.get("SAGEMAKER_CONTAINER_LOG_LEVEL")
        return cls(
            program=_get_str(env, "SAGEMAKER_PROGRAM"),
            submit_directory=_get_str(env, "SAGEMAKER_SUBMIT_DIRECTORY"),
            log_level=None if not log_level else _get_log_level(
                env, "SAGEMAKER_CONTAINER_LOG_LEVEL", 20),
            region=_get_str(env, "SAGEMAKER_REGION") or _get_str(env, "AWS_REGION"),
            job_name=_get_str(env, "TRAINING_JOB_NAME"),
            job_arn=_get_str(env, "TRAINING_JOB_ARN"),
            stop_grace_seconds=_get_float(env, "OPTML_STOP_GRACE_SECONDS", 110.0),
            host_resolve_timeout_seconds=_get_float(env, "OPTML_HOST_RESOLVE_TIMEOUT", 300.0),
            master_port=_get_int(env, "OPTML_MASTER_PORT", 7777, minimum=1, maximum=65535) or 7777,
            install_requirements=_get_bool(env, "OPTML_INSTALL_REQUIREMENTS", True),
            torch_distributed=(None if env.get("OPTML_TORCH_DISTRIBUTED") is None
                               else _get_bool(env, "OPTML_TORCH_DISTRIBUTED", False)),
            nproc_per_node=_get_int(env, "OPTML_NPROC_PER_NODE", None, minimum=1),
        )


@dataclass(frozen=True)
class ServingSettings:
    """What the ``serve`` entry takes from the environment (the contract's, plus optml knobs)."""

    port: int = 8080
    """``SAGEMAKER_BIND_TO_PORT``."""
    bind_host: str = "0.0.0.0"  # noqa: S104 - the contract: containers listen on every interface
    """``OPTML_BIND_HOST``: the address to listen on; local mode sets 127.0.0.1 so instances
    are reachable only from this machine (containers keep 0.0.0.0, as the platform needs)."""
    safe_port_range: tuple[int, int] | None = None
    """``SAGEMAKER_SAFE_PORT_RANGE`` ("low-high", inclusive)."""
    workers: int | None = None
    """``SAGEMAKER_MODEL_SERVER_WORKERS``; ``None`` means the cgroup-aware CPU count."""
    timeout_seconds: int = 60
    """``SAGEMAKER_MODEL_SERVER_TIMEOUT``."""
    program: str = "inference.py"
    """``SAGEMAKER_PROGRAM``."""
    submit_directory: str | None = None
    """``SAGEMAKER_SUBMIT_DIRECTORY``."""
    default_accept: str | None = None
    """``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``: used when Accept is missing or ``*/*``."""
    log_level: int = 20
    """``SAGEMAKER_CONTAINER_LOG_LEVEL``."""
    max_payload_mb: int = 6
    """``SAGEMAKER_MAX_PAYLOAD_IN_MB``."""
    batch: bool = False
    """``SAGEMAKER_BATCH``."""
    batch_strategy: str | None = None
    """``SAGEMAKER_BATCH_STRATEGY`` (``MULTI_RECORD`` | ``SINGLE_RECORD``)."""
    max_concurrent_transforms: int | None = None
    """``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS``."""
    multi_model: bool = False
    """``SAGEMAKER_MULTI_MODEL``."""
    debug_errors: bool = False
    """``OPTML_DEBUG_ERRORS``: put tracebacks in error bodies (never on by default)."""
    preload_model: bool = True
    """``OPTML_PRELOAD_MODEL``: load once in the master and fork; false for unforkable models."""
    install_requirements: bool = True
    """``OPTML_INSTALL_REQUIREMENTS``."""
    threads: int | None = None
    """``OPTML_SERVER_THREADS``: request threads per gthread worker (``optml serve --threads``
    wins); threads reserved for /ping come on top."""
    default_handlers: str | None = None
    """``OPTML_DEFAULT_HANDLERS``: a module name or ``.py`` path whose handlers a framework image
    provides; the user's own module overrides any of them, toolkit defaults fill the rest."""
    unix_socket: str | None = None
    """``OPTML_UNIX_SOCKET``: the path of an extra listener on a Unix socket, beside the TCP
    port (which stays the contract's). optml local mode sets it so its endpoint router reaches
    an optml-built instance without a TCP round trip; it is not for the platform."""

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> ServingSettings:
        safe_range = None
        raw_range = _get_str(env, "SAGEMAKER_SAFE_PORT_RANGE")
        if raw_range is not None:
            low, sep, high = raw_range.partition("-")
            if not sep or not low.strip().isdigit() or not high.strip().isdigit() or \
                    int(low) > int(high):
                raise ConfigError(_ENV, f"must be 'low-high', got {raw_range!r}",
                                  field="SAGEMAKER_SAFE_PORT_RANGE")
            safe_range = (int(low), int(high))
        raw_strategy = strategy = _get_str(env, "SAGEMAKER_BATCH_STRATEGY")
        if strategy is not None:
            strategy = strategy.strip().upper().replace("-", "_")
            aliases = {"MULTIRECORD": "MULTI_RECORD", "SINGLERECORD": "SINGLE_RECORD"}
            strategy = aliases.get(strategy, strategy)
            if strategy not in {"MULTI_RECORD", "SINGLE_RECORD"}:
                raise ConfigError(_ENV, f"must be MULTI_RECORD or SINGLE_RECORD, got "
                                  f"{raw_strategy!r}", field="SAGEMAKER_BATCH_STRATEGY")
        unix_socket = _get_str(env, "OPTML_UNIX_SOCKET")
        if unix_socket is not None and (not unix_socket.startswith("/")
                                        or len(os.fsencode(unix_socket)) > MAX_UNIX_SOCKET_PATH):
            raise ConfigError(_ENV, f"must be an absolute path of at most "
                              f"{MAX_UNIX_SOCKET_PATH} bytes, got {unix_socket!r}",
                              field="OPTML_UNIX_SOCKET")
        return cls(
            port=_get_int(env, "SAGEMAKER_BIND_TO_PORT", 8080, minimum=1, maximum=65535) or 8080,
            bind_host=_get_str(env, "OPTML_BIND_HOST", "0.0.0.0") or "0.0.0.0",  # noqa: S104 - as above
            unix_socket=unix_socket,
            safe_port_range=safe_range,
            workers=_get_int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", None, minimum=1),
            timeout_seconds=_get_int(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60, minimum=1) or 60,
            program=_get_str(env, "SAGEMAKER_PROGRAM", "inference.py") or "inference.py",
            submit_directory=_get_str(env, "SAGEMAKER_SUBMIT_DIRECTORY"),
            default_accept=_get_str(env, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"),
            log_level=_get_log_level(env, "SAGEMAKER_CONTAINER_LOG_LEVEL", 20),
            max_payload_mb=_get_int(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", 6, minimum=0) or 0,
            batch=_get_bool(env, "SAGEMAKER_BATCH", False),
            batch_strategy=strategy,
            max_concurrent_transforms=_get_int(env, "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", None,
                                               minimum=1),
            multi_model=_get_bool(env, "SAGEMAKER_MULTI_MODEL", False),
            debug_errors=_get_bool(env, "OPTML_DEBUG_ERRORS", False),
            preload_model=_get_bool(env, "OPTML_PRELOAD_MODEL", True),
            install_requirements=_get_bool(env, "OPTML_INSTALL_REQUIREMENTS", True),
            threads=_get_int(env, "OPTML_SERVER_THREADS", None, minimum=1),
            default_handlers=_get_str(env, "OPTML_DEFAULT_HANDLERS"),
        )


@dataclass(frozen=True)
class LocalModeSettings:
    """What the local-mode emulator (host side) takes from the environment."""

    state_dir: Path = Path(".optml") / "local"
    """``OPTML_LOCAL_STATE_DIR``: job state, logs and work trees (default ``~/.optml/local``)."""
    backend: str = "auto"
    """``OPTML_LOCAL_BACKEND``: ``docker``, ``process`` or ``auto`` (Docker when reachable)."""
    stop_grace_seconds: float = 120.0
    """``OPTML_LOCAL_STOP_GRACE_SECONDS``: SIGTERM-to-SIGKILL grace on stop (service: 120 s)."""
    spot_interruption_after_seconds: float | None = None
    """``OPTML_LOCAL_SPOT_INTERRUPTION_AFTER``: inject a spot interruption after N seconds of
    training in jobs with EnableManagedSpotTraining."""

    checkpoint_sync_seconds: float = 5.0
    """``OPTML_LOCAL_CHECKPOINT_SYNC_SECONDS``: how often checkpoints are synced while a job
    runs (they are always synced once more at the end)."""
    continuous_upload_seconds: float = 1.0
    """``OPTML_LOCAL_CONTINUOUS_UPLOAD_SECONDS``: how often a processing job's Continuous
    outputs are uploaded while it runs (and once more at its end)."""
    metric_period_seconds: int = 60
    """``OPTML_LOCAL_METRIC_PERIOD_SECONDS``: the length of one endpoint metric datapoint and of
    one alarm evaluation period (service: 60 s). Smaller values compress an autoscaling policy's
    timeline for tests and demos: its evaluation periods and default cooldowns are counted in
    these periods."""
    endpoint_metrics: bool = True
    """``OPTML_LOCAL_ENDPOINT_METRICS``: the router records the service's endpoint metrics (and
    autoscaling can act on them); ``false`` turns both off."""
    prices_file: Path | None = None
    """``OPTML_LOCAL_PRICES_FILE``: a price table of the user's that overrides the packaged one
    (same format), for ``optml local cost``."""
    warm_runners: bool = True
    """``OPTML_LOCAL_WARM_RUNNERS``: after a Create, start the next runner of that kind ahead
    so the next Create skips Python's start (docs/local-mode.md); ``false`` starts each one
    when its Create comes."""

    @property
    def time_scale(self) -> float:
        """How much faster than the service's the scaling timeline runs: one metric period over
        the service's 60 s (alarm periods and cooldowns are multiplied by it)."""
        return self.metric_period_seconds / 60.0

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> LocalModeSettings:
        state = _get_dir(env, "OPTML_LOCAL_STATE_DIR")
        home = _get_str(env, "HOME")
        default_state = (Path(home) if home else Path.home()) / ".optml" / "local"
        raw_backend = _get_str(env, "OPTML_LOCAL_BACKEND", "auto") or "auto"
        backend = raw_backend.lower()
        if backend not in LOCAL_BACKENDS:
            raise ConfigError(_ENV, f"must be auto, docker or process, got {raw_backend!r}",
                              field="OPTML_LOCAL_BACKEND")
        spot = env.get("OPTML_LOCAL_SPOT_INTERRUPTION_AFTER")
        return cls(
            state_dir=state or default_state,
            backend=backend,
            stop_grace_seconds=_get_float(env, "OPTML_LOCAL_STOP_GRACE_SECONDS", 120.0),
            spot_interruption_after_seconds=(
                None if not spot else _get_float(env, "OPTML_LOCAL_SPOT_INTERRUPTION_AFTER", 0.0)),
            checkpoint_sync_seconds=_get_float(env, "OPTML_LOCAL_CHECKPOINT_SYNC_SECONDS", 5.0,
                                               minimum=0.1),
            continuous_upload_seconds=_get_float(env, "OPTML_LOCAL_CONTINUOUS_UPLOAD_SECONDS",
                                                 1.0, minimum=0.1),
            metric_period_seconds=_get_int(env, "OPTML_LOCAL_METRIC_PERIOD_SECONDS", 60,
                                           minimum=1, maximum=3600) or 60,
            endpoint_metrics=_get_bool(env, "OPTML_LOCAL_ENDPOINT_METRICS", True),
            prices_file=_get_file(env, "OPTML_LOCAL_PRICES_FILE"),
            warm_runners=_get_bool(env, "OPTML_LOCAL_WARM_RUNNERS", True),
        )


@dataclass(frozen=True)
class Settings:
    """Everything the toolkit takes from the environment, read once."""

    base_dir: Path = DEFAULT_ROOT
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def layout(self) -> Layout:
        return Layout(self.base_dir)

    @cached_property
    def training(self) -> TrainingSettings:
        """Parsed on first use, so a serving-only variable never breaks ``train`` (and back)."""
        return TrainingSettings.from_environ(self.environ)

    @cached_property
    def serving(self) -> ServingSettings:
        return ServingSettings.from_environ(self.environ)

    @cached_property
    def local(self) -> LocalModeSettings:
        return LocalModeSettings.from_environ(self.environ)

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: :data:`os.environ`), validating every value."""
        snapshot = dict(os.environ if env is None else env)
        base = _get_str(snapshot, "SAGEMAKER_BASE_DIR")
        return cls(
            base_dir=Path(base) if base else DEFAULT_ROOT,
            environ=MappingProxyType(snapshot),
        )
