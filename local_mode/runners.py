"""The life of a runner: the detached process that owns one training job, endpoint or transform
job from its creation to its end.

Every resource kind that runs something has one. The client spawns it (:func:`spawn`) and returns
at once, as the service's Create calls do; it signals it to stop or update
(:func:`signal_runner`, :func:`stop_runner`); and when the runner died without finishing (a
``kill -9``, a reboot) a describe says so rather than report the resource in progress forever
(:func:`describe_live`). Inside the runner, :func:`runner_main` owns what every runner's ``main``
does around its own work: the command line, logging, the pid file and the stop signals.

What differs between kinds is data, not code: a :class:`Lifecycle` names the kind's state
directory, its runner module, its status field and the statuses in which a runner must be alive.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_mode.state import ResourceDir, StateStore, append_private, open_private
from local_mode.warm_runners import STATE_DIR_VARIABLE, WARM, WarmKey
from toolkit.pids import pid_alive
from toolkit.settings import Settings

START_WAIT_SECONDS = 10.0
"""How long a signal waits for a runner that is still starting to write its pid file."""
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Lifecycle:
    """What local mode knows of one kind of runner-owned resource."""

    kind: str
    """The state store's directory for the kind (``training-jobs``)."""
    module: str
    """The runner, run as ``python -m <module> STATE_DIR NAME BACKEND``."""
    status_field: str
    """The description's status member (``TrainingJobStatus``)."""
    live: frozenset[str]
    """Statuses in which the runner must be running."""
    what: str
    """How a lost runner is named in FailureReason (``training job``)."""
    lost_fields: Mapping[str, str] = field(default_factory=dict)
    """Members besides the status and FailureReason a lost runner sets (training's
    SecondaryStatus)."""
    name_field: str = ""
    """The description's name member (``TrainingJobName``)."""
    end_field: str | None = None
    """The member that says when it ended (``TrainingEndTime``); None if it does not end."""
    noun: str = ""
    """How a user reads one named (``training job``)."""
    backend_modules: Mapping[str, str] = field(default_factory=dict)
    """The module each backend's runner loads on demand, by backend name: what a waiting
    runner imports ahead (:mod:`local_mode.warm_runners`)."""

    def warm_modules(self, backend: str) -> tuple[str, ...]:
        """What a waiting runner of this kind imports beyond its own module for ``backend``:
        the backend's module, and docker-py (requests, urllib3: ~0.1 s) for ``docker``."""
        return ((self.backend_modules[backend],) if backend in self.backend_modules else ()) \
            + (("docker",) if backend == "docker" else ())

    def settled(self, description: Mapping[str, Any]) -> bool:
        """Whether the resource is past its runner's work (Completed, Failed, Stopped, ...)."""
        return description[self.status_field] not in self.live

    @property
    def lost_reason(self) -> str:
        return f"InternalServerError: the local {self.what} runner is no longer running"


_CLUSTER_BACKENDS = {"docker": "local_mode.cluster.docker", "process": "local_mode.cluster.process"}
"""Loaded when chosen (:mod:`local_mode.cluster.choice`); the serving backends load with their
runners."""
TRAINING = Lifecycle("training-jobs", "local_mode.training.runner", "TrainingJobStatus",
                     frozenset({"InProgress", "Stopping"}), "job",
                     {"SecondaryStatus": "Failed"}, name_field="TrainingJobName",
                     end_field="TrainingEndTime", noun="training job",
                     backend_modules=_CLUSTER_BACKENDS)
ENDPOINTS = Lifecycle("endpoints", "local_mode.endpoints.runner", "EndpointStatus",
                      frozenset({"Creating", "Updating", "InService", "SystemUpdating",
                                 "RollingBack"}), "endpoint", name_field="EndpointName",
                      noun="endpoint")
PROCESSING = Lifecycle("processing-jobs", "local_mode.processing.runner", "ProcessingJobStatus",
                       frozenset({"InProgress", "Stopping"}), "processing job",
                       name_field="ProcessingJobName", end_field="ProcessingEndTime",
                       noun="processing job", backend_modules=_CLUSTER_BACKENDS)
TRANSFORM = Lifecycle("transform-jobs", "local_mode.transform.runner", "TransformJobStatus",
                      frozenset({"InProgress", "Stopping"}), "transform",
                      name_field="TransformJobName", end_field="TransformEndTime",
                      noun="transform job")


