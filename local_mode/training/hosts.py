"""Lay out one host's /opt/ml tree for a training job: the config files the container reads, and
its channels.

File mode copies the host's objects in; FastFile does the same and then makes them read-only (the
Docker backend additionally mounts the channel read-only); Pipe mode returns a feeder per channel
that streams into ``<channel>_<epoch>`` FIFOs while the job runs (:mod:`local_mode.cluster.staging`
does the copying and the streaming, for processing inputs too).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from local_mode.cluster import Host, host_path
from local_mode.cluster.staging import pipe_feeder as _pipe_feeder
from local_mode.cluster.staging import stage_objects
from local_mode.cluster.tree import (
    READABLE_DIR_MODE,
    READABLE_FILE_MODE,
    WRITABLE_DIR_MODE,
    make_dir,
    make_read_only,
    make_removable,
    resource_config,
    write_readable_json,
)
from local_mode.training.spec import CODE_SOURCE_DIR, ChannelSpec, TrainingJobSpec
from toolkit.layout import Layout

__all__ = ["Host", "container_checkpoint_path", "host_checkpoint_dir", "make_removable",
           "pipe_feeder", "stage_code", "stage_files", "write_config"]


def container_checkpoint_path(spec: TrainingJobSpec) -> str:
    return spec.checkpoint_local_path or str(Layout().default_checkpoint_dir)


def host_checkpoint_dir(spec: TrainingJobSpec, host: Host) -> Path:
    """Where the host's checkpoints are on *this* machine (below its relocated root)."""
    return host_path(host, container_checkpoint_path(spec))


def write_config(spec: TrainingJobSpec, host: Host, hosts: Sequence[str], interface: str,
                 checkpoint_local_path: str | None) -> None:
    """Write the four config files the container reads."""
    layout = host.layout
    for directory in (layout.input_dir, layout.input_config_dir, layout.input_data_dir):
        make_dir(directory, READABLE_DIR_MODE)
    write_readable_json(layout.hyperparameters_file, dict(spec.hyperparameters))
    write_readable_json(layout.input_data_config_file,
                        {c.name: c.config_entry() for c in spec.channels})
    write_readable_json(layout.resource_config_file,
                        resource_config(host.name, hosts, spec.instance_type, interface))
    if spec.checkpoint_uri or spec.checkpoint_local_path:
        config: dict[str, str] = {"LocalPath": checkpoint_local_path or
                                  container_checkpoint_path(spec)}
        if spec.checkpoint_uri:
            config["S3Uri"] = spec.checkpoint_uri
        write_readable_json(layout.checkpoint_config_file, config)
    layout.code_dir.mkdir(parents=True, exist_ok=True)
    stage_code(spec, host)
    writable = [layout.model_dir, layout.output_dir, layout.output_data_dir]
    if spec.checkpoint_uri or spec.checkpoint_local_path:
        writable.append(host_checkpoint_dir(spec, host))
    for directory in writable:
        make_dir(directory, WRITABLE_DIR_MODE)


def stage_code(spec: TrainingJobSpec, host: Host) -> None:
    """Lay out ``CODE_SOURCE_DIR`` of a host whose container gets local code
    (:attr:`TrainingJobSpec.code_mounts`): a copy of each tarball (a file cannot be mounted on
    its own here) and an empty mount point for each directory, made here so that the engine
    does not make them as root. Nothing when there is no such code."""
    if not spec.code_mounts:
        return
    directory = host_path(host, CODE_SOURCE_DIR)
    make_dir(directory, READABLE_DIR_MODE)
    for code in spec.code_mounts:
        place = directory / code.name
        if code.source.is_dir():
            make_dir(place, READABLE_DIR_MODE)
        else:  # again on a restart: replace the copy
            place.unlink(missing_ok=True)
            shutil.copyfile(code.source, place)
            place.chmod(READABLE_FILE_MODE)


def stage_files(channel: ChannelSpec, host: Host, environ: Mapping[str, str],
                progress: Callable[[str, int], None] | None = None) -> int:
    """Copy this host's share of the channel into ``input/data/<channel>/``; bytes copied."""
    target_dir = host.layout.channel_dir(channel.name)
    total = stage_objects(channel.uri, channel.data_type, channel.distribution, host, target_dir,
                          environ, shuffle_seed=channel.shuffle_seed,
                          progress=None if progress is None
                          else (lambda copied: progress(channel.name, copied)))
    if channel.input_mode == "FastFile":
        make_read_only(target_dir)
    return total


def pipe_feeder(channel: ChannelSpec, host: Host, environ: Mapping[str, str],
                reader_timeout: float) -> Any:
    return _pipe_feeder(channel.uri, channel.data_type, channel.distribution, host,
                        host.layout.input_data_dir, channel.name, environ,
                        reader_timeout=reader_timeout, compression=channel.compression,
                        record_wrapper=channel.record_wrapper, shuffle_seed=channel.shuffle_seed,
                        attribute_names=(channel.attribute_names or None)
                        if channel.data_type == "AugmentedManifestFile" else None)
