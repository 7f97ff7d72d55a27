"""What a channel reader needs from ``inputdataconfig.json``, as enums.

Parsing and validation are :mod:`toolkit.training.config`'s (one parser for the file); this module
only picks one channel out and gives its settings the types readers act on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ConfigError
from toolkit.training.config import CHANNEL_NAME, load_json_file, parse_input_data_config


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


def parse_channel_config(document: Any, channel: str, *, source: str) -> ChannelConfig:
    """Pick ``channel`` out of an already-decoded ``inputdataconfig.json`` document."""
    check_channel_name(channel, source)
    channels = parse_input_data_config(document, source=source)
    if channel not in channels:
        known = ", ".join(sorted(channels)) or "none"
        raise ConfigError(source, f"no such channel (channels: {known})", field=channel)
    parsed = channels[channel]
    return ChannelConfig(name=channel, input_mode=InputMode(parsed.input_mode),
                         record_wrapper=RecordWrapper(parsed.record_wrapper),
                         compression=Compression(parsed.compression),
                         content_type=parsed.content_type)


def load_channel_config(path: Path, channel: str) -> ChannelConfig:
    """Read ``path`` (an ``inputdataconfig.json``) and return ``channel``'s settings."""
    return parse_channel_config(load_json_file(path), channel, source=str(path))
