"""Input data on a host: copied in before the program starts (File) or streamed into FIFOs while
it runs (Pipe), each host taking its share when the data is sharded.

Training channels and processing inputs are the same thing to a host: a source of objects (an
``s3://`` or ``file://`` prefix, or a manifest), a distribution across the job's hosts and a
directory. Only where the directory is and what the FIFOs are called differ, and the callers say.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from local_mode.cluster import Host
from local_mode.cluster.tree import READABLE_DIR_MODE, READABLE_FILE_MODE, make_dir, place
from local_mode.storage import ManifestSource, open_prefix, relative_keys
from toolkit.channels.plan import Distribution, iter_epoch_order
from toolkit.channels.sources import ObjectSource, iter_objects

PIPE_EPOCHS = 1_000_000
"""The service keeps making FIFOs for as long as the program reads them."""


def object_source(uri: str, data_type: str, environ: Mapping[str, str]) -> ObjectSource:
    """The objects behind ``uri``: a prefix, or the keys a manifest lists."""
    if data_type == "ManifestFile":
        return ManifestSource(uri, environ)
    return open_prefix(uri, environ)


COPY_BUFFER = 1 << 20


def _copy_object(source: ObjectSource, key: str, target: Path, buffer: bytearray) -> int:
    """Copy one object (its directories exist) through ``buffer``, reused for every object:
    a fresh 1 MiB read per small object is an allocation (and often an mmap) each time.
    Readable by any user; bytes copied."""
    view = memoryview(buffer)
    total = 0
    with source.open_object(key) as reader, target.open("wb") as writer:
        readinto = getattr(reader, "readinto", None)
        if readinto is None:
            shutil.copyfileobj(reader, writer, len(buffer))
        else:
            while count := readinto(view):
                writer.write(view[:count])
                total += count
    target.chmod(READABLE_FILE_MODE)
    return total if readinto is not None else target.stat().st_size


def stage_objects(uri: str, data_type: str, distribution: str, host: Host, target_dir: Path,
                  environ: Mapping[str, str], *, shuffle_seed: int | None = None,
                  progress: Callable[[int], None] | None = None,
                  dir_mode: int = READABLE_DIR_MODE) -> int:
    """Copy this host's share of the objects under ``uri`` into ``target_dir``, keeping their
    paths relative to the prefix (a manifest's keys as listed), with directories of
    ``dir_mode``; bytes copied."""
    source = object_source(uri, data_type, environ)
    # One pass, listed as it goes: memory stays that of a directory's (or an S3 page's) listing
    # however many objects there are, unless a shuffle needs them all first.
    objects = iter_epoch_order(iter_objects(source), 0, seed=shuffle_seed,
                               distribution=Distribution(distribution), host_index=host.index,
                               host_count=host.count)
    make_dir(target_dir, dir_mode)
    buffer = bytearray(COPY_BUFFER)
    total = 0
    to_relative = (lambda key: key) if data_type == "ManifestFile" else relative_keys(uri)
    for info in objects:
        key = to_relative(info.key)
        target = place(target_dir, key, dir_mode)
        total += _copy_object(source, info.key, target, buffer)
        if progress is not None:
            progress(total)
    return total


def pipe_feeder(uri: str, data_type: str, distribution: str, host: Host, directory: Path,
                name: str, environ: Mapping[str, str], *, reader_timeout: float,
                compression: str = "None", record_wrapper: str = "None",
                shuffle_seed: int | None = None,
                attribute_names: tuple[str, ...] | None = None) -> Any:
    """A feeder (not yet started) that streams this host's share into ``<directory>/<name>_0``,
    ``<name>_1``, ... while the program reads them."""
    from toolkit.channels.feeder import PipeFeeder

    return PipeFeeder(object_source(uri, data_type, environ), directory, name,
                      epochs=PIPE_EPOCHS, record_wrapper=record_wrapper,
                      compression=compression, distribution=distribution,
                      host_index=host.index, host_count=host.count,
                      shuffle_seed=shuffle_seed, attribute_names=attribute_names,
                      reader_timeout=reader_timeout)
