"""Lay out one host's /opt/ml tree for a job: the config files the container reads, and data.

File mode copies the host's objects in; FastFile does the same and then makes them read-only (the
Docker backend additionally mounts the channel read-only); Pipe mode returns a feeder per channel
that streams into ``<channel>_<epoch>`` FIFOs while the job runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_mode.storage import ManifestSource, open_prefix, relative_key
from local_mode.training.spec import ChannelSpec, TrainingJobSpec
from local_mode.training.tree import (
    READABLE_DIR_MODE,
    READABLE_FILE_MODE,
    WRITABLE_DIR_MODE,
    make_dir,
    place,
)
from toolkit.channels.plan import Distribution, epoch_order
from toolkit.channels.sources import ObjectSource
from toolkit.layout import DEFAULT_ROOT, Layout

log = logging.getLogger(__name__)

GROUP_NAME = "homogeneousCluster"
CONTAINER_ROOT = str(DEFAULT_ROOT)
"""Where a container sees the tree (relative paths of the host tree map onto it)."""
PIPE_EPOCHS = 1_000_000  # the service keeps making FIFOs for as long as the job reads them


@dataclass(frozen=True)
class Host:
    name: str
    index: int
    count: int
    layout: Layout


def container_checkpoint_path(spec: TrainingJobSpec) -> str:
    return spec.checkpoint_local_path or str(Layout().default_checkpoint_dir)


def host_checkpoint_dir(spec: TrainingJobSpec, host: Host) -> Path:
    """Where the host's checkpoints are on *this* machine (below its relocated root)."""
    path = container_checkpoint_path(spec)
    if path == CONTAINER_ROOT or path.startswith(CONTAINER_ROOT + "/"):
        return host.layout.root / path[len(CONTAINER_ROOT) + 1:]
    return host.layout.root / "_abs" / path.lstrip("/")


def write_config(spec: TrainingJobSpec, host: Host, hosts: Sequence[str], interface: str,
                 checkpoint_local_path: str | None) -> None:
    """Write the four config files the container reads."""
    layout = host.layout
    for directory in (layout.input_dir, layout.input_config_dir, layout.input_data_dir):
        make_dir(directory, READABLE_DIR_MODE)

    def dump(path: Path, data: Any) -> None:
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
        path.chmod(READABLE_FILE_MODE)

    dump(layout.hyperparameters_file, dict(spec.hyperparameters))
    dump(layout.input_data_config_file, {c.name: c.config_entry() for c in spec.channels})
    dump(layout.resource_config_file, {
        "current_host": host.name, "current_instance_type": spec.instance_type,
        "current_group_name": GROUP_NAME, "hosts": list(hosts),
        "network_interface_name": interface,
        "instance_groups": [{"instance_group_name": GROUP_NAME,
                             "instance_type": spec.instance_type, "hosts": list(hosts)}]})
    if spec.checkpoint_uri or spec.checkpoint_local_path:
        config: dict[str, str] = {"LocalPath": checkpoint_local_path or
                                  container_checkpoint_path(spec)}
        if spec.checkpoint_uri:
            config["S3Uri"] = spec.checkpoint_uri
        dump(layout.checkpoint_config_file, config)
    layout.code_dir.mkdir(parents=True, exist_ok=True)
    writable = [layout.model_dir, layout.output_dir, layout.output_data_dir]
    if spec.checkpoint_uri or spec.checkpoint_local_path:
        writable.append(host_checkpoint_dir(spec, host))
    for directory in writable:
        make_dir(directory, WRITABLE_DIR_MODE)


def channel_source(channel: ChannelSpec, environ: Mapping[str, str]) -> ObjectSource:
    if channel.data_type == "ManifestFile":
        return ManifestSource(channel.uri, environ)
    return open_prefix(channel.uri, environ)


def _copy_object(source: ObjectSource, key: str, target: Path) -> int:
    """Copy one object (its directories exist); readable by any user."""
    with source.open_object(key) as reader, target.open("wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
    target.chmod(READABLE_FILE_MODE)
    return target.stat().st_size


def stage_files(channel: ChannelSpec, host: Host, environ: Mapping[str, str],
                progress: Callable[[str, int], None] | None = None) -> int:
    """Copy this host's share of the channel into ``input/data/<channel>/``; bytes copied."""
    source = channel_source(channel, environ)
    objects = epoch_order(source.list_objects(), 0, seed=channel.shuffle_seed,
                          distribution=Distribution(channel.distribution), host_index=host.index,
                          host_count=host.count)
    target_dir = host.layout.channel_dir(channel.name)
    make_dir(target_dir, READABLE_DIR_MODE)
    total = 0
    for info in objects:
        key = info.key if channel.data_type == "ManifestFile" else relative_key(info.key,
                                                                                channel.uri)
        target = place(target_dir, key, READABLE_DIR_MODE)
        total += _copy_object(source, info.key, target)
        if progress is not None:
            progress(channel.name, total)
    if channel.input_mode == "FastFile":
        make_read_only(target_dir)
    return total


def make_read_only(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.chmod(dirpath, 0o555)  # noqa: S103 - FastFile input: readable by the image's user, whoever it is


def make_removable(root: Path) -> None:
    """Undo read-only modes (FastFile, files a container wrote) so the tree can be deleted."""
    if not root.exists():
        return
    for dirpath, _, _ in os.walk(root):
        with contextlib.suppress(OSError):  # what we cannot change, rmtree reports
            os.chmod(dirpath, 0o755)  # noqa: S103 - only so that it can be deleted


def pipe_feeder(channel: ChannelSpec, host: Host, environ: Mapping[str, str],
                reader_timeout: float) -> Any:
    from toolkit.channels.feeder import PipeFeeder

    return PipeFeeder(channel_source(channel, environ), host.layout.input_data_dir, channel.name,
                      epochs=PIPE_EPOCHS, record_wrapper=channel.record_wrapper,
                      compression=channel.compression, distribution=channel.distribution,
                      host_index=host.index, host_count=host.count,
                      shuffle_seed=channel.shuffle_seed,
                      attribute_names=(channel.attribute_names or None)
                      if channel.data_type == "AugmentedManifestFile" else None,
                      reader_timeout=reader_timeout)