# -- the client's side -------------------------------------------------------------------------
def spawn(store: StateStore, resource: ResourceDir, lifecycle: Lifecycle, backend: str,
          environ: Mapping[str, str], *, warm: bool = True) -> None:
    """Start the resource's runner, detached (its own session, so a Ctrl-C in the caller's
    terminal does not reach it), with its output in ``runner.log``: the runner of this kind
    that waits ready in the background when there is one (:mod:`local_mode.warm_runners`),
    else a new one; then, once it has started, another to wait for the next Create (unless
    ``warm`` is false: ``OPTML_LOCAL_WARM_RUNNERS``)."""
    env = dict(environ)
    env[STATE_DIR_VARIABLE] = str(store.root)
    argv = [str(store.root), resource.name, backend]
    key = WarmKey.of(lifecycle.module, backend, env)
    log = resource.path / "runner.log"
    if not (warm and WARM.hand_over(key, argv, log)):
        with append_private(log) as out:
            runner = subprocess.Popen(  # noqa: S603 - an argv list of our own module, no shell
                [sys.executable, "-m", lifecycle.module, *argv],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)
        # The runner outlives this client if it must; while we live, reap it when it ends so
        # it never lingers as a zombie.
        threading.Thread(target=runner.wait, name=f"reap-{resource.name}", daemon=True).start()
    if warm:
        WARM.prepare(key, env, lifecycle.warm_modules(backend), _start_marker(resource).exists)


def describe_live(resource: ResourceDir, lifecycle: Lifecycle) -> dict[str, Any]:
    """The description, marked Failed first if its runner is gone while it should be running."""
    description = resource.describe()
    if lifecycle.settled(description) or not resource.runner_lost(description["CreationTime"]):
        return description

    def change(d: dict[str, Any]) -> None:
        if lifecycle.settled(d):  # it finished after all (a runner writes its final status
            return                # before it removes its pid file)
        d[lifecycle.status_field] = "Failed"
        d.update(lifecycle.lost_fields)
        d["FailureReason"] = lifecycle.lost_reason
    return resource.update(change)


def ended(resource: ResourceDir, lifecycle: Lifecycle) -> bool:
    """The resource has left its live statuses *and* its runner has exited, so nothing more
    will happen to it (a runner writes its final status and last log line before it removes
    its pid file: what a log follower waits for)."""
    if not lifecycle.settled(describe_live(resource, lifecycle)):
        return False
    pid = resource.runner_pid()
    return pid is None or not pid_alive(pid)


def signal_runner(resource: ResourceDir, sig: int) -> int | None:
    """Send ``sig`` to the resource's runner; its pid, or None if there is no runner to signal.

    A runner that is starting has no pid file yet: wait for it up to :data:`START_WAIT_SECONDS`.
    One that has started (its start marker is there) and has no pid file any more has ended:
    there is nothing to wait for. A runner that exits meanwhile is not an error: it has done
    what the signal asked.
    """
    deadline = time.monotonic() + START_WAIT_SECONDS
    while True:
        started = _start_marker(resource).exists()  # before the pid: the runner writes it after
        pid = resource.runner_pid()
        if pid is not None or started or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    if pid is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    return pid


def stop_runner(resource: ResourceDir, timeout: float) -> None:
    """SIGTERM the runner and wait until it is gone; SIGKILL it after ``timeout`` seconds."""
    pid = signal_runner(resource, signal.SIGTERM)
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _start_marker(resource: ResourceDir) -> Path:
    """Written once the runner's pid file is, and never removed: a runner that has started and
    has no pid file any more has ended."""
    return resource.path / "runner.started"


# -- the runner's side -------------------------------------------------------------------------
@dataclass
class RunnerContext:
    """What a runner's ``main`` gets from :func:`runner_main`."""

    settings: Settings
    store: StateStore
    resource: ResourceDir
    backend: str
    stop: threading.Event = field(default_factory=threading.Event)
    """Set on SIGTERM or SIGINT (the service's stop, or Ctrl-C in a foreground run)."""
    _on_stop: list[Callable[[], None]] = field(default_factory=list)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Also call ``callback`` (in the main thread, from the signal handler) on a stop
        signal; a stop that came before this call is delivered at once."""
        self._on_stop.append(callback)
        if self.stop.is_set():
            callback()

    def _stop_requested(self, *_: object) -> None:
        self.stop.set()
        for callback in self._on_stop:
            callback()


@contextlib.contextmanager
def runner_main(lifecycle: Lifecycle, argv: Sequence[str] | None = None) -> Iterator[RunnerContext]:
    """The prologue and epilogue of every runner: read ``STATE_DIR NAME BACKEND`` (exit 2 with
    a usage line otherwise), set up logging, install the stop signals before the pid file
    appears (so a stop sent as soon as a client can see the runner is never lost), and remove
    the pid file and the resource's work directory however the runner ends."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3:
        print(f"usage: python -m {lifecycle.module} STATE_DIR NAME BACKEND", file=sys.stderr)
        raise SystemExit(2)
    state_dir, name, backend = args
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    store = StateStore(Path(state_dir))
    context = RunnerContext(Settings.from_environ(), store, store.get(lifecycle.kind, name),
                            backend)
    previous = {sig: signal.signal(sig, context._stop_requested)
                for sig in (signal.SIGTERM, signal.SIGINT)}
    with os.fdopen(open_private(context.resource.pid_file, os.O_WRONLY | os.O_TRUNC), "w") as pid:
        pid.write(str(os.getpid()))
    os.close(open_private(_start_marker(context.resource), os.O_WRONLY))  # after the pid file: see signal_runner
    try:
        yield context
    finally:
        shutil.rmtree(context.resource.work_dir, ignore_errors=True)
        context.resource.pid_file.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
