"""Just enough of ``inputdataconfig.json`` to read a channel (CONTRACT §1.2).

Deliberately small and self-contained: the full training config parser lives elsewhere and may
replace this later. Only the fields a reader needs are parsed — ``TrainingInputMode``,
``RecordWrapperType``, ``CompressionType``, ``ContentType`` — and a bad value is a
:class:`~toolkit.errors.ConfigError` naming the file and the field.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ConfigError

CHANNEL_NAME = re.compile(r"[A-Za-z0-9.\-_]{1,64}")
"""Channel names allowed by the service; also keeps a name from escaping the data directory."""


class InputMode(str, enum.Enum):
    """``TrainingInputMode``: how the platform delivers a channel."""

    FILE = "File"
    PIPE = "Pipe"
    FASTFILE = "FastFile"


class RecordWrapper(str, enum.Enum):
    """``RecordWrapperType``: ``RecordIO`` means each source object is one RecordIO record."""

    NONE = "None"
    RECORDIO = "RecordIO"


class Compression(str, enum.Enum):
    """``CompressionType`` of the channel's objects."""

    NONE = "None"
    GZIP = "Gzip"


@dataclass(frozen=True)
class ChannelConfig:
    """The per-channel settings a reader acts on."""

    name: str
    input_mode: InputMode = InputMode.FILE
    record_wrapper: RecordWrapper = RecordWrapper.NONE
    compression: Compression = Compression.NONE
    content_type: str | None = None


def check_channel_name(name: str, source: str = "channel name") -> str:
    """Return ``name`` if the service would accept it; raise :class:`ConfigError` otherwise."""
    if not isinstance(name, str) or not CHANNEL_NAME.fullmatch(name):
        raise ConfigError(source, f"invalid channel name {name!r}: must match "
                                  f"{CHANNEL_NAME.pattern}")
    return name


def _enum_field(raw: Mapping[str, Any], key: str, kind: type[enum.Enum], default: enum.Enum,
                source: str, channel: str) -> Any:
    if key not in raw or raw[key] is None:
        return default
    value = raw[key]
    for member in kind:  # the service is case-sensitive; accept any case, it costs nothing
        if isinstance(value, str) and value.lower() == member.value.lower():
            return member
    allowed = " | ".join(m.value for m in kind)
    raise ConfigError(source, f"must be {allowed}, got {value!r}", field=f"{channel}.{key}")


def parse_channel_config(document: Any, channel: str, *, source: str) -> ChannelConfig:
    """Pick ``channel`` out of an already-decoded ``inputdataconfig.json`` document."""
    check_channel_name(channel, source)
    if not isinstance(document, Mapping):
        raise ConfigError(source, f"must be a JSON object, got {type(document).__name__}")
    if channel not in document:
        known = ", ".join(sorted(map(str, document))) or "none"
        raise ConfigError(source, f"no such channel (channels: {known})", field=channel)
    raw = document[channel]
    if not isinstance(raw, Mapping):
        raise ConfigError(source, f"must be a JSON object, got {type(raw).__name__}",
                          field=channel)
    content_type = raw.get("ContentType")
    if content_type is not None and not isinstance(content_type, str):
        raise ConfigError(source, f"must be a string, got {content_type!r}",
                          field=f"{channel}.ContentType")
    return ChannelConfig(
        name=channel,
        input_mode=_enum_field(raw, "TrainingInputMode", InputMode, InputMode.FILE, source,
                               channel),
        record_wrapper=_enum_field(raw, "RecordWrapperType", RecordWrapper, RecordWrapper.NONE,
                                   source, channel),
        compression=_enum_field(raw, "CompressionType", Compression, Compression.NONE, source,
                                channel),
        content_type=content_type,
    )


def load_channel_config(path: Path, channel: str) -> ChannelConfig:
    """Read ``path`` (an ``inputdataconfig.json``) and return ``channel``'s settings."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "file not found (is this running inside a training job?)") \
            from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, f"cannot read: {exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(source, f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                                  f"{exc.msg}") from None
    return parse_channel_config(document, channel, source=source)
