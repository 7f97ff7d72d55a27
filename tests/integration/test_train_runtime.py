"""``optml train`` as a real process on a relocated /opt/ml tree, running real user scripts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.trainjob import TrainJob
from toolkit.pids import pid_alive
from toolkit.training.arguments import to_arguments
from toolkit.training.config import decode_hyperparameter

DUMP_SCRIPT = """
import json, os, sys
out = os.environ["SM_MODEL_DIR"]
with open(os.path.join(out, "argv.json"), "w") as f:
    json.dump(sys.argv[1:], f)
with open(os.path.join(out, "env.json"), "w") as f:
    json.dump({k: v for k, v in os.environ.items()}, f)
"""


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.02)


def test_environment_of_user_code(tmp_path: Path) -> None:
    job = TrainJob.create(
        tmp_path, hyperparameters={"batch-size": "64", "lr": "0.01", "my.opt": '"x y"',
                                   "sagemaker_program": '"train.py"',
                                   "sagemaker_torch_distributed_enabled": "false"},
        channels={"train": {"TrainingInputMode": "File"}, "my-val": {"TrainingInputMode": "File"}},
        code={"train.py": DUMP_SCRIPT})
    result = job.run(TRAINING_JOB_NAME="job-1")
    assert result.returncode == 0, result.stderr
    env = json.loads((job.layout.model_dir / "env.json").read_text())
    root = str(tmp_path)
    expected = {
        "SM_MODEL_DIR": f"{root}/model", "SM_INPUT_DIR": f"{root}/input",
        "SM_INPUT_CONFIG_DIR": f"{root}/input/config", "SM_OUTPUT_DIR": f"{root}/output",
        "SM_OUTPUT_DATA_DIR": f"{root}/output/data",
        "SM_OUTPUT_INTERMEDIATE_DIR": f"{root}/output/intermediate",
        "SM_CHANNELS": '["my-val","train"]',
        "SM_CHANNEL_TRAIN": f"{root}/input/data/train",
        "SM_CHANNEL_MY-VAL": f"{root}/input/data/my-val",
        "SM_CHANNEL_MY_VAL": f"{root}/input/data/my-val",
        "SM_HP_BATCH-SIZE": "64", "SM_HP_BATCH_SIZE": "64", "SM_HP_LR": "0.01",
        "SM_HP_MY.OPT": "x y", "SM_HP_MY_OPT": "x y",
        "SM_HPS": '{"batch-size":64,"lr":0.01,"my.opt":"x y"}',
        "SM_USER_ARGS": '["--batch-size","64","--lr","0.01","--my.opt","x y"]',
        "SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1",
        "SM_CURRENT_INSTANCE_TYPE": "ml.m5.large", "SM_NETWORK_INTERFACE_NAME": "eth0",
        "SM_NUM_GPUS": "0", "SM_LOG_LEVEL": "20", "SM_MODULE_NAME": "train",
        "SM_MODULE_DIR": f"{root}/code", "SM_USER_ENTRY_POINT": "train.py",
        "SM_FRAMEWORK_PARAMS": '{"sagemaker_torch_distributed_enabled":false}',
        "SM_CHECKPOINT_DIR": f"{root}/checkpoints",
        "TRAINING_JOB_NAME": "job-1", "PYTHONUNBUFFERED": "1",
    }
    for name, value in expected.items():
        assert env.get(name) == value, name
    assert int(env["SM_NUM_CPUS"]) >= 1
    assert json.loads(env["SM_RESOURCE_CONFIG"])["current_host"] == "algo-1"
    assert set(json.loads(env["SM_INPUT_DATA_CONFIG"])) == {"train", "my-val"}
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["is_master"] is True
    assert training_env["master_hostname"] == "algo-1"
    assert training_env["job_name"] == "job-1"
    assert training_env["hyperparameters"] == {"batch-size": 64, "lr": 0.01, "my.opt": "x y"}
    assert env["PYTHONPATH"].split(":")[0] == f"{root}/code"
    assert (tmp_path / "checkpoints").is_dir()
    assert (tmp_path / "output" / "data").is_dir()


TRICKY = {
    "space": '"two words"',
    "quotes": json.dumps("it's \"quoted\""),
    "unicode": json.dumps("naïve ☃ 日本"),
    "json_in_string": json.dumps('{"a": [1, 2]}'),
    "flag": "true",
    "off": "False",
    "list": "[1, 2, 3]",
    "dict": '{"k": "v w"}',
    "plain": "not json at all",
    "dollar": '"$HOME `id` ; rm -rf /"',
    "empty": '""',
    "neg": "-1",
}


def test_argv_for_tricky_hyperparameters(tmp_path: Path) -> None:
    hps = dict(TRICKY)
    hps.update({f"h{i:03d}": str(i) for i in range(100 - len(hps))})
    assert len(hps) == 100
    job = TrainJob.create(tmp_path, hyperparameters=hps, code={"train.py": DUMP_SCRIPT})
    result = job.run(SAGEMAKER_PROGRAM="train.py")
    assert result.returncode == 0, result.stderr
    argv = json.loads((job.layout.model_dir / "argv.json").read_text())
    assert argv == to_arguments({k: decode_hyperparameter(v) for k, v in hps.items()})
    pairs = dict(zip(argv[::2], argv[1::2]))
    assert pairs["--space"] == "two words"
    assert pairs["--quotes"] == "it's \"quoted\""
    assert pairs["--unicode"] == "naïve ☃ 日本"
    assert pairs["--json_in_string"] == '{"a": [1, 2]}'
    assert pairs["--flag"] == "True" and pairs["--off"] == "False"
    assert pairs["--list"] == "[1,2,3]" and pairs["--dict"] == '{"k":"v w"}'
    assert pairs["--plain"] == "not json at all"
    assert pairs["--dollar"] == "$HOME `id` ; rm -rf /"
    assert pairs["--empty"] == "" and pairs["--neg"] == "-1"
    assert argv[::2][:len(TRICKY)] == [f"--{k}" for k in TRICKY]  # job order kept


def test_python_exception_writes_failure_file(tmp_path: Path) -> None:
    script = "def train():\n    raise ValueError('learning rate must be positive')\ntrain()\n"
    job = TrainJob.create(tmp_path, code={"train.py": script})
    result = job.run(SAGEMAKER_PROGRAM="train.py")
    assert result.returncode == 1
    first = job.failure.splitlines()[0]
    assert first == ("AlgorithmError: exit code 1: ValueError: learning rate must be positive")
    assert "Traceback (most recent call last)" in job.failure
    assert "train.py" in job.failure[:1024]
    assert "ValueError: learning rate must be positive" in result.stderr


def test_nonzero_sys_exit(tmp_path: Path) -> None:
    job = TrainJob.create(tmp_path, code={"train.py": "import sys\nsys.exit(3)\n"})
    result = job.run(SAGEMAKER_PROGRAM="train.py")
    assert result.returncode == 3
    assert job.failure.startswith("AlgorithmError: exit code 3")


def test_sigkill_is_reported_as_out_of_memory(tmp_path: Path) -> None:
    script = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    job = TrainJob.create(tmp_path, code={"train.py": script})
    result = job.run(SAGEMAKER_PROGRAM="train.py")
    assert result.returncode == 137
    assert "exit code 137 (SIGKILL)" in job.failure.splitlines()[0]
    assert "out-of-memory" in job.failure[:1024]


def test_user_written_failure_file_wins(tmp_path: Path) -> None:
    script = ("import os\nopen(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w')"
              ".write('my own reason')\nraise SystemExit(4)\n")
    job = TrainJob.create(tmp_path, code={"train.py": script})
    assert job.run(SAGEMAKER_PROGRAM="train.py").returncode == 4
    assert job.failure == "my own reason"


def test_success_leaves_no_failure_file_and_clears_a_stale_one(tmp_path: Path) -> None:
    job = TrainJob.create(tmp_path, code={"train.py": "print('ok')\n"})
    job.layout.failure_file.parent.mkdir(parents=True)
    job.layout.failure_file.write_text("stale from an earlier run")
    result = job.run(SAGEMAKER_PROGRAM="train.py")
    assert result.returncode == 0 and result.stdout == "ok\n"
    assert not job.layout.failure_file.exists()


@pytest.mark.parametrize(("file", "content", "field"), [
    ("hyperparameters.json", "{not json", None),
    ("hyperparameters.json", '{"lr": 0.1}', "lr"),
    ("inputdataconfig.json", '{"train": {"TrainingInputMode": "Stream"}}',
     "train.TrainingInputMode"),
    ("resourceconfig.json", '{"current_host": "algo-3", "hosts": ["algo-1"], '
                            '"network_interface_name": "eth0"}', "current_host"),
    ("resourceconfig.json", '{"hosts": ["algo-1"], "network_interface_name": "eth0"}',
     "current_host"),
])
def test_config_errors_name_file_and_field(tmp_path: Path, file: str, content: str,
                                           field: str | None) -> None:
    job = TrainJob.create(tmp_path, code={"train.py": "raise SystemExit('must not run')\n"})
    (job.layout.input_config_dir / file).write_text(content)
    result = job.run(SAGEMAKER_PROGRAM="train.py")
    assert result.returncode == 2
    assert job.failure.startswith("ConfigError: ")
    assert file in job.failure
    if field:
        assert f"field '{field}'" in job.failure
    assert "must not run" not in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    job = TrainJob.create(tmp_path, code={"train.py": "pass\n"})
    job.layout.resource_config_file.unlink()
    result = job.run(SAGEMAKER_PROGRAM="train.py")
    assert result.returncode == 2
    assert "resourceconfig.json: file is missing" in job.failure


def test_missing_program(tmp_path: Path) -> None:
    job = TrainJob.create(tmp_path, code={})
    assert job.run().returncode == 2
    assert "sagemaker_program" in job.failure and "SAGEMAKER_PROGRAM" in job.failure
    assert job.run(SAGEMAKER_PROGRAM="nope.py").returncode == 1
    assert "'nope.py' not found" in job.failure


def test_env_program_wins_over_hyperparameter(tmp_path: Path) -> None:
    job = TrainJob.create(tmp_path, hyperparameters={"sagemaker_program": '"wrong.py"'},
                          code={"right.py": "print('right')\n", "wrong.py": "print('wrong')\n"})
    result = job.run(SAGEMAKER_PROGRAM="right.py")
    assert result.returncode == 0 and result.stdout == "right\n"


def test_shell_script_and_module_entry_points(tmp_path: Path) -> None:
    job = TrainJob.create(tmp_path / "sh", hyperparameters={"x": '"a b"'},
                          code={"run.sh": 'printf "%s|" "$@"\n'})
    result = job.run(SAGEMAKER_PROGRAM="run.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "--x|a b|"
    pkg = TrainJob.create(tmp_path / "pkg", code={
        "trainer/__init__.py": "", "trainer/__main__.py": "import sys; print(sys.argv[1:])\n"})
    result = pkg.run(SAGEMAKER_PROGRAM="trainer")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_stderr_is_relayed_line_exactly(tmp_path: Path) -> None:
    script = """
