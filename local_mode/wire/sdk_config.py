"""The SageMaker Python SDK's configuration file for sessions pointed at the wire API.

The SDK honours botocore's per-service endpoint variables everywhere but one place: it asks STS
for the account (to name its default bucket ``sagemaker-<region>-<account>`` and check who owns
it) through a client whose endpoint it fixes to the real regional STS URL. Naming the default
bucket in the SDK's own configuration file (``SageMaker.PythonSDK.Modules.Session.
DefaultS3Bucket``, found through ``SAGEMAKER_USER_CONFIG_OVERRIDE``) makes it skip that call, so
an unchanged ``sagemaker.Session()`` never leaves the machine. The user's own configuration file,
if any, is carried over: only members it leaves unset are filled in. Telemetry, which the SDK
would send to the service's hosts, is opted out unless the user's file says otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from local_mode.error_text import message_of
from local_mode.errors import ValidationException
from local_mode.state import make_private_dir, open_private

CONFIG_NAME = "sagemaker-sdk-config.yaml"
OVERRIDE_VARIABLE = "SAGEMAKER_USER_CONFIG_OVERRIDE"


def default_bucket(region: str, account: str) -> str:
    """The bucket the SDK would name by default for ``region`` and ``account``."""
    return f"sagemaker-{region}-{account}"


def user_config_path(environ: Mapping[str, str]) -> Path | None:
    """The SDK user configuration file in effect for ``environ`` (None: there is none)."""
    named = environ.get(OVERRIDE_VARIABLE)
    if named:
        path = Path(named)
    else:
        config_home = environ.get("XDG_CONFIG_HOME") or \
            (str(Path(environ["HOME"]) / ".config") if environ.get("HOME") else None)
        if not config_home:
            return None
        path = Path(config_home) / "sagemaker"
    if path.is_dir():
        path = path / "config.yaml"
    return path if path.is_file() else None


def write_sdk_config(state_dir: Path, bucket: str | None, environ: Mapping[str, str]) -> Path:
    """Write the configuration for SDK sessions of this server into ``state_dir``. ``bucket``
    None (the server uses real S3): the SDK names its bucket from the real account, as it
    would anyway; a made-up account's bucket name there could belong to anyone."""
    config: dict[str, Any] = {}
    source = user_config_path(environ)
    if source is not None and source.resolve() != (state_dir / CONFIG_NAME).resolve():
        try:
            loaded = yaml.safe_load(source.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValidationException(f"{source}: the SageMaker SDK configuration file cannot "
                                      f"be read: {message_of(exc)}") from None
        if isinstance(loaded, dict):
            config = loaded
    config.setdefault("SchemaVersion", "1.0")
    modules = _mapping(_mapping(_mapping(config, "SageMaker"), "PythonSDK"), "Modules")
    if bucket is not None:
        _mapping(modules, "Session").setdefault("DefaultS3Bucket", bucket)
    modules.setdefault("TelemetryOptOut", True)
    make_private_dir(state_dir)
    path = state_dir / CONFIG_NAME
    with os.fdopen(open_private(path, os.O_WRONLY | os.O_TRUNC), "w") as handle:
        handle.write(yaml.safe_dump(config, sort_keys=False))
    return path


def _mapping(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """``parent[key]`` as a mapping, made one when it is missing or empty (``SageMaker:``
    with nothing under it); a member of another kind is the user's mistake, kept as it is in
    their file and replaced here."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value
