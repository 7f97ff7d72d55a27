"""Stopping conditions, StopTrainingJob, checkpoints and managed-spot emulation on the process
backend (small grace values keep these fast)."""

from __future__ import annotations

from pathlib import Path

from local_mode.pricing.table import load_prices
from tests.integration.local_training_support import (
    LocalEnv,
    assert_nothing_left,
    job_name,
    local_env,
    make_env,
    request,
    stop_everything,
    write_code,
)

__all__ = ["local_env"]

STUBBORN_SCRIPT = """
    import os, signal, time
    from pathlib import Path
    def on_term(*_):
        # note that SIGTERM arrived, then keep running: only SIGKILL ends this process
        Path(os.environ["SM_OUTPUT_DATA_DIR"], "got-sigterm").write_text("yes")
    signal.signal(signal.SIGTERM, on_term)
    print("training forever", flush=True)
    while True:
        time.sleep(0.05)
"""


def test_max_runtime_stops_with_sigterm_then_sigkill(tmp_path: Path) -> None:
    env = make_env(tmp_path, grace=1.0)
    try:
        code = write_code(tmp_path / "code", STUBBORN_SCRIPT)
        name = job_name("runtime")
        env.client.create_training_job(**request(name, code, env.output_uri, max_runtime=4))
        done = env.wait(name)
        assert done["TrainingJobStatus"] == "Stopped"
        assert done["SecondaryStatus"] == "MaxRuntimeExceeded"
        statuses = [t["Status"] for t in done["SecondaryStatusTransitions"]]
        assert statuses[-4:] == ["Training", "Stopping", "Uploading", "MaxRuntimeExceeded"]
        assert "FailureReason" not in done
        # SIGTERM reached the user code; the job still ended although the code ignored it
        assert env.artifacts(name, "output.tar.gz") == {"got-sigterm": b"yes"}
        assert_nothing_left(env.state_dir)
    finally:
        stop_everything(env)


def test_stop_training_job_stops_a_running_job(local_env: LocalEnv, tmp_path: Path) -> None:
    code = write_code(tmp_path / "code", """
        import time
        print("started", flush=True)
        time.sleep(600)
    """)
    name = job_name("stop")
    local_env.client.create_training_job(**request(name, code, local_env.output_uri))
    local_env.wait_for_log(name, "| started")
    response = local_env.client.stop_training_job(TrainingJobName=name)
    assert set(response) == {"ResponseMetadata"}  # StopTrainingJob has no output members
    done = local_env.wait(name)
    assert done["TrainingJobStatus"] == "Stopped"
    assert done["SecondaryStatus"] == "Stopped"
    assert "Stopping" in [t["Status"] for t in done["SecondaryStatusTransitions"]]
    assert (local_env.output_dir / name / "output" / "model.tar.gz").is_file()
    assert_nothing_left(local_env.state_dir)


def test_stop_right_after_create_stops_before_training(local_env: LocalEnv,
                                                       tmp_path: Path) -> None:
    code = write_code(tmp_path / "code", "import time; time.sleep(600)\n")
    name = job_name("early")
    local_env.client.create_training_job(**request(name, code, local_env.output_uri))
    local_env.client.stop_training_job(TrainingJobName=name)
    done = local_env.wait(name)
    assert done["TrainingJobStatus"] == "Stopped"
    assert_nothing_left(local_env.state_dir)


CHECKPOINT_SCRIPT = """
    import json, os, time
    from pathlib import Path
    config = json.loads(Path(os.environ["SM_INPUT_CONFIG_DIR"], "checkpointconfig.json").read_text())
    local = Path(config["LocalPath"])
    remote = Path(config["S3Uri"][len("file://"):])
    seeded = (local / "seed" / "epoch-0.ckpt").read_text()
    (local / "epoch-1.ckpt").write_text("one")
    # the service uploads checkpoints while the job runs: wait until this one is there
    deadline = time.monotonic() + 60
    while not (remote / "epoch-1.ckpt").exists():
        if time.monotonic() > deadline:
            raise SystemExit("epoch-1.ckpt was not synced while running")
        time.sleep(0.1)
    (local / "epoch-2.ckpt").write_text("two")
    Path(os.environ["SM_MODEL_DIR"], "seen.txt").write_text(seeded)
"""


def test_checkpoints_are_restored_at_start_and_synced_while_running_and_at_the_end(
        local_env: LocalEnv, tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "seed").mkdir(parents=True)
    (checkpoints / "seed" / "epoch-0.ckpt").write_text("zero")
    code = write_code(tmp_path / "code", CHECKPOINT_SCRIPT)
    name = job_name("ckpt")
    local_env.client.create_training_job(**request(
        name, code, local_env.output_uri,
        CheckpointConfig={"S3Uri": f"file://{checkpoints}"}))
    done = local_env.wait(name)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    assert local_env.artifacts(name) == {"seen.txt": b"zero"}
    assert (checkpoints / "epoch-1.ckpt").read_text() == "one"
    assert (checkpoints / "epoch-2.ckpt").read_text() == "two"  # the final sync
    assert "restored 1 checkpoint file(s)" in local_env.log(name)
    assert_nothing_left(local_env.state_dir)


SPOT_SCRIPT = """
    import os, time
    from pathlib import Path
    import json
    config = json.loads(Path(os.environ["SM_INPUT_CONFIG_DIR"], "checkpointconfig.json").read_text())
    state = Path(config["LocalPath"]) / "state.txt"
    if state.exists():
        print("resumed from", state.read_text(), flush=True)
        Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text("resumed " + state.read_text())
        raise SystemExit(0)
    state.write_text("step-7")
    print("checkpoint written; training until interrupted", flush=True)
    time.sleep(600)
"""


def test_managed_spot_interruption_restarts_from_checkpoints(tmp_path: Path) -> None:
    env = make_env(tmp_path, {"OPTML_LOCAL_SPOT_INTERRUPTION_AFTER": "3"}, grace=1.0)
    try:
        checkpoints = tmp_path / "spot-checkpoints"
        code = write_code(tmp_path / "code", SPOT_SCRIPT)
        name = job_name("spot")
        env.client.create_training_job(**request(
            name, code, env.output_uri, max_runtime=60, EnableManagedSpotTraining=True,
            StoppingCondition={"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120},
            CheckpointConfig={"S3Uri": f"file://{checkpoints}"}))
        done = env.wait(name)
        assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
        statuses = [t["Status"] for t in done["SecondaryStatusTransitions"]]
        assert statuses == ["Starting", "Downloading", "Training", "Stopping", "Interrupted",
                            "Restarting", "Downloading", "Training", "Uploading", "Completed"]
        assert (checkpoints / "state.txt").read_text() == "step-7"
        assert env.artifacts(name) == {"model.txt": b"resumed step-7"}
        assert "resumed from step-7" in env.log(name)
        assert 1 <= done["BillableTimeInSeconds"] <= done["TrainingTimeInSeconds"] <= 120
        # BillableTimeInSeconds as the service reports it: both attempts' time less the price
        # table's spot saving (the table's default for a local type), within rounding
        table = load_prices(env.client.settings.local.prices_file)
        discount = table.spot_discount(table.default_region, "local").value
        attempts = sum((t["EndTime"] - t["StartTime"]).total_seconds()
                       for t in done["SecondaryStatusTransitions"] if t["Status"] == "Training")
        expected = max(1, round(attempts * float(1 - discount)))
        assert abs(done["BillableTimeInSeconds"] - expected) <= 1, (done, attempts)
        assert_nothing_left(env.state_dir)
    finally:
        stop_everything(env)