import sys, os
long = "x" * 200000
for i in range(200):
    sys.stderr.write(f"metric: loss={i/1000:.4f} step={i}\\n")
sys.stderr.write(long + "\\n")
sys.stderr.write("unicode ☃ line\\n")
sys.stderr.buffer.write(b"raw \\xff\\xfe bytes\\n")
sys.stderr.write("no newline at end")
"""
    job = TrainJob.create(tmp_path, code={"train.py": script})
    proc = subprocess.run(job.command(), env=job.env(SAGEMAKER_PROGRAM="train.py"),
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0
    lines = proc.stderr.split(b"\n")
    metrics = [line for line in lines if line.startswith(b"metric: ")]
    assert metrics == [f"metric: loss={i/1000:.4f} step={i}".encode() for i in range(200)]
    assert b"x" * 200000 in lines
    assert "unicode ☃ line".encode() in lines
    assert b"raw \xff\xfe bytes" in lines
    assert proc.stderr.endswith(b"no newline at end")


TRAP_SCRIPT = """
import os, signal, sys, time
ckpt = os.path.join(os.environ["SM_CHECKPOINT_DIR"], "last.ckpt")
def on_term(signum, frame):
    with open(ckpt, "w") as f:
        f.write("step=42")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
open(os.path.join(os.environ["SM_MODEL_DIR"], "ready"), "w").close()
while True:
    time.sleep(0.05)
