"""Parse and validate the job's configuration files.

Every problem becomes a :class:`~toolkit.errors.ConfigError` naming the file and the field, which
``train`` turns into ``/opt/ml/output/failure`` and a non-zero exit. Parsing happens once, at the
edge; the rest of the runtime receives these typed, immutable objects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from toolkit.errors import ConfigError
from toolkit.layout import Layout

MAX_HYPERPARAMETERS = 100
MAX_CHANNELS = 20
CHANNEL_NAME = re.compile(r"[A-Za-z0-9.\-_]{1,64}")

INPUT_MODES = ("File", "Pipe", "FastFile")
DISTRIBUTION_TYPES = ("FullyReplicated", "ShardedByS3Key")
RECORD_WRAPPER_TYPES = ("None", "RecordIO")
COMPRESSION_TYPES = ("None", "Gzip")

#: Hyperparameters the platform and SDKs reserve: removed from the user's hyperparameters.
RESERVED_HYPERPARAMETERS = frozenset({
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_region",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_s3_output",
    "_tuning_objective_metric",
})


def load_json_file(path: Path, *, required: bool = True) -> Any:
    """Read a JSON config file; ConfigError (naming the file) when missing or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(str(path), "file is missing") from None
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), f"is not valid JSON: {exc.msg} at line {exc.lineno} "
                                     f"column {exc.colno}") from None


def _expect(value: Any, kind: type | tuple[type, ...], source: str, field_name: str,
            what: str) -> Any:
    if not isinstance(value, kind):
        raise ConfigError(source, f"must be {what}, got {type(value).__name__}", field=field_name)
    return value


def decode_hyperparameter(raw: str) -> Any:
    """Framework SDKs JSON-encode every value (``"\\"train.py\\""``); plain jobs send ``"0.5"``.

    Decode with JSON and keep the raw string when it is not valid JSON, as the contract says.
    """
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw


@dataclass(frozen=True)
class Hyperparameters:
    """The job's hyperparameters, in job order, split into user / framework / reserved."""

    raw: Mapping[str, str]
    """Exactly what hyperparameters.json holds (values are strings)."""
    user: Mapping[str, Any]
    """Decoded values of the user's own hyperparameters (no ``sagemaker_*``), job order kept."""
    framework: Mapping[str, Any]
    """Decoded non-reserved ``sagemaker_*`` keys (e.g. ``sagemaker_torch_distributed_enabled``)."""
    reserved: Mapping[str, Any]
    """Decoded reserved keys (``sagemaker_program`` ...)."""

    @classmethod
    def parse(cls, data: Any, source: str = "hyperparameters.json") -> Hyperparameters:
        if data is None:
            data = {}
        _expect(data, dict, source, "<root>", "a JSON object")
        if len(data) > MAX_HYPERPARAMETERS:
            raise ConfigError(source, f"has {len(data)} entries; at most {MAX_HYPERPARAMETERS} "
                                      "are allowed", field="<root>")
        user: dict[str, Any] = {}
        framework: dict[str, Any] = {}
        reserved: dict[str, Any] = {}
        for name, raw in data.items():
            if name == "" or "=" in name or "\x00" in name:
                raise ConfigError(source, "hyperparameter names must be non-empty and contain "
                                          "no '=' or NUL", field=name)
            if not isinstance(raw, str):
                raise ConfigError(source, "value must be a string (the service sends every "
                                          f"hyperparameter as a string), got {type(raw).__name__}",
                                  field=name)
            if "\x00" in raw:
                raise ConfigError(source, "value must not contain NUL characters", field=name)
            value = decode_hyperparameter(raw)
            if name in RESERVED_HYPERPARAMETERS:
                reserved[name] = value
            elif name.startswith("sagemaker_"):
                framework[name] = value
            else:
                user[name] = value
        return cls(raw=MappingProxyType(dict(data)), user=MappingProxyType(user),
                   framework=MappingProxyType(framework), reserved=MappingProxyType(reserved))


@dataclass(frozen=True)
class ChannelConfig:
    """One channel of inputdataconfig.json."""

    name: str
    input_mode: str = "File"
    distribution: str = "FullyReplicated"
    record_wrapper: str = "None"
    content_type: str | None = None
    compression: str = "None"
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def _enum(entry: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str,
          source: str, prefix: str) -> str:
    value = entry.get(key, default)
    if value is None:
        return default
    if value not in allowed:
        raise ConfigError(source, f"must be one of {', '.join(allowed)}, got {value!r}",
                          field=f"{prefix}.{key}")
    return value


def parse_input_data_config(data: Any, source: str = "inputdataconfig.json"
                            ) -> Mapping[str, ChannelConfig]:
    """Validate channels; absent optional keys take the service's defaults."""
    if data is None:
        data = {}
    _expect(data, dict, source, "<root>", "a JSON object")
    if len(data) > MAX_CHANNELS:
        raise ConfigError(source, f"has {len(data)} channels; at most {MAX_CHANNELS} are allowed",
                          field="<root>")
    channels: dict[str, ChannelConfig] = {}
    for name, entry in data.items():
        if name in {".", ".."} or not CHANNEL_NAME.fullmatch(name):
            raise ConfigError(source, "channel names must match [A-Za-z0-9.\\-_]{1,64}",
                              field=name)
        _expect(entry, dict, source, name, "a JSON object")
        content_type = entry.get("ContentType")
        if content_type is not None and not isinstance(content_type, str):
            raise ConfigError(source, "must be a string", field=f"{name}.ContentType")
        channels[name] = ChannelConfig(
            name=name,
            input_mode=_enum(entry, "TrainingInputMode", INPUT_MODES, "File", source, name),
            distribution=_enum(entry, "S3DistributionType", DISTRIBUTION_TYPES, "FullyReplicated",
                               source, name),
            record_wrapper=_enum(entry, "RecordWrapperType", RECORD_WRAPPER_TYPES, "None", source,
                                 name),
            content_type=content_type,
            compression=_enum(entry, "CompressionType", COMPRESSION_TYPES, "None", source, name),
            raw=MappingProxyType(dict(entry)),
        )
    return MappingProxyType(channels)


