"""Run a job's hosts as processes on relocated /opt/ml roots (no Docker).

Hosts are loopback addresses (127.0.0.1, 127.0.0.2, ...): they resolve without DNS and keep every
packet on this machine. What each host runs is the workload's :meth:`process_argv
<local_mode.cluster.Workload.process_argv>` (a training job's is ``optml train``'s module); an
image's own entrypoint cannot be honoured without Docker, and a workload says so in its
:meth:`process_refusal <local_mode.cluster.Workload.process_refusal>`. Every process gets
``SAGEMAKER_BASE_DIR`` pointing at its host's tree, so toolkit-based code finds its files there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from local_mode.cluster import ContainerStartFailed, Host, Workload, host_path
from local_mode.errors import BackendUnsupported
from local_mode.loopback import free_port


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

    def path_seen_by(self, host: Host, container_path: str) -> str:
        return str(host_path(host, container_path))

    def check(self, workload: Workload) -> None:
        reason = workload.process_refusal()
        if reason is not None:
            raise BackendUnsupported(reason)

    def prepare(self, workload: Workload) -> None:
        return None

    def start(self, workload: Workload, host: Host, hosts: Sequence[str],
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
        argv = workload.process_argv(host)
        try:
            process = subprocess.Popen(  # noqa: S603 - an argv list: the workload's command, no shell
                argv, env=env, cwd=str(host.layout.root), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:  # no such program, not executable
            raise ContainerStartFailed(f"{host.name}: cannot start {argv[0]!r} "
                                       f"({exc.strerror or exc}); the process backend runs the "
                                       "entrypoint on this machine") from None
        return ProcessHostRun(host, process)

    def teardown(self) -> None:
        return None