"""

IGNORE_SCRIPT = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
with open(os.path.join(os.environ["SM_MODEL_DIR"], "grandchild.pid"), "w") as f:
    f.write(str(child.pid))
open(os.path.join(os.environ["SM_MODEL_DIR"], "ready"), "w").close()
time.sleep(600)
"""


def test_sigterm_is_forwarded_and_checkpoint_written(tmp_path: Path) -> None:
    job = TrainJob.create(tmp_path, code={"train.py": TRAP_SCRIPT})
    proc = job.start(SAGEMAKER_PROGRAM="train.py")
    try:
        _wait_for(job.layout.model_dir / "ready")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert (tmp_path / "checkpoints" / "last.ckpt").read_text() == "step=42"
    assert not job.layout.failure_file.exists()


def test_sigterm_during_set_up_stops_the_job_before_the_program_starts(tmp_path: Path) -> None:
    """A stop while train still waits for its peers (or installs requirements) ends the job at
    once and never starts the program; as PID 1 an unhandled SIGTERM would be ignored and the
    job would run on."""
    marker = "started"
    job = TrainJob.create(tmp_path, hosts=["algo-1", "optml-peer.invalid"],
                          code={"train.py": f"open({marker!r}, 'w').close()\n"})
    proc = job.start(SAGEMAKER_PROGRAM="train.py", OPTML_HOST_RESOLVE_TIMEOUT="300")
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the set-up is under way once it waits for the peer
            if "waiting for host(s) to resolve" in line:
                break
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)  # not the 300 s the peer would be waited for
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert job.failure.startswith("Stopped: SIGTERM received before the program started")
    assert not (job.layout.code_dir / marker).exists()


