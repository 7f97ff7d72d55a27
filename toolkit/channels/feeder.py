"""The host side of Pipe mode: stream a channel's objects into ``<channel>_<epoch>`` FIFOs.

Local mode runs a :class:`PipeFeeder` per Pipe channel next to the training container. For each
epoch it makes the FIFO, waits (bounded) for the reader to open it, streams the host's share of
objects in the epoch's order, closes it and removes it — then the next epoch. A reader that closes
early only ends that epoch (``EPIPE`` is expected, not an error); a reader that never opens costs
one ``open_timeout`` and a warning; :meth:`PipeFeeder.stop` interrupts any wait within a fraction
of a second and removes every FIFO the feeder made.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import gzip
import io
import json
import logging
import mmap
import os
import select
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from toolkit.channels.config import Compression, RecordWrapper, check_channel_name
from toolkit.channels.errors import ChannelError
from toolkit.channels.fifo import set_pipe_size
from toolkit.channels.framing import as_compression
from toolkit.channels.plan import Distribution, epoch_order
from toolkit.channels.sources import ObjectInfo, ObjectSource
from toolkit.formats.errors import FormatError

log = logging.getLogger(__name__)

DEFAULT_READER_TIMEOUT = 300.0
"""Seconds to wait for a reader to open an epoch's FIFO before giving that epoch up."""
DEFAULT_WRITE_TIMEOUT = 3600.0
"""Seconds a write may stay blocked on a full pipe (the reader is busy training) before the
epoch is abandoned. Generous on purpose: a slow training step is not a failure."""
COPY_CHUNK = 1 << 20
SENDFILE_CHUNK = 1 << 24
"""Most bytes one ``sendfile`` call is asked for (it moves at most a pipe's worth anyway)."""
FIFO_MODE = 0o644
"""Pipe FIFOs: written by the feeder, read by a program that may run as any user."""
SPLICE_MIN_SIZE = 1 << 17
"""Objects from this size up go file -> pipe with ``sendfile`` (no user-space copy). Smaller
ones are copied and their RecordIO framing coalesced into large writes, which costs less than
the extra system calls (``fstat``, ``mmap``, a header write) of the splice path."""
_MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
_SLICE = 0.1  # how often blocked waits look at the stop flag
_OPEN_RETRY = 0.002
"""Polling interval for a reader to open the FIFO. Kept tiny on purpose: one failed ``open`` is
a microsecond, while every millisecond here is added to each epoch's start."""


class _Stopped(Exception):
    """stop() was called: unwind the current epoch."""


class _Shrunk(OSError):
    """A source file ended before the size it had when its sending began."""


class EpochStatus(str, enum.Enum):
    COMPLETE = "complete"
    """Everything written and the FIFO closed: the reader saw EOF."""
    READER_CLOSED = "reader_closed"
    """The reader closed early (broken pipe); the rest of the epoch was dropped."""
    NO_READER = "no_reader"
    """Nobody opened the FIFO within ``reader_timeout``."""
    WRITE_TIMEOUT = "write_timeout"
    """The reader stopped reading for longer than ``write_timeout``."""
    STOPPED = "stopped"
    FAILED = "failed"
    """A source object could not be read or a manifest line was malformed (see ``error``)."""


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    status: EpochStatus
    bytes_written: int
    objects: int


@dataclass(frozen=True)
class _ManifestLine:
    manifest: str
    line: int
    entry: dict[str, Any]


@dataclass
class _Progress:
    bytes_written: int = 0
    objects: int = 0


