"""Warm runners: the next runner of a kind, started while the current one is at work.

A runner starts as any Python program does: the interpreter, local mode's modules and, for the
Docker backend, docker-py with requests and urllib3. That is about 0.25 s of CPU before it can
ask the engine for anything, and it sat on the critical path of every job: a no-op training job
took 0.70 s where a bare ``docker run`` of the same image took 0.40 s. Nothing the service does
needs the runner of the *next* Create call to begin its life at that call; so once a client has
started a runner of a kind and that runner is past its own start (its imports then overlap the
job's container start, not the runner's own), the client starts one more of the same kind,
which imports everything, says it is ready and waits on its stdin. The next Create of that kind
hands it the resource (:meth:`WarmRunners.hand_over`); once the runner confirms that its output
goes to the resource's ``runner.log``, it runs the runner's ``main`` with the arguments and
environment a runner started then would have. What differs is only what the process shows
outside: its command line names this module, and its cwd is the one it was started in (part of
what a Create must match, with the backend and the environment).

Bounded and owned by the client process: at most one waiting runner per kind; one that does not
match a Create is stopped, never kept, and one that is not ready yet or does not confirm is
never handed anything (the Create starts its runner cold). A waiting runner exits as soon as its
stdin closes, which the kernel does however the client ends (exit, Ctrl-C, ``kill -9``), or when
its parent changes (a child the client forked without exec holding the pipe open). The first
Create of each kind in a process still pays the full start, and a client that creates one job
only pays for a runner it never uses (in the background, after its job's runner has started).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from local_mode.state import append_private

STATE_DIR_VARIABLE = "OPTML_LOCAL_STATE_DIR"
"""Set per resource, so not part of what a waiting runner must match."""
READY_WAIT_SECONDS = 10.0
"""How long :meth:`WarmRunners.prepare` waits for the current runner's start before giving up."""
READY_POLL_SECONDS = 0.02
CONFIRM_SECONDS = 2.0
"""How long a Create waits for a handed-over runner to confirm before starting one cold."""
DISMISS_SECONDS = 10.0
"""How long a dismissed waiting runner has to exit before it is killed."""
PARENT_CHECK_SECONDS = 1.0
"""How often a waiting runner checks that the client that started it is still its parent."""
READY = b"ready\n"
CONFIRMED = b"ok\n"


@dataclass(frozen=True)
class WarmKey:
    """What a waiting runner was started for; a Create must match all of it."""

    module: str
    backend: str
    environ: tuple[tuple[str, str], ...]
    cwd: str

    @classmethod
    def of(cls, module: str, backend: str, environ: Mapping[str, str]) -> WarmKey:
        return cls(module, backend, tuple(sorted((k, v) for k, v in environ.items()
                                                 if k != STATE_DIR_VARIABLE)), os.getcwd())


@dataclass
class _Waiting:
    key: WarmKey
    process: subprocess.Popen[bytes]
    ready: bool = False
    _reply: bytes = field(default=b"")

    def said(self, expected: bytes, timeout: float) -> bool:
        """Whether the runner wrote ``expected`` on its reply pipe within ``timeout``."""
        reply = self.process.stdout
        if reply is None:
            return False
        deadline = time.monotonic() + timeout
        while not self._reply.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([reply], [], [], max(0.0, remaining))
            if not readable:
                return False
            chunk = os.read(reply.fileno(), 64)
            if not chunk:
                return False
            self._reply += chunk
        line, self._reply = self._reply, b""
        return line == expected


