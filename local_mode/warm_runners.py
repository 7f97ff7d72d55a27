"""Warm runners: the next runner of a kind, started while the current one is at work.

A runner starts as any Python program does: the interpreter, local mode's modules and, for the
Docker backend, docker-py with requests and urllib3. That is about 0.25 s of CPU before it can
ask the engine for anything, and it sat on the critical path of every job: a no-op training job
took 0.70 s where a bare ``docker run`` of the same image took 0.40 s. Nothing the service does
needs the runner of the *next* Create call to begin its life at that call; so once a client has
started a runner of a kind (and that runner is past its own start, so the two never compete for
the CPU), it starts one more of the same kind, which imports everything and then waits on its
stdin. The next Create of that kind hands it the resource (:meth:`WarmRunners.hand_over`) and it
becomes that resource's runner at once, exactly as a runner started cold would be: same argv,
same environment, its output appended to the resource's ``runner.log``.

Bounded and owned by the client process: at most one waiting runner per kind; one that does not
match a Create (another backend, another environment) is stopped, never kept; a waiting runner
exits as soon as its stdin closes, so it never outlives the client that started it (an exit, a
Ctrl-C or a ``kill -9`` of the client: the kernel closes the pipe). The first Create of each kind
in a process still pays the full start, and a client that creates one job only pays for a runner
it never uses (in the background, after its job's runner has started).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from local_mode.state import append_private

STATE_DIR_VARIABLE = "OPTML_LOCAL_STATE_DIR"
"""Set per resource, so not part of what a waiting runner must match."""
READY_WAIT_SECONDS = 10.0
"""How long :meth:`WarmRunners.prepare` waits for the current runner's start before giving up."""
READY_POLL_SECONDS = 0.02
DISMISS_SECONDS = 10.0
"""How long a dismissed waiting runner has to exit before it is killed."""


@dataclass(frozen=True)
class WarmKey:
    """What a waiting runner was started for; a Create must match all of it."""

    module: str
    backend: str
    environ: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, module: str, backend: str, environ: Mapping[str, str]) -> WarmKey:
        return cls(module, backend, tuple(sorted((k, v) for k, v in environ.items()
                                                 if k != STATE_DIR_VARIABLE)))


@dataclass
class _Waiting:
    key: WarmKey
    process: subprocess.Popen[bytes]


class WarmRunners:
    """The client's waiting runners, one per runner module at most (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, _Waiting] = {}

    def hand_over(self, key: WarmKey, argv: Sequence[str], log: Path, state_dir: str) -> bool:
        """Give the resource of ``argv`` (``STATE_DIR NAME BACKEND``) to the waiting runner
        that matches ``key``; False when there is none (the caller starts one cold)."""
        with self._lock:
            waiting = self._waiting.pop(key.module, None)
        if waiting is None:
            return False
        if waiting.key != key or waiting.process.poll() is not None:
            _dismiss(waiting.process)
            return False
        order = json.dumps({"argv": list(argv), "log": str(log), "state_dir": state_dir})
        stdin = waiting.process.stdin  # always a pipe: started with stdin=PIPE
        try:
            if stdin is None:
                raise BrokenPipeError
            stdin.write(order.encode() + b"\n")
            stdin.close()
        except OSError:  # it died meanwhile (BrokenPipeError): nothing was handed over
            _dismiss(waiting.process)
            return False
        return True

    def prepare(self, key: WarmKey, env: Mapping[str, str], warm_modules: Sequence[str],
                started: Callable[[], bool]) -> None:
        """In the background, once ``started()`` says the runner just spawned is past its own
        start: a waiting runner for ``key``, unless one already waits for it."""
        threading.Thread(target=self._prepare, args=(key, env, warm_modules, started),
                         name=f"warm-{key.module}", daemon=True).start()

    def _prepare(self, key: WarmKey, env: Mapping[str, str], warm_modules: Sequence[str],
                 started: Callable[[], bool]) -> None:
        deadline = time.monotonic() + READY_WAIT_SECONDS
        while not started() and time.monotonic() < deadline:
            time.sleep(READY_POLL_SECONDS)
        with self._lock:
            current = self._waiting.get(key.module)
            if current is not None and current.key == key and current.process.poll() is None:
                return
            stale = self._waiting.pop(key.module, None)
            process = subprocess.Popen(  # noqa: S603 - an argv list of our own module, no shell
                [sys.executable, "-m", __name__, key.module, *warm_modules],
                env={k: v for k, v in env.items() if k != STATE_DIR_VARIABLE},  # not yet known
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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

    def close(self) -> None:
        """Stop every waiting runner (they also stop by themselves when this process ends)."""
        with self._lock:
            waiting, self._waiting = list(self._waiting.values()), {}
        for entry in waiting:
            _dismiss(entry.process, wait=True)


def _dismiss(process: subprocess.Popen[bytes], *, wait: bool = False) -> None:
    """Close a waiting runner's stdin: it exits as soon as it reads the end. A Create never waits
    for that (one still importing reads it only when done); a thread kills one that has not
    exited after :data:`DISMISS_SECONDS`. With ``wait``, this waits for the exit."""
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()

    def reap() -> None:
        try:
            process.wait(timeout=DISMISS_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    if wait:
        reap()
    else:
        threading.Thread(target=reap, name="dismiss-warm-runner", daemon=True).start()


WARM = WarmRunners()
"""This process's waiting runners (empty until a client spawns a runner)."""


# -- the waiting runner's side ------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m local_mode.warm_runners MODULE [WARM_MODULE...]``: import ``MODULE`` (a
    runner) and the rest, wait for one order on stdin, then run ``MODULE.main`` on it. Exits 0
    without running anything when stdin closes first."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m local_mode.warm_runners MODULE [WARM_MODULE...]",
              file=sys.stderr)
        return 2
    runner = importlib.import_module(args[0])
    for name in args[1:]:
        importlib.import_module(name)
    line = sys.stdin.buffer.readline()
    if not line:
        return 0
    order = json.loads(line)
    os.environ[STATE_DIR_VARIABLE] = order["state_dir"]
    with append_private(Path(order["log"])) as log:  # what a cold runner's stdout/stderr are
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    result: int = runner.main(order["argv"])
    return result


if __name__ == "__main__":
    sys.exit(main())
