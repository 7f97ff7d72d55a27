"""Read training channels in File, FastFile or Pipe mode, and feed Pipe mode from the host.

User code::

    from toolkit.channels import open_channel

    train = open_channel("train")              # mode etc. from inputdataconfig.json
    for epoch_number in range(3):
        with train.open_epoch() as epoch:       # Pipe: opens train_0, train_1, ...
            for record in epoch.records("recordio"):
                ...

Host side (local mode): :class:`PipeFeeder` with a :class:`LocalFileSource`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolkit.channels.channel import Channel, Epoch, open_channel
    from toolkit.channels.config import (
        ChannelConfig,
        Compression,
        InputMode,
        RecordWrapper,
        load_channel_config,
        parse_channel_config,
    )
    from toolkit.channels.errors import ChannelError
    from toolkit.channels.feeder import EpochResult, EpochStatus, PipeFeeder
    from toolkit.channels.framing import Framing, frame
    from toolkit.channels.plan import Distribution, epoch_order
    from toolkit.channels.sources import LocalFileSource, ObjectInfo, ObjectSource

# Exported names resolve on first use (PEP 562): importing one submodule, as local mode's
# runner does with ``toolkit.channels.sources``, must not load the reader, the feeder and the
# framing code too - that was a fifth of the runner's start-up imports.
_EXPORTS = {
    "Channel": "channel", "Epoch": "channel", "open_channel": "channel",
    "ChannelConfig": "config", "Compression": "config", "InputMode": "config",
    "RecordWrapper": "config", "load_channel_config": "config", "parse_channel_config": "config",
    "ChannelError": "errors",
    "EpochResult": "feeder", "EpochStatus": "feeder", "PipeFeeder": "feeder",
    "Framing": "framing", "frame": "framing",
    "Distribution": "plan", "epoch_order": "plan",
    "LocalFileSource": "sources", "ObjectInfo": "sources", "ObjectSource": "sources",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "Channel",
    "ChannelConfig",
    "ChannelError",
    "Compression",
    "Distribution",
    "Epoch",
    "EpochResult",
    "EpochStatus",
    "Framing",
    "InputMode",
    "LocalFileSource",
    "ObjectInfo",
    "ObjectSource",
    "PipeFeeder",
    "RecordWrapper",
    "epoch_order",
    "frame",
    "load_channel_config",
    "parse_channel_config",
    "open_channel",
]
