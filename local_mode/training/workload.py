"""What a training job asks of its hosts (:class:`local_mode.cluster.Workload`): the image's
ENTRYPOINT with ``train``, the platform's parts of ``/opt/ml`` mounted, and on the process
backend ``optml train`` itself.

The command is the image's ENTRYPOINT with ``train``, or ``ContainerEntrypoint`` (which replaces
the ENTRYPOINT and, as in ``docker run --entrypoint``, drops the default argument) and/or
``ContainerArguments`` (which replace ``train``). A container sees ``/opt/ml/input`` (config files
and channel data; Pipe FIFOs live in ``input/data`` and are fed from this side),
``/opt/ml/model``, ``/opt/ml/output`` and, when the job configures checkpoints, the checkpoint
path; FastFile channels are mounted again read-only on top. Nothing else under ``/opt/ml`` is
covered, so what the image keeps there -- ``/opt/ml/code`` above all -- stays visible.

Code the job names on this machine (``sagemaker_submit_directory`` /
``SAGEMAKER_SUBMIT_DIRECTORY`` naming a local directory or tarball) is, for containers, mounted
read-only below ``/opt/ml/input/code-source`` (:func:`for_backend`), and the config files and the
environment name it there: a container cannot see this machine's paths. Not at ``/opt/ml/code``:
that would hide the image's own code, and a tarball must be extracted into a writable
``/opt/ml/code``. Read-only: the job must not change the user's working copy (a directory is
used in place), as the service's copy of it is never the user's. The process backend runs on
this machine and reads the paths as they are.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from local_mode.cluster import Backend, BindMount, Host, SpecWorkload, covered, host_path
from local_mode.training.hosts import container_checkpoint_path, host_checkpoint_dir
from local_mode.training.spec import CODE_SOURCE_DIR, CodeMount, TrainingJobSpec
from toolkit.layout import Layout

CONTAINER_LAYOUT = Layout()
"""The ``/opt/ml`` tree as a training container sees it."""


def platform_directories(layout: Layout) -> tuple[Path, ...]:
    """The parts of ``/opt/ml`` the platform owns in a training container (each is mounted)."""
    return layout.input_dir, layout.model_dir, layout.output_dir


def container_command(spec: TrainingJobSpec) -> tuple[list[str] | None, list[str]]:
    """``(entrypoint override or None, command)`` for the job: the image's ENTRYPOINT with
    ``train`` unless the job's AlgorithmSpecification overrides either."""
    if spec.entrypoint is not None:
        return list(spec.entrypoint), list(spec.arguments or ())
    return None, list(spec.arguments) if spec.arguments is not None else ["train"]


def for_backend(spec: TrainingJobSpec, backend: Backend) -> TrainingJobSpec:
    """``spec`` as the hosts of ``backend`` get it. Processes (the process backend) read this
    machine's paths as they are; containers get each local code source mounted
    (:attr:`TrainingJobSpec.code_mounts`) and the code members naming the mount, in the form
    the user gave (bare path or ``file://``, JSON-encoded or not)."""
    if backend.name == "process" or not spec.local_code:
        return spec
    mounts: dict[Path, CodeMount] = {}
    sections = {"HyperParameters": dict(spec.hyperparameters),
                "Environment": dict(spec.environment)}
    for code in spec.local_code:
        source = code.path.resolve()
        if source not in mounts:
            mounts[source] = CodeMount(source, _mount_name(source, {m.name for m in
                                                                     mounts.values()}))
        sections[code.section][code.key] = code.naming(mounts[source].target)
    return replace(spec, hyperparameters=sections["HyperParameters"],
                   environment=sections["Environment"], code_mounts=tuple(mounts.values()))