@dataclass(frozen=True)
class ResourceConfig:
    """resourceconfig.json; only current_host, hosts and network_interface_name are guaranteed."""

    current_host: str
    hosts: tuple[str, ...]
    network_interface_name: str
    current_instance_type: str | None = None
    current_group_name: str | None = None
    instance_groups: tuple[Mapping[str, Any], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def sorted_hosts(self) -> tuple[str, ...]:
        """The stable order every host agrees on (the reference uses instance_groups order,
        which is not sorted and can make algo-2 the master)."""
        return tuple(sorted(self.hosts))

    @property
    def master_host(self) -> str:
        return self.sorted_hosts[0]

    @property
    def node_rank(self) -> int:
        return self.sorted_hosts.index(self.current_host)

    @property
    def is_master(self) -> bool:
        return self.current_host == self.master_host

    @classmethod
    def parse(cls, data: Any, source: str = "resourceconfig.json") -> ResourceConfig:
        _expect(data, dict, source, "<root>", "a JSON object")
        for key in ("current_host", "hosts", "network_interface_name"):
            if key not in data:
                raise ConfigError(source, "is required", field=key)
        current = _expect(data["current_host"], str, source, "current_host", "a string")
        hosts = _expect(data["hosts"], list, source, "hosts", "a list of host names")
        if not hosts:
            raise ConfigError(source, "must not be empty", field="hosts")
        for index, host in enumerate(hosts):
            if not isinstance(host, str) or not host:
                raise ConfigError(source, "must be a non-empty string", field=f"hosts[{index}]")
        if len(set(hosts)) != len(hosts):
            raise ConfigError(source, "has duplicate host names", field="hosts")
        if current not in hosts:
            raise ConfigError(source, f"{current!r} is not one of hosts {hosts}",
                              field="current_host")
        interface = _expect(data["network_interface_name"], str, source,
                            "network_interface_name", "a string")
        instance_type = data.get("current_instance_type")
        if instance_type is not None:
            _expect(instance_type, str, source, "current_instance_type", "a string")
        group_name = data.get("current_group_name")
        if group_name is not None:
            _expect(group_name, str, source, "current_group_name", "a string")
        groups = data.get("instance_groups", [])
        _expect(groups, list, source, "instance_groups", "a list")
        for index, group in enumerate(groups):
            where = f"instance_groups[{index}]"
            _expect(group, dict, source, where, "a JSON object")
            if "hosts" in group:
                _expect(group["hosts"], list, source, f"{where}.hosts", "a list")
        return cls(current_host=current, hosts=tuple(hosts), network_interface_name=interface,
                   current_instance_type=instance_type, current_group_name=group_name,
                   instance_groups=tuple(MappingProxyType(dict(g)) for g in groups),
                   raw=MappingProxyType(dict(data)))


@dataclass(frozen=True)
class CheckpointConfig:
    """checkpointconfig.json (only present when the job configured checkpoints)."""

    local_path: Path
    s3_uri: str | None = None

    @classmethod
    def parse(cls, data: Any, layout: Layout, source: str = "checkpointconfig.json"
              ) -> CheckpointConfig:
        if data is None:
            return cls(local_path=layout.default_checkpoint_dir)
        _expect(data, dict, source, "<root>", "a JSON object")
        local = data.get("LocalPath")
        if local is not None:
            _expect(local, str, source, "LocalPath", "a string")
            if not local:
                raise ConfigError(source, "must not be empty", field="LocalPath")
        s3_uri = data.get("S3Uri")
        if s3_uri is not None:
            _expect(s3_uri, str, source, "S3Uri", "a string")
        path = Path(local) if local else layout.default_checkpoint_dir
        if not path.is_absolute():
            raise ConfigError(source, "must be an absolute path", field="LocalPath")
        return cls(local_path=path, s3_uri=s3_uri)


@dataclass(frozen=True)
class JobConfig:
    """Everything under /opt/ml/input/config, parsed and validated."""

    hyperparameters: Hyperparameters
    channels: Mapping[str, ChannelConfig]
    resources: ResourceConfig
    checkpoint: CheckpointConfig
    input_data_config_raw: Mapping[str, Any]


def load_job_config(layout: Layout) -> JobConfig:
    """Read and validate every config file of ``layout``.

    hyperparameters.json, inputdataconfig.json and resourceconfig.json are required (the service
    always writes them); checkpointconfig.json only exists when checkpoints were configured.
    """
    hp_file = layout.hyperparameters_file
    idc_file = layout.input_data_config_file
    rc_file = layout.resource_config_file
    cp_file = layout.checkpoint_config_file
    hyperparameters = Hyperparameters.parse(load_json_file(hp_file), source=str(hp_file))
    idc_raw = load_json_file(idc_file)
    channels = parse_input_data_config(idc_raw, source=str(idc_file))
    resources = ResourceConfig.parse(load_json_file(rc_file), source=str(rc_file))
    checkpoint = CheckpointConfig.parse(load_json_file(cp_file, required=False), layout,
                                        source=str(cp_file))
    return JobConfig(hyperparameters=hyperparameters, channels=channels, resources=resources,
                     checkpoint=checkpoint,
                     input_data_config_raw=MappingProxyType(dict(idc_raw or {})))