class _PipeWriter(io.RawIOBase):
    """Non-blocking writes to a FIFO, waiting with ``poll`` in short slices (stop-aware)."""

    def __init__(self, fd: int, path: Path, stop: threading.Event, write_timeout: float,
                 progress: _Progress) -> None:
        super().__init__()
        self._fd = fd
        self._path = path
        self._stop = stop
        self._timeout = write_timeout
        self._progress = progress
        self._poller = select.poll()
        self._poller.register(fd, select.POLLOUT | select.POLLERR)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if not len(view):
            return 0
        return self._retry(os.write, self._fd, view)

    def write_all(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            view = view[self.write(view):]

    def send_file(self, in_fd: int, offset: int, count: int) -> None:
        """Copy ``count`` bytes of the regular file ``in_fd`` from ``offset`` into the pipe.

        ``sendfile`` into a pipe is a kernel-side splice: the page cache is handed to the pipe
        without passing through a user-space buffer, which is what keeps the feeder's CPU per
        byte close to ``cat``'s. Raises :class:`_Shrunk` if the file ends early (it was
        truncated while being sent): the record header already promised ``count`` bytes.
        """
        end = offset + count
        while offset < end:
            sent = self._retry(os.sendfile, self._fd, in_fd, offset, end - offset)
            if not sent:
                raise _Shrunk(end - offset)
            offset += sent

    def send_rest(self, in_fd: int) -> None:
        """``sendfile`` the regular file ``in_fd`` from its start to wherever it ends."""
        offset = 0
        while sent := self._retry(os.sendfile, self._fd, in_fd, offset, SENDFILE_CHUNK):
            offset += sent

    def _retry(self, call: Any, *args: Any) -> int:
        """Run a non-blocking write-like ``call``; wait (stop-aware, bounded) while the pipe
        is full. Counts the bytes moved."""
        deadline: float | None = None
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                count: int = call(*args)
            except BlockingIOError:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._timeout
                elif now >= deadline:
                    raise TimeoutError(f"{self._path}: reader did not read for "
                                       f"{self._timeout:g} s") from None
                self._poller.poll(_SLICE * 1000)
                continue
            except InterruptedError:
                continue
            self._progress.bytes_written += count
            return count


class _Batcher:
    """Coalesce the small writes of record framing (header, padding) into large pipe writes.

    Unlike :class:`io.BufferedWriter` it never flushes from a finaliser, so an epoch abandoned
    on a broken pipe leaves nothing to raise later.
    """

    def __init__(self, raw: _PipeWriter, limit: int = COPY_CHUNK) -> None:
        self._raw = raw
        self._limit = limit
        self._pending = bytearray()

    def write(self, data: Any) -> int:
        size = len(memoryview(data).cast("B"))
        if size >= self._limit:
            self.flush()
            self._raw.write_all(data)
        else:
            self._pending += data
            if len(self._pending) >= self._limit:
                self.flush()
        return size

    def flush(self) -> None:
        if self._pending:
            self._raw.write_all(self._pending)
            self._pending.clear()


class _GzipOwning(gzip.GzipFile):
    """A gzip reader that also closes the compressed stream it reads from."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(fileobj=stream, mode="rb")
        self._owned = stream

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._owned.close()


class PipeFeeder:
    """Feed one channel's objects to one host's Pipe-mode FIFOs, in a background thread.

    ``data_dir`` is that host's ``/opt/ml/input/data``. ``attribute_names`` switches to
    AugmentedManifestFile: the source's objects are JSON Lines manifests, each line's named
    attributes are sent in order (``*-ref`` ones as the referenced object's bytes), and sharding
    and shuffling apply to manifest lines. ``compression=Gzip`` decompresses each listed object
    while streaming it; ``record_wrapper=RecordIO`` sends each object (or attribute) as one
    RecordIO record (held in memory while it is framed, as a record needs its length up front).
    """

    def __init__(self, source: ObjectSource, data_dir: str | Path, channel: str, *,
                 epochs: int = 1, start_epoch: int = 0,
                 record_wrapper: RecordWrapper | str = RecordWrapper.NONE,
                 compression: Compression | str | None = Compression.NONE,
                 distribution: Distribution | str = Distribution.FULLY_REPLICATED,
                 host_index: int = 0, host_count: int = 1, shuffle_seed: int | None = None,
                 attribute_names: Sequence[str] | None = None,
                 reader_timeout: float = DEFAULT_READER_TIMEOUT,
                 write_timeout: float = DEFAULT_WRITE_TIMEOUT) -> None:
        check_channel_name(channel)
        if epochs < 0 or start_epoch < 0:
            raise ValueError("epochs and start_epoch must be >= 0")
        if host_count < 1 or not 0 <= host_index < host_count:
            raise ValueError(f"host_index must be in [0, {host_count}), got {host_index}")
        if attribute_names is not None and not attribute_names:
            raise ValueError("attribute_names must name at least one attribute")
        self.source = source
        self.data_dir = Path(data_dir)
        self.channel = channel
        self.epochs = epochs
        self.start_epoch = start_epoch
        self.record_wrapper = RecordWrapper(record_wrapper)
        self.compression = as_compression(compression)
        self.distribution = Distribution(distribution)
        self.host_index = host_index
        self.host_count = host_count
        self.shuffle_seed = shuffle_seed
        self.attribute_names = None if attribute_names is None else tuple(attribute_names)
        self.reader_timeout = reader_timeout
        self.write_timeout = write_timeout
        self.results: list[EpochResult] = []
        """One entry per epoch attempted, in order."""
        self.error: BaseException | None = None
        """Set when feeding failed (bad manifest line, unreadable object); :meth:`wait` raises
        it."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._made: set[Path] = set()
        self._made_lock = threading.Lock()
        self._copy_buffer = bytearray(COPY_CHUNK)
        self._payload_buffer = bytearray(COPY_CHUNK)

    # -- lifecycle ---------------------------------------------------------------------------
    def fifo_path(self, epoch: int) -> Path:
        return self.data_dir / f"{self.channel}_{epoch}"

    def start(self) -> PipeFeeder:
        if self._thread is not None:
            raise RuntimeError("feeder already started")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"pipe-feeder-{self.channel}",
                                        daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every epoch to finish; ``False`` on timeout. Re-raises a feeding error."""
        if self._thread is None:
            raise RuntimeError("feeder not started")
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        if self.error is not None:
            raise self.error
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Interrupt any wait or write, end the thread, remove the FIFOs made. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # a source read is stuck in a blocking call
                log.warning("pipe feeder for %s did not stop within %g s", self.channel, timeout)
        self._remove_fifos()

    def __enter__(self) -> PipeFeeder:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the thread --------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self.record_wrapper is RecordWrapper.RECORDIO:
                # Import the writer (and numpy) now, not after the first reader has connected:
                # that would add a fraction of a second to epoch 0 while the reader waits.
                import toolkit.formats.recordio  # noqa: F401
            units = self._units()
            for epoch in range(self.start_epoch, self.start_epoch + self.epochs):
                if self._stop.is_set():
                    break
                order = epoch_order(units, epoch, seed=self.shuffle_seed,
                                    distribution=self.distribution, host_index=self.host_index,
                                    host_count=self.host_count)
                result = self._feed_epoch(epoch, order)
                self.results.append(result)
                if result.status in (EpochStatus.STOPPED, EpochStatus.FAILED):
                    break
        except BaseException as exc:  # noqa: BLE001 - reported through wait()
            self.error = exc
            log.error("pipe feeder for %s failed: %s", self.channel, exc)
        finally:
            self._remove_fifos()

    def _units(self) -> list[Any]:
        objects = list(self.source.list_objects())
        if self.attribute_names is None:
            return objects
        return [line for info in objects for line in self._manifest_lines(info)]

    def _manifest_lines(self, info: ObjectInfo) -> Iterator[_ManifestLine]:
        with self._open(info.key) as stream:
            for number, raw in enumerate(stream, start=1):
                if not raw.strip():
                    continue
                try:
                    entry = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise FormatError(f"invalid JSON: {exc}", source=info.key,
                                      line=number) from None
                if not isinstance(entry, dict):
                    raise FormatError("a manifest line must be a JSON object", source=info.key,
                                      line=number)
                for name in self.attribute_names or ():
                    if name not in entry:
                        raise FormatError(f"missing attribute {name!r}", source=info.key,
                                          line=number)
                yield _ManifestLine(info.key, number, entry)

    def _open(self, key: str) -> BinaryIO:
        stream = self.source.open_object(key)
        if self.compression is Compression.GZIP:
            return _GzipOwning(stream)  # type: ignore[return-value]
        return stream

    def _make_fifo(self, path: Path) -> None:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISFIFO(mode):
                raise ChannelError("exists and is not a FIFO; refusing to replace it", path=path)
            path.unlink()  # a stale FIFO from an earlier run would have no writer
        os.mkfifo(path)
        # Readable by anyone: the program reading it runs as the image's USER, which need not
        # be the feeder's user (root, or the runner's). chmod, as mkfifo's mode is cut by umask.
        os.chmod(path, FIFO_MODE)
        with self._made_lock:
            self._made.add(path)

    def _remove(self, path: Path) -> None:
        with self._made_lock:
            self._made.discard(path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def _remove_fifos(self) -> None:
        with self._made_lock:
            made, self._made = self._made, set()
        for path in made:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _open_writer(self, path: Path) -> int | None:
        """Open ``path`` for writing once a reader has it open; ``None`` on timeout or stop."""
        deadline = time.monotonic() + self.reader_timeout
        while not self._stop.is_set():
            try:
                return os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader has it open yet
                    raise ChannelError(f"cannot open FIFO for writing: {exc.strerror}",
                                       path=path) from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._stop.wait(min(_OPEN_RETRY, remaining))
        return None

    def _feed_epoch(self, epoch: int, order: list[Any]) -> EpochResult:
        path = self.fifo_path(epoch)
        self._make_fifo(path)
        progress = _Progress()
        status = EpochStatus.COMPLETE
        try:
            fd = self._open_writer(path)
            if fd is None:
                if self._stop.is_set():
                    return EpochResult(epoch, EpochStatus.STOPPED, 0, 0)
                log.warning("no reader opened %s within %g s; skipping epoch %d", path,
                            self.reader_timeout, epoch)
                return EpochResult(epoch, EpochStatus.NO_READER, 0, 0)
            set_pipe_size(fd)
            raw = _PipeWriter(fd, path, self._stop, self.write_timeout, progress)
            try:
                self._write_units(raw, order, progress)
            except BrokenPipeError:
                status = EpochStatus.READER_CLOSED
                log.info("reader closed %s early; moving on", path)
            except _Stopped:
                status = EpochStatus.STOPPED
            except TimeoutError as exc:
                status = EpochStatus.WRITE_TIMEOUT
                log.warning("%s; abandoning epoch %d", exc, epoch)
            except BaseException as exc:  # noqa: BLE001 - kept as the epoch's error, re-raised by wait()
                self.error = exc
                status = EpochStatus.FAILED
                log.error("feeding %s failed: %s", path, exc)
            finally:
                os.close(fd)
            return EpochResult(epoch, status, progress.bytes_written, progress.objects)
        finally:
            self._remove(path)  # the reader keeps its open descriptor; the name goes

    def _write_units(self, raw: _PipeWriter, order: list[Any], progress: _Progress) -> None:
        if self.record_wrapper is RecordWrapper.RECORDIO:
            from toolkit.formats.recordio import write_record  # lazy

            batcher = _Batcher(raw)
            for stream, size_hint in self._streams(order, progress):
                with stream:
                    if not self._splice_record(stream, raw, batcher):
                        write_record(batcher, self._read_whole(stream, size_hint))
            batcher.flush()
            return
        for stream, _ in self._streams(order, progress):
            with stream:
                if not self._splice_file(stream, raw):
                    self._copy(stream, raw)

    def _splice_record(self, stream: BinaryIO, raw: _PipeWriter, batcher: _Batcher) -> bool:
        """Send a large regular file as one RecordIO record without copying it through Python.

        The dmlc split only matters when the magic word sits at an aligned offset of the
        payload; a read-only mapping of the file is scanned for that (no copy), and only a file
        that needs no split is sent as header + ``sendfile`` + padding. Returns ``False`` (the
        caller copies the object instead) for small or non-regular files and for the rare file
        that must be split.
        """
        from toolkit.formats import recordio  # lazy; _run imported it already

        fd, size = _spliceable(stream, self.compression)
        if fd is None:
            return False
        with mmap.mmap(fd, size, prot=mmap.PROT_READ, flags=_MAP_FLAGS) as mapped:
            if recordio.needs_split(mapped):
                return False
        batcher.write(recordio.record_header(size))
        batcher.flush()
        try:
            raw.send_file(fd, 0, size)
        except _Shrunk as exc:
            raise ChannelError(f"object shrank by {exc.args[0]} bytes while being sent",
                               path=getattr(stream, "name", None)) from None
        batcher.write(recordio.record_padding(size))
        return True

    @staticmethod
    def _splice_file(stream: BinaryIO, raw: _PipeWriter) -> bool:
        """No wrapping: ``sendfile`` a large regular file to its end (as ``_copy`` would)."""
        fd, _ = _spliceable(stream, Compression.NONE)
        if fd is None:
            return False
        raw.send_rest(fd)
        return True

    def _read_whole(self, stream: BinaryIO, size_hint: int) -> memoryview:
        """The whole stream as a view of one reused buffer, valid until the next call: no
        allocation per object on the copy path."""
        buf = self._payload_buffer
        if len(buf) <= size_hint:  # +1 so a correct hint ends in one short read, not a regrow
            buf = self._payload_buffer = bytearray(size_hint + 1)
        filled = 0
        readinto = getattr(stream, "readinto", None)
        while True:
            if filled == len(buf):
                grown = bytearray(2 * len(buf))
                grown[:filled] = buf
                buf = self._payload_buffer = grown
            if readinto is not None:
                count = readinto(memoryview(buf)[filled:])
            else:
                chunk = stream.read(len(buf) - filled)
                count = len(chunk)
                buf[filled:filled + count] = chunk
            if not count:
                return memoryview(buf)[:filled]
            filled += count

    def _streams(self, order: list[Any], progress: _Progress
                 ) -> Iterator[tuple[BinaryIO, int]]:
        """One ``(stream, size hint)`` per object, or per manifest attribute, in order."""
        for unit in order:
            if isinstance(unit, _ManifestLine):
                for name in self.attribute_names or ():
                    value = unit.entry[name]
                    if name.endswith("-ref"):
                        yield self._open_ref(unit, name), 0
                    else:
                        text = _attribute_text(value)
                        yield io.BytesIO(text), len(text)
            else:
                yield self._open(unit.key), unit.size
            progress.objects += 1

    def _open_ref(self, unit: _ManifestLine, name: str) -> BinaryIO:
        ref = unit.entry[name]
        if not isinstance(ref, str):
            raise FormatError(f"attribute {name!r} must be a string reference, got {ref!r}",
                              source=unit.manifest, line=unit.line)
        return self.source.open_reference(ref)

    def _copy(self, stream: BinaryIO, raw: _PipeWriter) -> None:
        buffer = self._copy_buffer
        view = memoryview(buffer)
        readinto = getattr(stream, "readinto", None)
        while True:
            if readinto is not None:
                count = readinto(buffer)
                if not count:
                    return
                raw.write_all(view[:count])
            else:
                chunk = stream.read(COPY_CHUNK)
                if not chunk:
                    return
                raw.write_all(chunk)


def _spliceable(stream: BinaryIO, compression: Compression) -> tuple[int | None, int]:
    """``(fd, size)`` when ``stream`` is an unread, uncompressed regular file of at least
    :data:`SPLICE_MIN_SIZE` bytes; ``(None, 0)`` otherwise.

    Only the stream types ``open()`` returns qualify: a wrapper with a ``fileno()`` (a gzip
    reader, say) would have its transformation bypassed by a kernel-side copy.
    """
    if compression is not Compression.NONE or type(stream) not in (io.BufferedReader, io.FileIO):
        return None, 0
    try:
        if stream.tell() != 0:
            return None, 0
        fd = stream.fileno()
        info = os.fstat(fd)
    except (OSError, ValueError):
        return None, 0
    if not stat.S_ISREG(info.st_mode) or info.st_size < SPLICE_MIN_SIZE:
        return None, 0
    return fd, info.st_size


def _attribute_text(value: Any) -> bytes:
    """A plain manifest attribute as sent: strings as-is, anything else as compact JSON."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
