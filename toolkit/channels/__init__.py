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
