"""The one API user code reads a channel through, whatever its ``TrainingInputMode``.

``File`` / ``FastFile``: an epoch is one pass over the channel directory's files (see
:mod:`toolkit.channels.listing` for order and hidden files). ``Pipe``: an epoch is the next FIFO
``<channel>_<epoch>``; the epoch number comes from a per-process, per-channel counter so several
loops (or threads) in one process walk ``train_0``, ``train_1``, ... without reopening a drained
FIFO.

Defaults follow the channel's config: ``RecordWrapperType=RecordIO`` selects RecordIO framing;
``CompressionType=Gzip`` decompresses File/FastFile files, but not Pipe streams, because the
feeder already streams Pipe objects decompressed.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from toolkit.channels.config import (
    ChannelConfig,
    Compression,
    InputMode,
    RecordWrapper,
    check_channel_name,
    load_channel_config,
    parse_channel_config,
)
from toolkit.channels.errors import ChannelError
from toolkit.channels.fifo import DEFAULT_OPEN_TIMEOUT, DEFAULT_READ_TIMEOUT, FifoReader
from toolkit.channels.framing import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_LINE_LENGTH,
    Framing,
    as_compression,
    frame,
    recordio_views,
)
from toolkit.channels.listing import ListedFile, list_files
from toolkit.layout import Layout

READ_BUFFER_SIZE = 1 << 20
"""Buffer between a FIFO and the framing code: one large read per refill."""


class _EpochCounter:
    """Next Pipe epoch per (data dir, channel) in this process; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[tuple[str, str], int] = {}

    def claim(self, key: tuple[str, str], explicit: int | None) -> int:
        with self._lock:
            epoch = self._next.get(key, 0) if explicit is None else explicit
            self._next[key] = epoch + 1
            return epoch

    def release(self, key: tuple[str, str], epoch: int) -> None:
        """Undo a claim whose open failed, unless someone has claimed a later epoch since."""
        with self._lock:
            if self._next.get(key) == epoch + 1:
                self._next[key] = epoch

    def set(self, key: tuple[str, str], epoch: int) -> None:
        with self._lock:
            self._next[key] = epoch

    def peek(self, key: tuple[str, str]) -> int:
        with self._lock:
            return self._next.get(key, 0)


_COUNTER = _EpochCounter()