def _mount_name(source: Path, taken: set[str]) -> str:
    """The source's own name (tracebacks then read ``.../code-source/src/train.py``), made
    safe as one path component and unique among the job's code sources."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", source.name).lstrip(".") or "code"
    unique, number = name, 1
    while unique in taken:
        number += 1
        unique = f"{name}-{number}"
    return unique


def host_mounts(spec: TrainingJobSpec, host: Host) -> list[BindMount]:
    """The platform's directories, FastFile channels read-only, the checkpoint directory, the
    local code read-only.

    Never the whole ``/opt/ml``: that would hide what the image keeps there (its code).
    """
    mounts = [BindMount(source.resolve(), str(target)) for source, target in
              zip(platform_directories(host.layout), platform_directories(CONTAINER_LAYOUT),
                  strict=True)]
    for channel in spec.channels:
        if channel.input_mode == "FastFile":
            mounts.append(BindMount(host.layout.channel_dir(channel.name).resolve(),
                                    str(CONTAINER_LAYOUT.channel_dir(channel.name)),
                                    read_only=True))
    if spec.checkpoint_uri or spec.checkpoint_local_path:
        checkpoint = container_checkpoint_path(spec).rstrip("/") or "/"
        if not covered(mounts, checkpoint):
            mounts.append(BindMount(host_checkpoint_dir(spec, host).resolve(), checkpoint))
    if spec.code_mounts:
        # the directory holds the tarballs' copies and the directories' mount points
        # (:func:`local_mode.training.hosts.stage_code`); read-only even for root
        mounts.append(BindMount(host_path(host, CODE_SOURCE_DIR).resolve(), CODE_SOURCE_DIR,
                                read_only=True))
        mounts.extend(BindMount(code.source, code.target, read_only=True)
                      for code in spec.code_mounts if code.source.is_dir())
    return mounts


def process_refusal(spec: TrainingJobSpec) -> str | None:
    """Only toolkit-based code runs as a plain process: the job must say what to run
    (``sagemaker_program`` / ``SAGEMAKER_PROGRAM``, code from ``sagemaker_submit_directory`` /
    ``SAGEMAKER_SUBMIT_DIRECTORY``); an image's own entrypoint cannot be honoured."""
    image = spec.image or "(none)"
    if spec.entrypoint is not None:
        return (f"the process backend runs toolkit-based code only and cannot honour "
                f"ContainerEntrypoint of image {image}; use the Docker backend")
    if spec.arguments is not None and list(spec.arguments[:1]) != ["train"]:
        return ("the process backend runs `optml train` and cannot honour ContainerArguments "
                f"{list(spec.arguments)}; use the Docker backend")
    program = spec.hyperparameters.get("sagemaker_program") or \
        spec.environment.get("SAGEMAKER_PROGRAM")
    code = spec.hyperparameters.get("sagemaker_submit_directory") or \
        spec.environment.get("SAGEMAKER_SUBMIT_DIRECTORY")
    if not program and not code:  # with code alone, `train` runs its train.py
        return (f"the process backend runs toolkit-based code only: it cannot run image {image} "
                "by itself. Say where the code is with sagemaker_submit_directory (or "
                "Environment SAGEMAKER_SUBMIT_DIRECTORY) and, unless it is train.py, what to "
                "run with sagemaker_program / SAGEMAKER_PROGRAM, or use the Docker backend")
    return None


@dataclass(frozen=True)
class TrainingWorkload(SpecWorkload):
    """A training job as its hosts see it."""

    spec: TrainingJobSpec
    image_field: str = "AlgorithmSpecification.TrainingImage"
    operation: str = "CreateTrainingJob"
    kind: str = "training-job"

    def container_command(self) -> tuple[list[str] | None, list[str] | None]:
        return container_command(self.spec)

    def mounts(self, host: Host) -> list[BindMount]:
        return host_mounts(self.spec, host)

    def process_refusal(self) -> str | None:
        return process_refusal(self.spec)

    def process_argv(self, host: Host) -> list[str]:
        # ``optml train`` minus the click front end (what the ``train`` command calls): one
        # import layer less on every job's critical path.
        extra = list(self.spec.arguments[1:]) if self.spec.arguments else []
        return [sys.executable, "-m", "toolkit.training.main", *extra]
