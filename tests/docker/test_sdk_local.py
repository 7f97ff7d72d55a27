"""The SDK local-mode runner the parity tests share (:mod:`tests.docker.sdk_local`).

The first tests need no engine (result parsing, the port probe, the lock, error reporting). The
``docker`` ones run real child interpreters with the real SDK and real labelled containers: a
hung run is killed with every process of its session, and the sweep removes exactly the compose
containers of its own run.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.docker import harness, sdk_local
from toolkit.pids import pid_alive


def test_results_are_found_even_after_the_sdks_progress_characters() -> None:
    stdout = ("noise\n!" + sdk_local.RESULT_MARKER + '{"a": 1}\n...\n' +
              sdk_local.RESULT_MARKER + "[2, 3]\n")
    assert sdk_local._results(stdout) == [{"a": 1}, [2, 3]]


@given(st.lists(st.one_of(st.integers(), st.text(), st.booleans(), st.none()), max_size=5),
       st.text(alphabet="!.\r ", max_size=5))
def test_any_reported_value_round_trips(values: list[object], prefix: str) -> None:
    import json

    stdout = "".join(f"{prefix}{sdk_local.RESULT_MARKER}{json.dumps(v)}\n" for v in values)
    assert sdk_local._results(stdout) == values


def test_check_raises_with_the_output_tail_and_result_needs_a_report() -> None:
    failed = sdk_local.SdkRun(3, "out-tail", "err-tail", [], [])
    with pytest.raises(sdk_local.SdkLocalModeError, match="exited with 3(?s:.*)err-tail"):
        failed.check()
    with pytest.raises(sdk_local.SdkLocalModeError, match="reported nothing"):
        _ = sdk_local.SdkRun(0, "", "", [], []).result
    ok = sdk_local.SdkRun(0, "", "", [1, {"last": True}], [])
    assert ok.check() is ok and ok.result == {"last": True}


def test_port_probe_sees_a_listener_and_its_absence() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert sdk_local.port_in_use(port)
    assert not sdk_local.port_in_use(port)
    assert sdk_local.wait_port_free(port, timeout=1)


HOLD_LOCK = """
import fcntl, sys
handle = open(sys.argv[1], "rb")
fcntl.flock(handle, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def test_the_lock_excludes_another_process(tmp_path: Path) -> None:
    lock = tmp_path / "sdk.lock"
    lock.touch()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(sdk_local.SdkLocalModeError, match="held"), \
                sdk_local.exclusive(timeout=0.5, lock_path=lock):
            pass
    finally:
        holder.communicate("")  # EOF on stdin: the holder exits and the lock is released
    with sdk_local.exclusive(timeout=5, lock_path=lock):
        pass


def test_environment_keeps_the_sdk_offline(tmp_path: Path) -> None:
    env = sdk_local.sdk_environment(tmp_path / "c.yaml")
    assert env["SAGEMAKER_USER_CONFIG_OVERRIDE"] == str(tmp_path / "c.yaml")
    assert env["AWS_DEFAULT_REGION"] and env["AWS_ACCESS_KEY_ID"] == "testing"
    assert "TelemetryOptOut: true" in sdk_local.SDK_CONFIG


# -- with an engine ---------------------------------------------------------------------------

REPORT_SCRIPT = r'''
import os, sys
print("!", end="", flush=True)  # what the SDK prints while it waits, without a newline
report({"args": ARGS, "root": sys.argv[1], "local": session.config["local"],
        "override": os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"]})
'''

HANG_SCRIPT = r'''
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
report(child.pid)
time.sleep(600)
'''


@pytest.mark.docker
def test_a_script_gets_a_local_session_and_its_arguments(tmp_path: Path) -> None:
    run = sdk_local.run_sdk(REPORT_SCRIPT, ["a b", "c"], tmp_path / "w").check()
    assert run.result["args"] == ["a b", "c"]
    assert run.result["root"] == str(tmp_path / "w" / "sdk-containers")
    assert run.result["local"] == {"local_code": True,
                                   "container_root": str(tmp_path / "w" / "sdk-containers")}
    assert run.result["override"] == str(tmp_path / "w" / "sdk-config.yaml")
    assert [name for name in run.swept if name.startswith("container ")] == []


@pytest.mark.docker
def test_a_hung_run_is_killed_with_every_process_it_started(tmp_path: Path) -> None:
    run = sdk_local.run_sdk(HANG_SCRIPT, [], tmp_path / "w", timeout=20)
    assert run.returncode == -9 and "killed after 20 s" in run.stderr
    with pytest.raises(sdk_local.SdkLocalModeError, match="exited with -9"):
        run.check()
    child = run.result
    deadline = time.monotonic() + 10
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)


@pytest.mark.docker
def test_sweep_removes_only_the_containers_of_its_own_run(tmp_path: Path,
                                                          docker_client: docker.DockerClient
                                                          ) -> None:
    try:
        docker_client.images.get(harness.STANDIN_BASE)
    except docker.errors.ImageNotFound:
        harness.build_images(("base",))
    ours = tmp_path / "ours"
    label = sdk_local.WORKING_DIR_LABEL
    made = []
    try:
        for working_dir in (ours / "tmpabc", tmp_path / "ourselves" / "tmpdef"):
            made.append(docker_client.containers.create(
                harness.STANDIN_BASE, ["true"], labels={**harness.LABELS,
                                                        label: str(working_dir)}))
        with sdk_local.exclusive():
            swept = sdk_local.sweep(docker_client, ours)
        assert f"container {made[0].name}" in swept
        assert sdk_local.leftovers(docker_client, ours) == []
        made[1].reload()  # a sibling directory whose name merely starts the same: untouched
    finally:
        for container in made:
            harness.remove(container)