def test_sigterm_ignored_is_killed_after_grace(tmp_path: Path) -> None:
    job = TrainJob.create(tmp_path, code={"train.py": IGNORE_SCRIPT})
    proc = job.start(SAGEMAKER_PROGRAM="train.py", OPTML_STOP_GRACE_SECONDS="1")
    try:
        _wait_for(job.layout.model_dir / "ready")
        grandchild = int((job.layout.model_dir / "grandchild.pid").read_text())
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 137
    first, second = job.failure.splitlines()[:2]
    assert first.startswith("AlgorithmError: exit code 137 (SIGKILL)")
    assert second == ("Stopped: SIGTERM received; the program did not exit within the 1 s grace "
                      "period and was killed.")
    deadline = time.monotonic() + 10
    while pid_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(grandchild), "the whole process group must be killed"


def test_entrypoint_runs_other_commands_supervised(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "toolkit.cli", "entrypoint"]
    ok = subprocess.run([*base, sys.executable, "-c", "import sys; print('hi'); sys.exit(7)"],
                        capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 7 and ok.stdout == "hi\n"
    missing = subprocess.run([*base, "optml-no-such-command"], capture_output=True, text=True,
                             timeout=60, check=False)
    assert missing.returncode == 127
    assert "command not found" in missing.stderr


ZOMBIE_PROBE = """
import os, subprocess, time
subprocess.Popen(["sh", "-c", "sleep 0.2 & exit 0"]).wait()   # orphan re-parented to PID 1
time.sleep(1.0)
def state(pid):
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
print(sum(1 for p in os.listdir("/proc") if p.isdigit() and state(p) == "Z"))
"""


def _in_pid_namespace(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", *argv],
                          capture_output=True, text=True, timeout=60, check=False)


def test_entrypoint_as_pid1_reaps_orphans() -> None:
    control = _in_pid_namespace(
        [sys.executable, "-c",
         f"import subprocess, sys; sys.exit(subprocess.call([sys.executable, '-c', {ZOMBIE_PROBE!r}]))"])
    assert control.returncode == 0, control.stderr
    assert control.stdout.strip() == "1", "without reaping, the orphan stays a zombie"
    ours = _in_pid_namespace([sys.executable, "-m", "toolkit.cli", "entrypoint",
                              sys.executable, "-c", ZOMBIE_PROBE])
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.strip() == "0"


def test_train_py_is_the_default_program(tmp_path: Path) -> None:
    job = TrainJob.create(tmp_path, code={"train.py": "print('default program ran')\n"})
    result = job.run()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "default program ran\n"
