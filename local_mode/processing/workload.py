"""What a processing job asks of its hosts (:class:`local_mode.cluster.Workload`).

The command is the image's own (ENTRYPOINT and CMD), ``ContainerEntrypoint`` replacing the
ENTRYPOINT (and, as in ``docker run --entrypoint``, dropping the CMD) and ``ContainerArguments``
replacing the CMD. Nothing is added: a processing container gets no ``train``/``serve`` argument.

A container sees ``/opt/ml/config`` (read-only: ``processingjobconfig.json`` and
``resourceconfig.json``), ``/opt/ml/output`` (where the program may leave ``message``) and every
input's and output's ``LocalPath``, each bound from the host's tree; a path inside another is
already inside its mount. Nothing else under ``/opt/ml`` or ``/opt/ml/processing`` is covered, so
what the image keeps there stays visible, as on the service.

On the process backend there is no image: the job must give ``ContainerEntrypoint``, which runs
on this machine with every argument that is an ``/opt/ml`` path (or ``--flag=/opt/ml/...``)
mapped to its place in the host's tree; the config files name the mapped paths too, and
``SAGEMAKER_BASE_DIR`` is set, so a program that reads its paths from its arguments or its config
runs unchanged. A program that hard-codes ``/opt/ml/...`` needs the Docker backend. An entrypoint
that is a bare ``python``/``python3`` runs with local mode's own interpreter (the one whose
packages the process backend stands in for the image's), not whatever comes first on ``PATH``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from local_mode.cluster import CONTAINER_ROOT, BindMount, Host, SpecWorkload, covered, host_path
from local_mode.processing.spec import OPERATION, ProcessingJobSpec
from toolkit.layout import Layout

CONTAINER_LAYOUT = Layout()
BARE_PYTHON = re.compile(r"python(3(\.\d+)?)?")
"""An entrypoint's interpreter named without a path (``python3``, ``python3.11``)."""


def map_argument(argument: str, host: Host) -> str:
    """``argument`` with an ``/opt/ml`` path in it (the whole argument, or the value of
    ``--flag=``) replaced by the path's place in ``host``'s tree."""
    flag, equals, value = argument.partition("=")
    if equals and _in_root(value):
        return f"{flag}={host_path(host, value)}"
    if _in_root(argument):
        return str(host_path(host, argument))
    return argument


def _in_root(path: str) -> bool:
    return path == CONTAINER_ROOT or path.startswith(CONTAINER_ROOT + "/")


def _opt_ml_path(argument: str) -> str | None:
    """The ``/opt/ml`` path an argument names (whole, or as ``--flag=``), if any."""
    value = argument.partition("=")[2] if "=" in argument else argument
    return value if _in_root(value) else None


def _platform_made(path: str) -> bool:
    """Whether ``path`` lies where the platform makes directories in a processing host's tree
    (config, output, processing), so that it can exist on the process backend."""
    return path == CONTAINER_ROOT or any(path == str(d) or path.startswith(f"{d}/")
               for d in (CONTAINER_LAYOUT.config_dir, CONTAINER_LAYOUT.output_dir,
                         CONTAINER_LAYOUT.processing_dir))


@dataclass(frozen=True)
class ProcessingWorkload(SpecWorkload):
    """A processing job as its hosts see it."""

    spec: ProcessingJobSpec
    image_field: str = "AppSpecification.ImageUri"
    operation: str = OPERATION
    kind: str = "processing-job"

    def container_command(self) -> tuple[list[str] | None, list[str] | None]:
        entrypoint = list(self.spec.entrypoint) if self.spec.entrypoint is not None else None
        arguments = list(self.spec.arguments) if self.spec.arguments is not None else None
        if entrypoint is not None:
            return entrypoint, arguments or []
        return None, arguments

    def mounts(self, host: Host) -> list[BindMount]:
        mounts = [
            BindMount(host.layout.config_dir.resolve(), str(CONTAINER_LAYOUT.config_dir),
                      read_only=True),
            BindMount(host.layout.output_dir.resolve(), str(CONTAINER_LAYOUT.output_dir)),
        ]
        for path in sorted(self.spec.local_paths):  # a parent before what lies inside it
            if not covered(mounts, path):
                mounts.append(BindMount(host_path(host, path).resolve(), path))
        return mounts

    def process_refusal(self) -> str | None:
        if self.spec.entrypoint is None:
            return (f"the process backend cannot run the ENTRYPOINT of image {self.spec.image}: "
                    "give AppSpecification.ContainerEntrypoint (it runs on this machine, "
                    "with /opt/ml paths in it mapped to the host's tree) or use the Docker "
                    "backend")
        for argument in (*self.spec.entrypoint, *(self.spec.arguments or ())):
            path = _opt_ml_path(argument)
            if path is not None and not _platform_made(path):
                return (f"AppSpecification names {path}, which only the image of "
                        f"{self.spec.image} has: the process backend runs on this machine, "
                        "where nothing but the job's config, output and processing "
                        "directories exist under /opt/ml. Give the code as a ProcessingInput "
                        "(as the SDK's ScriptProcessor does, at /opt/ml/processing/input/code) "
                        "or use the Docker backend")
        return None

    def process_argv(self, host: Host) -> list[str]:
        assert self.spec.entrypoint is not None  # process_refusal said so
        program, *rest = self.spec.entrypoint
        if BARE_PYTHON.fullmatch(program):
            program = sys.executable
        return [map_argument(a, host) for a in (program, *rest, *(self.spec.arguments or ()))]
