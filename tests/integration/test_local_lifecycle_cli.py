"""Day two from a shell: the whole lifecycle of every kind through ``optml local`` -- train,
deploy, redeploy, invoke, transform, look (ps, ls, describe, logs), rm, prune -- twice in a row
with the same names, ending with nothing left: no record in the state directory, no process.

Real ``optml`` processes on the process backend, as a user runs them; the Docker twin of this
test is tests/docker/test_local_lifecycle_docker.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local_mode.state import KINDS
from tests.integration.local_training_support import (
    job_name,
    processes_using,
    request,
    write_code,
)
from tests.integration.test_local_endpoints_support import ECHO, FAST_ENV, make_model_tar

TRAIN = """
    import os
    from pathlib import Path
    print("training", flush=True)
    Path(os.environ["SM_MODEL_DIR"], "m").write_text("m")
"""


def run_optml(state: Path, *args: str, stdin: str | None = None,
              backend: str = "process") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "toolkit.cli", "local", *args,
                           "--state-dir", str(state)], capture_output=True, text=True,
                          input=stdin, timeout=180, check=False,
                          env={**os.environ, "OPTML_LOCAL_BACKEND": backend,
                               "OPTML_LOCAL_STOP_GRACE_SECONDS": "2"})


optml = run_optml


def ok(run: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert run.returncode == 0, (run.args, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    return run


def resources_left(state: Path) -> list[str]:
    """Every resource record below the state directory (``kind/name``): what CloudWatch keeps
    (``cloudwatch/``: metrics, alarms) is not a resource, and outlives them as on the service."""
    return sorted(f"{kind.name}/{item.name}" for kind in state.iterdir()
                  if kind.is_dir() and kind.name in KINDS
                  for item in kind.iterdir()) if state.is_dir() else []


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    try:
        yield state
    finally:  # a failed assertion must not leave endpoints serving
        for name in ("lc-endpoint",):
            optml(state, "endpoints", "rm", name)
        optml(state, "prune", "--yes")


def lifecycle(state: Path, tmp_path: Path, model_tar: Path, round_: int,
              backend: str = "process",
              left_on_engine: Callable[[], list[str]] = list) -> None:
    """One round of everything; the same names every round. On Docker the training job runs
    ``optml/base`` with its code from a local directory, and the endpoint serves on it."""
    def optml(state: Path, *args: str, stdin: str | None = None
              ) -> subprocess.CompletedProcess[str]:
        return run_optml(state, *args, stdin=stdin, backend=backend)

    # -- a training job, from a job file, followed to its end
    body = request("lc-train", write_code(tmp_path / f"code-{round_}", TRAIN),
                   (tmp_path / "output").as_uri())
    if backend == "docker":
        body["AlgorithmSpecification"]["TrainingImage"] = "optml/base:latest"
    job = tmp_path / f"train-{round_}.json"
    job.write_text(json.dumps(body))
    trained = ok(optml(state, "train", str(job), "--wait"))
    assert trained.stdout.splitlines()[0].endswith(f" on {backend}")
    assert "Training job lc-train: Completed" in trained.stdout

    # -- deploy, refuse a second deploy of the name, replace it
    envs = [x for k, v in FAST_ENV.items() for x in ("--env", f"{k}={v}")]
    ok(optml(state, "deploy", "lc-endpoint", "--model-data", str(model_tar), *envs))
    again = optml(state, "deploy", "lc-endpoint", "--model-data", str(model_tar), *envs)
    assert again.returncode == 1 and "--replace" in again.stderr
    assert len(again.stderr.splitlines()) == 1, again.stderr
    replaced = ok(optml(state, "deploy", "lc-endpoint", "--model-data", str(model_tar),
                        "--replace", *envs))
    assert "InService" in replaced.stdout

    # -- group options go to the subcommand; one it cannot use is refused, not ignored
    listed = json.loads(ok(optml(state, "endpoints", "-o", "json", "--status", "inservice",
                                 "ls")).stdout)
    assert [e["EndpointName"] for e in listed["Endpoints"]] == ["lc-endpoint"]
    refused = optml(state, "endpoints", "--status", "failed", "describe", "lc-endpoint")
    assert refused.returncode == 2 and "does not apply" in refused.stderr

    # -- what runs, as a table and as JSON
    ps = ok(optml(state, "ps"))
    assert "endpoint" in ps.stdout and "lc-endpoint" in ps.stdout and "InService" in ps.stdout
    running = json.loads(ok(optml(state, "ps", "-o", "json")).stdout)["Resources"]
    assert [(r["Kind"], r["Name"]) for r in running] == [("endpoints", "lc-endpoint")]
    assert running[0]["Url"].startswith("http://127.0.0.1:")

    # -- invoke with the body on stdin
    invoked = ok(optml(state, "invoke", "lc-endpoint", "--body", "@-", "--content-type",
                       "text/plain", stdin=f"round {round_}"))
    assert json.loads(invoked.stdout)["body"] == f"round {round_}"

    # -- a transform job against the deployed model
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / "a.txt").write_text("x\ny\n")
    transform = tmp_path / "transform.yaml"
    transform.write_text(f"""
