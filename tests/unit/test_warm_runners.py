"""Waiting runners: handed a resource they run it as a cold runner would; a mismatch, a closed
pool or a dead client never leaves one behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_mode.warm_runners import STATE_DIR_VARIABLE, WarmKey, WarmRunners
from toolkit.pids import pid_alive

REPO = Path(__file__).resolve().parents[2]
FAKE_RUNNER = """
    import json, os, sys

    def main(argv):
        print("runner output", flush=True)
        print("runner error", file=sys.stderr, flush=True)
        state_dir, name, backend = argv
        out = os.path.join(state_dir, name + ".json")
        with open(out + ".tmp", "w") as handle:
            json.dump({"argv": argv, "pid": os.getpid(), "stdin": sys.stdin.read(),
                       "state_dir": os.environ.get("OPTML_LOCAL_STATE_DIR"),
                       "warm": sorted(m for m in ("json", "wave") if m in sys.modules)}, handle)
        os.replace(out + ".tmp", out)
        return 3
"""


@pytest.fixture
def fake_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "fake_runner.py").write_text(textwrap.dedent(FAKE_RUNNER))
    return {**os.environ, "PYTHONPATH": f"{tmp_path / 'lib'}{os.pathsep}{REPO}",
            STATE_DIR_VARIABLE: str(tmp_path / "first-state")}


@pytest.fixture
def pool() -> Iterator[WarmRunners]:
    runners = WarmRunners()
    try:
        yield runners
    finally:
        runners.close()


def _hand_over(pool: WarmRunners, key: WarmKey, state: Path, name: str) -> None:
    """Hand ``name`` over once the waiting runner that prepare() starts in a thread is there."""
    deadline = time.monotonic() + 30
    while not pool.hand_over(key, [str(state), name, "process"], state / f"{name}.log"):
        assert time.monotonic() < deadline, "no runner was waiting"
        time.sleep(0.02)


def _result(path: Path) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while not path.exists():  # renamed into place once complete
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return json.loads(path.read_text())


def test_key_ignores_the_state_directory_and_the_order_of_variables() -> None:
    one = WarmKey.of("m", "docker", {"A": "1", "B": "2", STATE_DIR_VARIABLE: "/x"})
    two = WarmKey.of("m", "docker", {"B": "2", "A": "1", STATE_DIR_VARIABLE: "/y"})
    assert one == two
    assert one != WarmKey.of("m", "process", {"A": "1", "B": "2"})
    assert one != WarmKey.of("m", "docker", {"A": "1", "B": "3"})


def test_a_handed_over_runner_runs_like_a_cold_one(tmp_path: Path, fake_env: dict[str, str],
                                                   pool: WarmRunners) -> None:
    key = WarmKey.of("fake_runner", "process", fake_env)
    pool.prepare(key, fake_env, ["wave"], started=lambda: True)
    state = tmp_path / "state"
    state.mkdir()
    _hand_over(pool, key, state, "job-1")
    result = _result(state / "job-1.json")
    assert result["argv"] == [str(state), "job-1", "process"]
    assert result["state_dir"] == str(state)  # the order's, not the one it was started with
    assert result["stdin"] == ""  # /dev/null, as a cold runner's
    assert result["warm"] == ["json", "wave"]  # imported ahead
    deadline = time.monotonic() + 10
    while pid_alive(int(str(result["pid"]))):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    log = (state / "job-1.log").read_text()
    assert "runner output" in log and "runner error" in log
    assert (state / "job-1.log").stat().st_mode & 0o777 == 0o600


def test_a_runner_waits_for_started_and_is_replaced_on_a_mismatch(
        tmp_path: Path, fake_env: dict[str, str], pool: WarmRunners) -> None:
    gate = tmp_path / "started"
    key = WarmKey.of("fake_runner", "process", fake_env)
    pool.prepare(key, fake_env, [], started=gate.exists)
    time.sleep(0.3)
    assert not pool.hand_over(key, ["x", "y", "process"], tmp_path / "log")  # not yet
    gate.touch()
    deadline = time.monotonic() + 30
    while (first := pool.waiting("fake_runner")) is None:
        assert time.monotonic() < deadline, "started() was true and still no runner waits"
        time.sleep(0.02)
    other = WarmKey.of("fake_runner", "process", {**fake_env, "EXTRA": "1"})
    assert not pool.hand_over(other, ["x", "y", "process"], tmp_path / "log")
    assert pool.waiting("fake_runner") is None
    assert first.wait(timeout=15) == 0  # dismissed: it read the end of its stdin and left
    assert not (tmp_path / "log").exists()  # the mismatched runner ran nothing


def test_waiting_runners_end_with_the_pool_and_with_their_client(tmp_path: Path,
                                                                 fake_env: dict[str, str]) -> None:
    script = textwrap.dedent(f"""
        import os, sys, time
        from local_mode.warm_runners import WarmKey, WarmRunners
        pool = WarmRunners()
        env = {fake_env!r}
        key = WarmKey.of("fake_runner", "process", env)
        pool.prepare(key, env, [], started=lambda: True)
        deadline = time.monotonic() + 30
        while pool.waiting("fake_runner") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        print(pool.waiting("fake_runner").pid, flush=True)
        if sys.argv[1] == "close":
            pool.close()
            sys.exit(0)
        os._exit(0)  # no clean-up at all: only the closed pipe tells the runner
    """)
    for how in ("close", "vanish"):
        done = subprocess.run([sys.executable, "-c", script, how], env=fake_env, cwd=REPO,
                              capture_output=True, text=True, timeout=60, check=True)
        pid = int(done.stdout.strip())
        deadline = time.monotonic() + 15
        while pid_alive(pid):
            assert time.monotonic() < deadline, f"waiting runner {pid} outlived its client ({how})"
            time.sleep(0.05)


def test_a_dead_waiting_runner_is_not_handed_anything(tmp_path: Path, fake_env: dict[str, str],
                                                      pool: WarmRunners) -> None:
    key = WarmKey.of("no_such_module_anywhere", "process", fake_env)
    pool.prepare(key, fake_env, [], started=lambda: True)
    deadline = time.monotonic() + 30
    while True:
        waiting = pool.waiting(key.module)
        if waiting is not None and waiting.poll() is not None:
            break  # it failed its import and exited
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not pool.hand_over(key, ["x", "y", "process"], tmp_path / "log")


def test_usage_without_a_module_exits_2() -> None:
    done = subprocess.run([sys.executable, "-m", "local_mode.warm_runners"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: python -m local_mode.warm_runners MODULE")


def test_a_runner_that_cannot_confirm_is_killed_and_the_create_starts_one_cold(
        tmp_path: Path, fake_env: dict[str, str], pool: WarmRunners) -> None:
    key = WarmKey.of("fake_runner", "process", fake_env)
    pool.prepare(key, fake_env, [], started=lambda: True)
    deadline = time.monotonic() + 30
    while not pool.ready("fake_runner"):
        assert time.monotonic() < deadline, "the waiting runner never said ready"
        time.sleep(0.02)
    runner = pool.waiting("fake_runner")
    assert runner is not None
    state = tmp_path / "state"
    state.mkdir()
    # its log cannot be opened (no such directory): it dies before confirming
    assert not pool.hand_over(key, [str(state), "job-x", "process"],
                              tmp_path / "missing" / "runner.log")
    assert runner.wait(timeout=15) != 0
    assert not (state / "job-x.json").exists()  # it never ran the resource
    assert pool.waiting("fake_runner") is None
