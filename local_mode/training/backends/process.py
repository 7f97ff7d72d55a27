"""Run a job's hosts as ``optml train`` processes on relocated /opt/ml roots (no Docker).

Hosts are loopback addresses (127.0.0.1, 127.0.0.2, ...): they resolve without DNS and keep every
packet on this machine. Only toolkit-based code can run this way: the job must say what to run
(``sagemaker_program`` / ``SAGEMAKER_PROGRAM``, code from ``sagemaker_submit_directory`` /
``SAGEMAKER_SUBMIT_DIRECTORY``); an image's own entrypoint cannot be honoured without Docker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from local_mode.errors import BackendUnsupported
from local_mode.loopback import free_port
from local_mode.training.hosts import Host, host_checkpoint_dir
from local_mode.training.spec import TrainingJobSpec


def _toolkit_grace(runner_grace: float) -> float:
    """The toolkit's own stop grace: 5 s shorter than the runner's, or half of a short one.

    It must end strictly earlier, so the toolkit (not the runner's SIGKILL of its process
    group) kills the user's process group, which lives in a session of its own and would
    otherwise outlive the job holding the log pipe open.
    """
    return runner_grace - min(5.0, runner_grace / 2)


@dataclass
class ProcessHostRun:
    host: Host
    process: subprocess.Popen[bytes]

    def output(self) -> Iterator[bytes]:
        assert self.process.stdout is not None
        yield from iter(self.process.stdout.readline, b"")

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is None:
            return None
        return 128 - code if code < 0 else code

    def out_of_memory(self) -> bool:
        """A plain process has no memory limit of its own (instance types are not enforced)."""
        return False

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already
            os.killpg(self.process.pid, signum)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class ProcessBackend:
    base_environ: Mapping[str, str]
    stop_grace_seconds: float
    name: str = "process"
    network_interface: str = "lo"
    _master_port: int = field(default_factory=free_port)

    def host_names(self, count: int) -> list[str]:
        if count > 254:
            raise BackendUnsupported("the process backend supports at most 254 hosts")
        return [f"127.0.0.{index + 1}" for index in range(count)]

    def checkpoint_local_path(self, spec: TrainingJobSpec, host: Host) -> str:
        return str(host_checkpoint_dir(spec, host))

    def check(self, spec: TrainingJobSpec) -> None:
        image = spec.image or "(none)"
        if spec.entrypoint is not None:
            raise BackendUnsupported(
                f"the process backend runs toolkit-based code only and cannot honour "
                f"ContainerEntrypoint of image {image}; use the Docker backend")
        if spec.arguments is not None and list(spec.arguments[:1]) != ["train"]:
            raise BackendUnsupported(
                "the process backend runs `optml train` and cannot honour ContainerArguments "
                f"{list(spec.arguments)}; use the Docker backend")
        program = spec.hyperparameters.get("sagemaker_program") or \
            spec.environment.get("SAGEMAKER_PROGRAM")
        code = spec.hyperparameters.get("sagemaker_submit_directory") or \
            spec.environment.get("SAGEMAKER_SUBMIT_DIRECTORY")
        if not program and not code:  # with code alone, `train` runs its train.py
            raise BackendUnsupported(
                f"the process backend runs toolkit-based code only: it cannot run image {image} "
                "by itself. Say where the code is with sagemaker_submit_directory (or "
                "Environment SAGEMAKER_SUBMIT_DIRECTORY) and, unless it is train.py, what to "
                "run with sagemaker_program / SAGEMAKER_PROGRAM, or use the Docker backend")

    def prepare(self, spec: TrainingJobSpec, job_id: str) -> None:
        return None

    def start(self, spec: TrainingJobSpec, host: Host, hosts: Sequence[str],
              environment: Mapping[str, str]) -> ProcessHostRun:
        env = {k: v for k, v in self.base_environ.items()
               if not k.startswith(("SM_", "SAGEMAKER_", "OPTML_"))}
        env.update(environment)
        env.update({
            "SAGEMAKER_BASE_DIR": str(host.layout.root),
            # the toolkit must give up before we do, so its failure reason is written
            "OPTML_STOP_GRACE_SECONDS": str(_toolkit_grace(self.stop_grace_seconds)),
            "OPTML_MASTER_PORT": str(self._master_port),
            "OPTML_HOST_RESOLVE_TIMEOUT": "30",
        })
        extra = list(spec.arguments[1:]) if spec.arguments else []
        # ``optml train`` minus the click front end (what the ``train`` command calls): one
        # import layer less on every job's critical path.
        process = subprocess.Popen(  # noqa: S603 - our own interpreter; the job's arguments
            [sys.executable, "-m", "toolkit.training.main", *extra], env=env,
            cwd=str(host.layout.root), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
        return ProcessHostRun(host, process)

    def teardown(self) -> None:
        return None
