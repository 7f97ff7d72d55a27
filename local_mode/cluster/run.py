"""A job's hosts from first to last, the same for every kind of job that runs them (training,
processing): made and checked (:func:`make_hosts`), run under supervision with their input
feeders (:func:`run_hosts`), and released (:func:`release_hosts`).

A kind's runner adds only what is its own around these: its config files and data before, its
timers and periodic work during, its artifacts and statuses after.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from local_mode.cluster import Backend, Host, HostRun, Workload
from local_mode.cluster.choice import make_backend
from local_mode.cluster.supervisor import Periodic, Supervisor, start_hosts
from local_mode.cluster.tree import make_removable
from local_mode.runners import Lifecycle, RunnerContext, runner_main
from toolkit.layout import Layout

log = logging.getLogger("optml.local")

REASON_CHARS = 1024
"""FailureReason and ExitMessage are at most 1 KB on the service."""
PUMP_JOIN_SECONDS = 10.0


class StopKind:
    """Why a job's hosts were stopped, in the words its status shows."""

    USER = "Stopped"
    MAX_RUNTIME = "MaxRuntimeExceeded"


def make_hosts(backend: Backend, workload: Workload, work_dir: Path) -> list[Host]:
    """Check that the backend can run ``workload``, name its hosts, give each its tree below
    ``work_dir`` and prepare the backend (a Docker job's network).

    ``work_dir`` is private: inside it, what the program writes is writable by anyone (the
    image's USER may be anyone), so no other local user may reach it. Containers get their bind
    mounts from the engine, which never walks this directory's permissions.
    """
    work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    work_dir.chmod(0o700)
    backend.check(workload)
    names = backend.host_names(workload.instance_count)
    hosts = [Host(name, index, len(names), Layout(work_dir / name))
             for index, name in enumerate(names)]
    backend.prepare(workload)
    return hosts


@dataclass
class HostsOutcome:
    runs: list[HostRun]
    exit_codes: dict[str, int]
    """By host name, in the order the hosts exited."""
    stop_kind: str | None = None
    """Why the hosts were stopped, as it stood when the last one exited (a stop requested
    after that changes nothing about how they ended)."""

    def first_failure(self) -> tuple[HostRun, int] | None:
        """The first host to exit non-zero and its status: the job's cause (the peers that
        exited after it were stopped because of it)."""
        by_name = {run.host.name: run for run in self.runs}
        for name, code in self.exit_codes.items():
            if code != 0:
                return by_name[name], code
        return None


def run_hosts(supervisor: Supervisor, backend: Backend, workload: Workload,
              hosts: Sequence[Host], environment: Mapping[str, str], *,
              feeders: Callable[[], Iterator[Any]] = lambda: iter(()),
              on_line: Callable[[bytes], None] | None = None,
              timers: Callable[[], str | None] = lambda: None,
              on_stopping: Callable[[str | None], None] = lambda kind: None,
              periodic: Sequence[Periodic] = (),
              after: Callable[[], object] | None = None) -> HostsOutcome:
    """Start the input feeders (``feeders`` yields each one started), start every host, copy
    their output into the job's log and supervise them until all have exited; call ``after``
    once they have (and before their containers go); then stop the feeders and release every
    host's run, however this ends."""
    started: list[Any] = []
    runs: list[HostRun] = []
    try:
        started.extend(feeders())
        start_hosts(backend, workload, hosts, [h.name for h in hosts], environment, runs)
        pumps: list[threading.Thread] = [supervisor.pump(run, on_line) for run in runs]
        codes = supervisor.supervise(runs, timers=timers, on_stopping=on_stopping,
                                     periodic=periodic)
        stop_kind = supervisor.stop_kind
        for pump in pumps:
            pump.join(timeout=PUMP_JOIN_SECONDS)
        if after is not None:
            after()
        return HostsOutcome(runs, codes, stop_kind)
    finally:
        for feeder in started:
            feeder.stop()
        for run in runs:
            run.cleanup()


def release_hosts(backend: Backend, hosts: Sequence[Host]) -> None:
    """Tear the backend down (before a job's terminal status: a job that says it ended holds no
    containers or networks) and make what containers wrote removable (the runner's frame then
    deletes the trees). Never raises: the job's status must still be written."""
    try:
        backend.teardown()
    except Exception:
        log.exception("tearing down the %s backend failed", backend.name)
    for host in hosts:
        make_removable(host.layout.root)


class RunnableJob(Protocol):
    def request_stop(self, kind: str) -> None: ...

    def run(self) -> None: ...


def job_main(lifecycle: Lifecycle, build: Callable[[RunnerContext, Backend], RunnableJob],
             argv: Sequence[str] | None = None) -> int:
    """The ``main`` of a job runner: the runner frame (:func:`local_mode.runners.runner_main`),
    the job's backend, a stop signal as the user's stop, and the job."""
    with runner_main(lifecycle, argv) as context:
        runner = build(context, make_backend(context.backend, context.settings,
                                             str(context.store.root)))
        context.on_stop(lambda: runner.request_stop(StopKind.USER))
        runner.run()
    return 0
