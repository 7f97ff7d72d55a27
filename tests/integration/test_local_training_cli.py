"""``optml local ...`` as real subprocesses driving real jobs on the process backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.integration.local_training_support import (
    LocalEnv,
    assert_nothing_left,
    job_name,
    local_env,
    request,
    write_code,
)

__all__ = ["local_env"]

METRIC_SCRIPT = """
    import os
    from pathlib import Path
    for step, loss in enumerate([0.8, 0.4, 0.2]):
        print(f"step={step} loss={loss}", flush=True)
    Path(os.environ["SM_MODEL_DIR"], "m").write_text("m")
"""


def optml(env: LocalEnv, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "toolkit.cli", "local", *args,
                           "--state-dir", str(env.state_dir)], capture_output=True, text=True,
                          env=_environ(), timeout=180, check=False, **kwargs)  # type: ignore[arg-type]


def _environ() -> dict[str, str]:
    return {**os.environ, "OPTML_LOCAL_STOP_GRACE_SECONDS": "2", "OPTML_LOCAL_BACKEND": "process"}


def _job_file(env: LocalEnv, tmp_path: Path, script: str, suffix: str = ".json",
              **extra: object) -> tuple[str, Path]:
    name = job_name("cli")
    body = request(name, write_code(tmp_path / f"code-{name}", script), env.output_uri, **extra)
    path = tmp_path / f"{name}{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(body))
    else:
        import yaml

        path.write_text(yaml.safe_dump(body))
    return name, path


def test_train_wait_streams_host_logs_and_every_read_command_works(local_env: LocalEnv,
                                                                   tmp_path: Path) -> None:
    name, job = _job_file(local_env, tmp_path, METRIC_SCRIPT, suffix=".yaml")
    path_text = job.read_text()
    job.write_text(path_text.replace(
        "TrainingImage: optml/local-test:latest",
        "TrainingImage: optml/local-test:latest\n  MetricDefinitions:\n"
        "  - {Name: loss, Regex: 'loss=([0-9.]+)'}"))
    run = optml(local_env, "train", str(job), "--wait", "--backend", "process")
    assert run.returncode == 0, run.stderr
    assert f"Created training job {name}" in run.stdout
    assert "127.0.0.1 | step=2 loss=0.2" in run.stdout
    assert "optml | 127.0.0.1: channel" not in run.stdout  # no channels in this job
    assert f"Training job {name}: Completed after " in run.stdout
    assert f"Model artifacts: {local_env.output_uri}/{name}/output/model.tar.gz" in run.stdout
    assert run.stdout.rstrip().splitlines()[-2].startswith(f"Training job {name}: Completed")
    assert_nothing_left(local_env.state_dir)

    described = json.loads(optml(local_env, "describe", name).stdout)
    assert described["TrainingJobStatus"] == "Completed"
    assert described["FinalMetricDataList"][0]["Value"] == 0.2

    jobs = optml(local_env, "jobs")
    assert jobs.returncode == 0
    assert name in jobs.stdout and "Completed" in jobs.stdout

    logs = optml(local_env, "logs", name)
    assert "127.0.0.1 | step=0 loss=0.8" in logs.stdout
    assert logs.stdout.rstrip().endswith("optml | Completed: Training job completed")
    followed = optml(local_env, "logs", name, "-f")
    assert followed.returncode == 0 and followed.stdout == logs.stdout

    series = optml(local_env, "metrics", name, "--json")
    points = [json.loads(line) for line in series.stdout.splitlines()]
    assert [p["Value"] for p in points] == [0.8, 0.4, 0.2]
    table = optml(local_env, "metrics", name)
    assert "loss" in table.stdout and "0.4" in table.stdout
    png = tmp_path / "loss.png"
    plotted = optml(local_env, "metrics", name, "--plot", str(png))
    assert plotted.returncode == 0, plotted.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_wait_exits_non_zero_with_the_failure_reason(local_env: LocalEnv,
                                                           tmp_path: Path) -> None:
    name, job = _job_file(local_env, tmp_path, "raise RuntimeError('diverged at step 3')\n")
    run = optml(local_env, "train", str(job), "--wait")
    assert run.returncode == 1
    assert f"Training job {name}: Failed" in run.stderr
    assert "FailureReason:" in run.stderr and "diverged at step 3" in run.stderr
    assert_nothing_left(local_env.state_dir)


def test_ctrl_c_of_a_waiting_cli_stops_the_job_and_leaves_nothing(local_env: LocalEnv,
                                                                 tmp_path: Path) -> None:
    name, job = _job_file(local_env, tmp_path, """
        import time
        print("working", flush=True)
        time.sleep(600)
    """)
    cli = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "local", "train", str(job),
                            "--wait", "--state-dir", str(local_env.state_dir)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=_environ())
    try:
        local_env.wait_for_log(name, "| working")
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 130, err
    assert f"interrupted: stopping training job {name}" in err
    assert f"Training job {name}: Stopped after " in out
    assert local_env.client.describe_training_job(
        TrainingJobName=name)["TrainingJobStatus"] == "Stopped"
    assert_nothing_left(local_env.state_dir)


def test_stop_and_logs_follow_from_other_shells(local_env: LocalEnv, tmp_path: Path) -> None:
    name, job = _job_file(local_env, tmp_path, """
        import time
        print("waiting to be stopped", flush=True)
        time.sleep(600)
    """)
    created = optml(local_env, "train", str(job))
    assert created.returncode == 0, created.stderr
    follower = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "local", "logs", name, "-f",
                                 "--state-dir", str(local_env.state_dir)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_environ())
    try:
        local_env.wait_for_log(name, "waiting to be stopped")
        stopped = optml(local_env, "stop", name, "--wait")
        assert stopped.returncode == 3, stopped.stderr
        assert f"Training job {name}: Stopped" in stopped.stdout
        out, _ = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 3
    assert "127.0.0.1 | waiting to be stopped" in out
    assert out.rstrip().endswith("optml | Stopped: Training job stopped")
    again = optml(local_env, "stop", name)
    assert again.returncode == 1 and "already stopped" in again.stderr
    assert_nothing_left(local_env.state_dir)