TransformJobName: placeholder
ModelName: lc-endpoint
TransformInput:
  DataSource: {{S3DataSource: {{S3DataType: S3Prefix, S3Uri: "{(tmp_path / 'in').as_uri()}"}}}}
  SplitType: Line
TransformOutput: {{S3OutputPath: "{(tmp_path / f'out-{round_}').as_uri()}"}}
TransformResources: {{InstanceType: local, InstanceCount: 1}}
""")
    done = ok(optml(state, "transform", str(transform), "--wait", "--name", "lc-transform"))
    assert f"Created transform job lc-transform on {backend}" in done.stdout
    assert "Transform job lc-transform: Completed" in done.stdout

    # -- every kind lists, describes and (jobs, endpoints) shows its logs
    for group, name in (("training-jobs", "lc-train"), ("transform-jobs", "lc-transform"),
                        ("endpoints", "lc-endpoint"), ("endpoint-configs", "lc-endpoint"),
                        ("models", "lc-endpoint")):
        listed = json.loads(ok(optml(state, group, "-o", "json")).stdout)
        assert name in json.dumps(listed), (group, listed)
        assert name in ok(optml(state, group, "ls")).stdout
        described = json.loads(ok(optml(state, group, "describe", name)).stdout)
        assert name in described.values()
        ok(optml(state, group, "describe", name, "-o", "table"))
    logs = ok(optml(state, "training-jobs", "logs", "lc-train", "--timestamps", "--since",
                    "1h", "--tail", "3"))
    assert len(logs.stdout.splitlines()) == 3
    assert all(line[:4].isdigit() for line in logs.stdout.splitlines())
    endpoint_logs = ok(optml(state, "endpoints", "logs", "lc-endpoint", "--since", "1h",
                             "--timestamps")).stdout.splitlines()
    assert endpoint_logs and all(line[:4].isdigit() and " AllTraffic-" in line
                                 for line in endpoint_logs)
    assert ok(optml(state, "training-jobs", "wait", "lc-train")).returncode == 0

    # -- remove: a running endpoint goes with the model and config deploy made for it
    removed = ok(optml(state, "endpoints", "rm", "lc-endpoint"))
    assert "model lc-endpoint" in removed.stdout and "endpoint config lc-endpoint" in \
        removed.stdout
    ok(optml(state, "training-jobs", "rm", "lc-train"))
    assert optml(state, "training-jobs", "rm", "lc-train").returncode == 1
    # rm itself leaves nothing running (prune below would sweep what it leaked)
    assert processes_using(state) == []
    assert left_on_engine() == []

    # -- prune: what is over (the transform job), shown first by a dry run
    dry = ok(optml(state, "prune", "--dry-run"))
    assert "lc-transform" in dry.stdout
    planned = json.loads(ok(optml(state, "prune", "--dry-run", "-o", "json")).stdout)
    assert {"Kind": "transform-jobs", "Name": "lc-transform"}.items() <= \
        planned["Removed"][0].items() and planned["DryRun"] is True
    assert "transform-jobs/lc-transform" in resources_left(state)
    assert optml(state, "prune").returncode == 2  # no terminal, no --yes: refused
    ok(optml(state, "prune", "--yes"))

    assert resources_left(state) == []
    # the endpoint's metrics stay, as CloudWatch keeps a deleted endpoint's
    assert (state / "cloudwatch" / "endpoints" / "lc-endpoint.jsonl").is_file()
    assert processes_using(state) == []


def test_the_whole_lifecycle_twice_with_the_same_names_leaves_nothing(
        state: Path, tmp_path: Path) -> None:
    model_tar = make_model_tar(tmp_path / "model.tar.gz", ECHO, {"value.txt": "lc"})
    for round_ in (1, 2):
        lifecycle(state, tmp_path, model_tar, round_)


def test_rm_refuses_a_running_job_unless_forced(state: Path, tmp_path: Path) -> None:
    body = request(job_name("lc"), write_code(tmp_path / "code", "import time\ntime.sleep(60)\n"),
                   (tmp_path / "output").as_uri())
    job = tmp_path / "slow.json"
    job.write_text(json.dumps(body))
    ok(optml(state, "train", str(job)))
    refused = optml(state, "training-jobs", "rm", body["TrainingJobName"])
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    ok(optml(state, "training-jobs", "rm", "--force", body["TrainingJobName"]))
    assert resources_left(state) == []
    assert processes_using(state) == []
