"""Lay out one host's ``/opt/ml`` tree for a processing job: the two config files, the inputs
(copied in for File mode; Pipe inputs are fed while the job runs) and the empty output
directories.

``processingjobconfig.json`` is the job as DescribeProcessingJob shows it (what the service
writes), with each LocalPath as the host's program sees it (:meth:`Backend.path_seen_by
<local_mode.cluster.Backend.path_seen_by>`: itself in a container, its place in the host's tree
for a process). Pipe inputs stream into ``<LocalPath>/<InputName>_0``, ``_1``, ... as training
channels do, one FIFO per pass.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from local_mode.cluster import Backend, Host, host_path
from local_mode.cluster.staging import pipe_feeder, stage_objects
from local_mode.cluster.tree import (
    READABLE_DIR_MODE,
    WRITABLE_DIR_MODE,
    make_dir,
    resource_config,
    write_readable_json,
)
from local_mode.processing.spec import ProcessingInputSpec, ProcessingJobSpec

CONFIG_MEMBERS = ("ProcessingJobArn", "ProcessingJobName", "AppSpecification", "Environment",
                  "ProcessingInputs", "ProcessingOutputConfig", "ProcessingResources",
                  "RoleArn", "StoppingCondition", "NetworkConfig", "ExperimentConfig")
"""What ``processingjobconfig.json`` holds: the job's description minus its status."""


def job_config(description: Mapping[str, Any], host: Host, backend: Backend) -> dict[str, Any]:
    """``processingjobconfig.json`` for ``host``."""
    config = {k: copy.deepcopy(description[k]) for k in CONFIG_MEMBERS if k in description}
    for entry in config.get("ProcessingInputs") or []:
        source = entry.get("S3Input") or {}
        if source.get("LocalPath"):
            source["LocalPath"] = backend.path_seen_by(host, source["LocalPath"])
    for entry in (config.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
        target = entry.get("S3Output") or {}
        if target.get("LocalPath"):
            target["LocalPath"] = backend.path_seen_by(host, target["LocalPath"])
    return config


def write_config(spec: ProcessingJobSpec, description: Mapping[str, Any], host: Host,
                 hosts: Sequence[str], backend: Backend) -> None:
    """The config files, and every directory the program reads or writes, with modes that let
    whatever user the image runs as do so."""
    layout = host.layout
    make_dir(layout.config_dir, READABLE_DIR_MODE)
    write_readable_json(layout.processing_job_config_file, job_config(description, host, backend))
    write_readable_json(layout.processing_resource_config_file,
                        resource_config(host.name, hosts, spec.instance_type,
                                        backend.network_interface))
    make_dir(layout.processing_dir, READABLE_DIR_MODE)
    make_dir(layout.output_dir, WRITABLE_DIR_MODE)
    for path in spec.local_paths:
        # writable: on the service these are plain directories on the instance's volume
        make_dir(host_path(host, path), WRITABLE_DIR_MODE)


def stage_input(entry: ProcessingInputSpec, host: Host, environ: Mapping[str, str],
                progress: Callable[[int], None] | None = None) -> int:
    """Copy this host's share of a File-mode input into its LocalPath; bytes copied. Its
    directories are writable by any user (on the service they are plain directories of the
    instance's volume, where a program may write scratch files next to its input)."""
    return stage_objects(entry.uri, entry.data_type, entry.distribution, host,
                         host_path(host, entry.local_path), environ, progress=progress,
                         dir_mode=WRITABLE_DIR_MODE)


def input_feeder(entry: ProcessingInputSpec, host: Host, environ: Mapping[str, str],
                 reader_timeout: float) -> Any:
    """The feeder of a Pipe-mode input (not yet started)."""
    return pipe_feeder(entry.uri, entry.data_type, entry.distribution, host,
                       host_path(host, entry.local_path), entry.name, environ,
                       reader_timeout=reader_timeout, compression=entry.compression)
