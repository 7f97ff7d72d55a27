"""The runner lifecycle every resource kind shares (local_mode.runners), with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from local_mode import runners
from local_mode.state import RUNNER_START_GRACE, ResourceDir, StateStore, now
from tests.unit.runner_fixture import FIXTURE
from toolkit.pids import pid_alive


def _resource(tmp_path: Path, kind: str = "transform-jobs", status_field: str =
              "TransformJobStatus", status: str = "InProgress", **fields: object) -> ResourceDir:
    store = StateStore(tmp_path / "state")
    description = {status_field: status, "CreationTime": now(), **fields}
    return store.create(kind, "r1", description, {})


def _sleeper(*, ignore_term: bool = False) -> subprocess.Popen[bytes]:
    code = ("import signal, time\n"
            + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
            + "print('ready', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


# -- describe_live / ended ---------------------------------------------------------------------
def test_a_runner_that_died_marks_its_resource_failed_with_the_kinds_fields(
        tmp_path: Path) -> None:
    resource = _resource(tmp_path, "training-jobs", "TrainingJobStatus",
                         SecondaryStatus="Training")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    resource.pid_file.write_text(str(dead.pid))
    described = runners.describe_live(resource, runners.TRAINING)
    assert described["TrainingJobStatus"] == "Failed"
    assert described["SecondaryStatus"] == "Failed"
    assert described["FailureReason"] == ("InternalServerError: the local job runner is no "
                                          "longer running")
    assert resource.describe()["TrainingJobStatus"] == "Failed"  # written, not only shown


def test_a_runner_that_never_started_counts_as_lost_after_the_grace(tmp_path: Path) -> None:
    resource = _resource(tmp_path, "endpoints", "EndpointStatus", "Creating")
    assert runners.describe_live(resource, runners.ENDPOINTS)["EndpointStatus"] == "Creating"
    resource.update(lambda d: d.update(
        CreationTime=now() - timedelta(seconds=RUNNER_START_GRACE + 1)))
    described = runners.describe_live(resource, runners.ENDPOINTS)
    assert described["EndpointStatus"] == "Failed"
    assert "endpoint runner" in described["FailureReason"]


def test_a_finished_resource_is_left_as_it_is(tmp_path: Path) -> None:
    resource = _resource(tmp_path, status="Completed")
    assert runners.describe_live(resource, runners.TRANSFORM) == resource.describe()
    assert runners.ended(resource, runners.TRANSFORM)


def test_ended_waits_for_the_runner_to_exit_after_the_final_status(tmp_path: Path) -> None:
    resource = _resource(tmp_path, status="Completed")
    proc = _sleeper()
    try:
        resource.pid_file.write_text(str(proc.pid))
        assert not runners.ended(resource, runners.TRANSFORM)  # its last lines may follow
    finally:
        proc.kill()
        proc.wait()
    assert runners.ended(resource, runners.TRANSFORM)


# -- signal_runner / stop_runner ---------------------------------------------------------------
def test_signal_waits_for_a_starting_runner_to_write_its_pid(tmp_path: Path) -> None:
    resource = _resource(tmp_path)
    proc = _sleeper()
    try:
        threading.Timer(0.3, lambda: resource.pid_file.write_text(str(proc.pid))).start()
        assert runners.signal_runner(resource, signal.SIGTERM) == proc.pid
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        proc.kill()


def test_a_runner_gone_meanwhile_is_not_an_error(tmp_path: Path) -> None:
    resource = _resource(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    resource.pid_file.write_text(str(dead.pid))
    assert runners.signal_runner(resource, signal.SIGTERM) == dead.pid


def test_stop_kills_a_runner_that_ignores_sigterm_after_the_timeout(tmp_path: Path) -> None:
    resource = _resource(tmp_path)
    proc = _sleeper(ignore_term=True)
    resource.pid_file.write_text(str(proc.pid))
    try:
        threading.Thread(target=proc.wait, daemon=True).start()  # reap it, as spawn() does
        runners.stop_runner(resource, timeout=0.5)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()


# -- spawn + runner_main ----------------------------------------------------------------------
def test_spawned_runner_owns_its_pid_file_stops_on_sigterm_and_cleans_up(
        tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    resource = store.create("transform-jobs", "job", {"TransformJobStatus": "InProgress",
                                                      "CreationTime": now()}, {})
    runners.spawn(store, resource, FIXTURE, "process", dict(os.environ))
    deadline = time.monotonic() + 30
    while not (resource.work_dir / "scratch").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = resource.runner_pid()
    assert pid is not None and pid_alive(pid)
    assert not runners.ended(resource, FIXTURE)

    runners.stop_runner(resource, timeout=20)

    assert not pid_alive(pid)
    assert resource.describe()["TransformJobStatus"] == "Stopped"
    assert resource.describe()["Backend"] == "process"  # argv: STATE_DIR NAME BACKEND
    assert not resource.pid_file.exists()
    assert not resource.work_dir.exists()
    assert runners.ended(resource, FIXTURE)
    assert (resource.path / "runner.log").exists()
    # a runner that has started and ended is not waited for (an update of an endpoint whose
    # runner is gone answers at once)
    started = time.monotonic()
    assert runners.signal_runner(resource, signal.SIGHUP) is None
    assert time.monotonic() - started < runners.START_WAIT_SECONDS / 2


def test_a_runner_that_never_wrote_its_pid_is_waited_for_then_given_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runners, "START_WAIT_SECONDS", 0.3)
    resource = _resource(tmp_path)
    started = time.monotonic()
    assert runners.signal_runner(resource, signal.SIGTERM) is None
    assert time.monotonic() - started >= 0.3


def test_runner_main_refuses_a_wrong_command_line_with_a_usage_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info, runners.runner_main(FIXTURE, ["only-one"]):
        pass
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "usage: python -m tests.unit.runner_fixture STATE_DIR NAME BACKEND")


def test_runner_main_delivers_a_stop_to_late_callbacks_and_restores_the_handlers(
        tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    store.create("transform-jobs", "job", {"TransformJobStatus": "InProgress"}, {})
    before = signal.getsignal(signal.SIGTERM)
    calls: list[str] = []
    with runners.runner_main(FIXTURE, [str(store.root), "job", "docker"]) as context:
        assert context.resource.runner_pid() == os.getpid()
        os.kill(os.getpid(), signal.SIGTERM)  # before any callback is registered
        assert context.stop.wait(5)
        context.on_stop(lambda: calls.append("late"))
        assert context.backend == "docker"
    assert calls == ["late"]
    assert signal.getsignal(signal.SIGTERM) is before
    assert store.get("transform-jobs", "job").runner_pid() is None


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_the_next_runner_waits_ready_and_runs_its_resource_like_a_cold_one(
        tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    environ = {**os.environ, "OPTML_TEST_WARM": str(tmp_path)}  # a key no other test shares
    runners.WARM.close()  # no runner left waiting by another test in this process
    pids = []
    for name in ("first", "second"):
        resource = store.create("transform-jobs", name, {"TransformJobStatus": "InProgress",
                                                         "CreationTime": now()}, {})
        if name == "second":  # the spare is started once the first runner has started
            deadline = time.monotonic() + 30
            while not runners.WARM.ready(FIXTURE.module):
                assert time.monotonic() < deadline, "no runner was made ready"
                time.sleep(0.02)
            spare = runners.WARM.waiting(FIXTURE.module)
            assert spare is not None
        runners.spawn(store, resource, FIXTURE, "process", environ)
        deadline = time.monotonic() + 30
        while not (resource.work_dir / "scratch").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = resource.runner_pid()
        assert pid is not None and pid_alive(pid)
        pids.append(pid)
        runners.stop_runner(resource, timeout=20)
        assert not pid_alive(pid)
        assert resource.describe()["TransformJobStatus"] == "Stopped"
        assert resource.describe()["Backend"] == "process"
        assert not resource.pid_file.exists() and not resource.work_dir.exists()
        assert runners.ended(resource, FIXTURE)
    assert "local_mode.warm_runners" not in _cmdline(os.getpid())
    assert spare is not None and pids[1] == spare.pid  # the second Create went to the one that waited
    runners.WARM.close()  # the one made ready for a third
    assert runners.WARM.waiting(FIXTURE.module) is None


def test_without_warm_runners_each_create_starts_its_own(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    runners.WARM.close()
    resource = store.create("transform-jobs", "only", {"TransformJobStatus": "InProgress",
                                                       "CreationTime": now()}, {})
    runners.spawn(store, resource, FIXTURE, "process", dict(os.environ), warm=False)
    deadline = time.monotonic() + 30
    while not (resource.work_dir / "scratch").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = resource.runner_pid()
    assert pid is not None and FIXTURE.module in _cmdline(pid)
    runners.stop_runner(resource, timeout=20)
    assert runners.WARM.waiting(FIXTURE.module) is None  # prepare() was never called