class WarmRunners:
    """The client's waiting runners, one per runner module at most (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, _Waiting] = {}
        self._generation = 0
        self._preparing: list[threading.Thread] = []
        self._fork_hook = False

    def hand_over(self, key: WarmKey, argv: Sequence[str], log: Path) -> bool:
        """Give the resource of ``argv`` (``STATE_DIR NAME BACKEND``, as a cold runner gets
        them; STATE_DIR is also its ``OPTML_LOCAL_STATE_DIR``) to the waiting runner
        that matches ``key`` and is ready; False when there is none, or it did not confirm
        (the caller starts one cold: nothing was handed over then)."""
        with self._lock:
            waiting = self._waiting.pop(key.module, None)
            if waiting is not None and waiting.key == key and waiting.process.poll() is None \
                    and not waiting.ready and not waiting.said(READY, 0.0):
                self._waiting[key.module] = waiting  # still importing: ready for the next one
                return False
        if waiting is None:
            return False
        if waiting.key != key or waiting.process.poll() is not None:
            _dismiss(waiting.process)
            return False
        waiting.ready = True
        order = json.dumps({"argv": list(argv), "log": str(log)})
        stdin = waiting.process.stdin  # always a pipe: started with stdin=PIPE
        try:
            if stdin is None:
                raise BrokenPipeError
            stdin.write(order.encode() + b"\n")
            stdin.close()
        except OSError:  # it died meanwhile (BrokenPipeError): nothing was handed over
            _dismiss(waiting.process)
            return False
        if not waiting.said(CONFIRMED, CONFIRM_SECONDS):
            _kill(waiting.process)  # never two runners for one resource
            return False
        _close(waiting.process.stdout)
        return True

    def prepare(self, key: WarmKey, env: Mapping[str, str], warm_modules: Sequence[str],
                started: Callable[[], bool]) -> None:
        """In the background, once ``started()`` says the runner just spawned is past its own
        start: a waiting runner for ``key``, unless one already waits for it. A :meth:`close`
        meanwhile cancels it."""
        with self._lock:
            if not self._fork_hook:  # a child forked without exec must not hold our pipes
                os.register_at_fork(after_in_child=self._forget)
                self._fork_hook = True
            generation = self._generation
            self._preparing = [t for t in self._preparing if t.is_alive()]
            thread = threading.Thread(target=self._prepare,
                                      args=(key, env, warm_modules, started, generation),
                                      name=f"warm-{key.module}", daemon=True)
            self._preparing.append(thread)
        thread.start()

    def _prepare(self, key: WarmKey, env: Mapping[str, str], warm_modules: Sequence[str],
                 started: Callable[[], bool], generation: int) -> None:
        deadline = time.monotonic() + READY_WAIT_SECONDS
        while not started() and time.monotonic() < deadline \
                and generation == self._generation:
            time.sleep(READY_POLL_SECONDS)
        with self._lock:
            if generation != self._generation:
                return  # closed meanwhile
            current = self._waiting.get(key.module)
            if current is not None and current.key == key and current.process.poll() is None:
                return
            stale = self._waiting.pop(key.module, None)
            process = subprocess.Popen(  # noqa: S603 - an argv list of our own module, no shell
                [sys.executable, "-m", __name__, key.module, *warm_modules],
                env={k: v for k, v in env.items() if k != STATE_DIR_VARIABLE},  # not yet known
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True)
            self._waiting[key.module] = _Waiting(key, process)
        if stale is not None:
            _dismiss(stale.process)
        # reaped whenever it ends, waiting or working, so it never lingers as a zombie
        threading.Thread(target=process.wait, name=f"reap-warm-{key.module}",
                         daemon=True).start()

    def waiting(self, module: str) -> subprocess.Popen[bytes] | None:
        """The runner waiting for the next resource of ``module``, if one was started (it may
        have exited since: :meth:`hand_over` checks)."""
        with self._lock:
            entry = self._waiting.get(module)
        return entry.process if entry is not None else None

    def ready(self, module: str) -> bool:
        """Whether a runner for the next resource of ``module`` has finished its imports (a
        Create of that kind now skips Python's start)."""
        with self._lock:
            entry = self._waiting.get(module)
            if entry is None or entry.process.poll() is not None:
                return False
            if not entry.ready:
                entry.ready = entry.said(READY, 0.0)
            return entry.ready

    def close(self) -> None:
        """Stop every waiting runner and cancel the ones being prepared (waiting runners also
        stop by themselves when this process ends)."""
        with self._lock:
            self._generation += 1
            waiting, self._waiting = list(self._waiting.values()), {}
            preparing, self._preparing = self._preparing, []
        for thread in preparing:
            thread.join(READY_WAIT_SECONDS + 1)
        for entry in waiting:
            _dismiss(entry.process, wait=True)

    def _forget(self) -> None:
        """In a child forked without exec: drop our copies of the waiting runners' pipes (the
        parent's runners end with the parent), and start from nothing."""
        for entry in self._waiting.values():
            _close(entry.process.stdin)
            _close(entry.process.stdout)
        self._lock = threading.Lock()
        self._waiting = {}
        self._preparing = []
        self._generation += 1


def _close(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):
            stream.close()


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        process.kill()
    _close(process.stdout)


def _dismiss(process: subprocess.Popen[bytes], *, wait: bool = False) -> None:
    """Close a waiting runner's stdin: it exits as soon as it reads the end. A Create never waits
    for that (one still importing reads it only when done); a thread kills one that has not
    exited after :data:`DISMISS_SECONDS`. With ``wait``, this waits for the exit."""
    _close(process.stdin)

    def reap() -> None:
        try:
            process.wait(timeout=DISMISS_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _close(process.stdout)

    if wait:
        reap()
    else:
        threading.Thread(target=reap, name="dismiss-warm-runner", daemon=True).start()


WARM = WarmRunners()
"""This process's waiting runners (empty until a client spawns a runner)."""


# -- the waiting runner's side ------------------------------------------------------------------
def _wait_for_order(parent: int) -> bytes:
    """One line from stdin; empty when stdin closes or the parent that started us is gone."""
    stdin = sys.stdin.buffer
    while True:
        readable, _, _ = select.select([stdin], [], [], PARENT_CHECK_SECONDS)
        if readable:
            return stdin.readline()
        if os.getppid() != parent:
            return b""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m local_mode.warm_runners MODULE [WARM_MODULE...]``: import ``MODULE`` (a
    runner) and the rest, say ready on stdout, wait for one order on stdin, confirm once the
    output goes to the resource's log, then run ``MODULE.main`` on it. Exits 0 without running
    anything when stdin closes first."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m local_mode.warm_runners MODULE [WARM_MODULE...]",
              file=sys.stderr)
        return 2
    parent = os.getppid()
    runner = importlib.import_module(args[0])
    for name in args[1:]:
        importlib.import_module(name)
    reply = os.dup(1)  # the pipe to the client; fd 1 becomes the resource's log
    os.write(reply, READY)
    line = _wait_for_order(parent)
    if not line:
        return 0
    order = json.loads(line)
    os.environ[STATE_DIR_VARIABLE] = order["argv"][0]  # STATE_DIR NAME BACKEND
    with append_private(Path(order["log"])) as log:  # what a cold runner's stdout/stderr are
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.write(reply, CONFIRMED)
    os.close(reply)
    result: int = runner.main(order["argv"])
    return result


if __name__ == "__main__":
    sys.exit(main())
