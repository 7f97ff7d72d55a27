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
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from local_mode.cluster import BindMount, Host, SpecWorkload, covered
from local_mode.training.hosts import container_checkpoint_path, host_checkpoint_dir
from local_mode.training.spec import TrainingJobSpec
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


def host_mounts(spec: TrainingJobSpec, host: Host) -> list[BindMount]:
    """The platform's directories, FastFile channels read-only, the checkpoint directory.

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