class Epoch:
    """One pass over a channel: its streams, or its framed records. Close it to stop early."""

    def __init__(self, channel: Channel, number: int | None, files: list[ListedFile] | None,
                 fifo: FifoReader | None) -> None:
        self.channel = channel
        self.number = number
        """The Pipe epoch number; ``None`` in File / FastFile mode."""
        self._files = files
        self._fifo = fifo
        self._pipe_stream: io.BufferedReader | None = None
        self._current: BinaryIO | None = None
        self._closed = False

    @property
    def path(self) -> Path:
        """The FIFO (Pipe) or the channel directory (File / FastFile)."""
        return self._fifo.path if self._fifo is not None else self.channel.directory

    def streams(self) -> Iterator[tuple[str, BinaryIO]]:
        """Yield ``(source, stream)`` per file (File) or once for the FIFO (Pipe).

        Each stream is closed when the iterator moves on; ``source`` names it in errors.
        """
        if self._closed:
            raise ValueError("epoch is closed")
        if self._fifo is not None:
            if self._pipe_stream is None:
                self._pipe_stream = io.BufferedReader(self._fifo, READ_BUFFER_SIZE)
            yield str(self._fifo.path), self._pipe_stream
            return
        for listed in self._files or ():
            if self._closed:
                return
            try:
                stream = open(listed.path, "rb", buffering=READ_BUFFER_SIZE)  # noqa: SIM115 - the caller closes it
            except OSError as exc:
                raise ChannelError(f"cannot open: {exc.strerror}", path=listed.path) from None
            self._current = stream
            try:
                yield str(listed.path), stream
            finally:
                self._current = None
                stream.close()

    def records(self, framing: Framing | str | None = None, *,
                compression: Compression | str | None = None,
                chunk_size: int = DEFAULT_CHUNK_SIZE,
                max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
                check_crc: bool = True) -> Iterator[bytes]:
        """Yield framed items from every stream of this epoch, in order.

        ``framing`` defaults to RecordIO when the channel's ``RecordWrapperType`` is RecordIO,
        else raw chunks; ``compression`` defaults as described in the module docstring. Each
        File-mode file is framed on its own (a record never spans two files).
        """
        kind = framing if framing is not None else self.channel.default_framing
        comp = as_compression(compression) if compression is not None \
            else self.channel.default_compression
        for source, stream in self.streams():
            yield from frame(stream, kind, source=source, compression=comp,
                             chunk_size=chunk_size, max_line_length=max_line_length,
                             check_crc=check_crc)

    def record_views(self, *, compression: Compression | str | None = None
                     ) -> Iterator[memoryview]:
        """RecordIO records as zero-copy views (see :func:`.framing.recordio_views`)."""
        comp = as_compression(compression) if compression is not None \
            else self.channel.default_compression
        for source, stream in self.streams():
            yield from recordio_views(stream, source=source, compression=comp)

    def __iter__(self) -> Iterator[bytes]:
        return self.records()

    def close(self) -> None:
        """Stop reading. For Pipe, the writer sees a broken pipe and moves to the next epoch."""
        self._closed = True
        if self._current is not None:
            self._current.close()
        if self._pipe_stream is not None:
            self._pipe_stream.close()
        elif self._fifo is not None:
            self._fifo.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Epoch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Channel:
    """A named input channel; open epochs of it with :meth:`open_epoch`."""

    def __init__(self, config: ChannelConfig, layout: Layout, *,
                 open_timeout: float = DEFAULT_OPEN_TIMEOUT,
                 read_timeout: float = DEFAULT_READ_TIMEOUT,
                 include_hidden: bool = False) -> None:
        self.config = config
        self.layout = layout
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.include_hidden = include_hidden

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def mode(self) -> InputMode:
        return self.config.input_mode

    @property
    def directory(self) -> Path:
        """File / FastFile: the channel directory. Pipe: where the FIFOs appear."""
        if self.mode is InputMode.PIPE:
            return self.layout.input_data_dir
        return self.layout.channel_dir(self.name)

    @property
    def default_framing(self) -> Framing:
        return Framing.RECORDIO if self.config.record_wrapper is RecordWrapper.RECORDIO \
            else Framing.RAW

    @property
    def default_compression(self) -> Compression:
        return Compression.NONE if self.mode is InputMode.PIPE else self.config.compression

    def _counter_key(self) -> tuple[str, str]:
        return str(self.layout.input_data_dir.absolute()), self.name

    @property
    def next_epoch(self) -> int:
        """Pipe: the epoch the next :meth:`open_epoch` will open."""
        return _COUNTER.peek(self._counter_key())

    def seek_epoch(self, epoch: int) -> None:
        """Pipe: make the next :meth:`open_epoch` (in this whole process) open ``epoch``."""
        if epoch < 0:
            raise ValueError("epoch must be >= 0")
        _COUNTER.set(self._counter_key(), epoch)

    def open_epoch(self, epoch: int | None = None) -> Epoch:
        """Open the next epoch (or ``epoch``). Pipe: waits up to ``open_timeout`` for the FIFO."""
        if self.mode is not InputMode.PIPE:
            return Epoch(self, None, list_files(self.directory,
                                                include_hidden=self.include_hidden), None)
        if epoch is not None and epoch < 0:
            raise ValueError("epoch must be >= 0")
        key = self._counter_key()
        number = _COUNTER.claim(key, epoch)
        try:
            reader = FifoReader(self.layout.channel_fifo(self.name, number),
                                open_timeout=self.open_timeout, read_timeout=self.read_timeout)
        except BaseException:
            _COUNTER.release(key, number)
            raise
        return Epoch(self, number, None, reader)

    def records(self, framing: Framing | str | None = None, **options: Any) -> Iterator[bytes]:
        """Open the next epoch, yield its records, close it (also when the loop breaks)."""
        with self.open_epoch() as epoch:
            yield from epoch.records(framing, **options)


def open_channel(name: str, *, layout: Layout | None = None,
                 input_data_config: Mapping[str, Any] | ChannelConfig | None = None,
                 mode: InputMode | str | None = None, start_epoch: int | None = None,
                 open_timeout: float = DEFAULT_OPEN_TIMEOUT,
                 read_timeout: float = DEFAULT_READ_TIMEOUT,
                 include_hidden: bool = False) -> Channel:
    """Return channel ``name``, configured from ``inputdataconfig.json``.

    ``layout`` defaults to the one the environment names (read now, never at import).
    ``input_data_config`` may be the decoded document or a :class:`ChannelConfig`, to skip the
    file. ``mode`` overrides ``TrainingInputMode`` (and makes a missing config file acceptable).
    ``start_epoch`` resets this process's Pipe epoch counter for the channel.
    """
    check_channel_name(name)
    if layout is None:
        from toolkit.settings import Settings  # read the environment on call

        layout = Settings.from_environ().layout
    forced = None if mode is None else _as_mode(mode)
    if isinstance(input_data_config, ChannelConfig):
        config = input_data_config
    elif input_data_config is not None:
        config = parse_channel_config(input_data_config, name, source="input_data_config")
    elif forced is not None and not layout.input_data_config_file.exists():
        config = ChannelConfig(name=name)
    else:
        config = load_channel_config(layout.input_data_config_file, name)
    if forced is not None:
        config = ChannelConfig(name=config.name, input_mode=forced,
                               record_wrapper=config.record_wrapper,
                               compression=config.compression, content_type=config.content_type)
    channel = Channel(config, layout, open_timeout=open_timeout, read_timeout=read_timeout,
                      include_hidden=include_hidden)
    if start_epoch is not None:
        channel.seek_epoch(start_epoch)
    return channel


def _as_mode(mode: InputMode | str) -> InputMode:
    if isinstance(mode, InputMode):
        return mode
    for member in InputMode:
        if str(mode).lower() == member.value.lower():
            return member
    raise ValueError(f"unknown input mode {mode!r} (one of: File, Pipe, FastFile)")
