"""A no-op training job end to end: optml local mode's Docker backend vs a bare ``docker run``.

Run:  .venv/bin/python bench/bench_local_training_docker.py [--repeat 5] [--sdk]

Image: ``optml-bench/noop-trainer`` (the Debian stand-in + a ``train`` script that writes one
file into /opt/ml/model), built here from ``optml/python-standin:bookworm`` (make it with
scripts/build-base-standin.sh).

- peer ``docker run``: ``docker run --rm -v TREE:/opt/ml IMAGE train`` on a tree with the same
  config files, timed from launch until the command returns (the model file is then on disk).
- optml: ``create_training_job`` on the Docker backend until DescribeTrainingJob says Completed
  (network, container, config files, logs, model.tar.gz and output.tar.gz written, teardown).
  By default a client hands each Create to a runner that waits ready (started once the
  previous job's runner had started; docs/local-mode.md); the row "runner started at its
  Create" is a second client with ``OPTML_LOCAL_WARM_RUNNERS=false``, as every job of a
  one-job process runs (and as every job ran before warm runners).
- ``--sdk``: the SageMaker Python SDK's local mode (``Estimator.fit`` with file:// input and
  output, docker-compose underneath), timed around ``fit`` only (not the SDK's import).
The runs are interleaved ``--repeat`` times; best and median are printed, and the ratio of
medians (target: optml <= 1.5x the bare run). The machine is shared: compare within one run.

Where optml's time goes is printed per phase (medians over the runs), from clocks outside the
runner so nothing is instrumented: the create call; the runner process up (its start marker's
mtime); the job's SecondaryStatusTransitions; the engine's own events for the job's container
(create, start, die, destroy -- ``docker events`` with nanosecond times); and the client seeing
Completed. The bare run's container events are timed the same way, so the two compare phase by
phase.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

IMAGE = "optml-bench/noop-trainer:latest"
STANDIN = "optml/python-standin:bookworm"
TRAIN = """#!/usr/bin/env python3
import json, pathlib
host = json.loads(pathlib.Path("/opt/ml/input/config/resourceconfig.json").read_text())
pathlib.Path("/opt/ml/model/model.txt").write_text("trained on " + host["current_host"])
"""
SDK_JOB = r"""
import sys, time
from sagemaker.estimator import Estimator
from sagemaker.local import LocalSession
session = LocalSession()
session.config = {"local": {"local_code": True}}
estimator = Estimator(image_uri=sys.argv[1], role="arn:aws:iam::000000000000:role/local",
                      instance_count=1, instance_type="local", output_path=sys.argv[2],
                      sagemaker_session=session)
started = time.perf_counter()
estimator.fit(logs=False)
print("SDK_SECONDS", time.perf_counter() - started)
"""


def build_image() -> None:
    import docker

    client = docker.from_env(timeout=600)
    try:
        client.images.get(STANDIN)
    except docker.errors.ImageNotFound:
        sys.exit(f"{STANDIN} is missing: run scripts/build-base-standin.sh first")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as context:
        for name, text, mode in (("Dockerfile", f"FROM {STANDIN}\nCOPY train /usr/local/bin/train\n",
                                  0o644), ("train", TRAIN, 0o755)):
            info = tarfile.TarInfo(name)
            data = text.encode()
            info.size, info.mode = len(data), mode
            context.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    client.images.build(fileobj=buffer, custom_context=True, tag=IMAGE, rm=True,
                        network_mode="none")
    client.close()


def bare_docker_run(root: Path, phases: list[dict[str, float]] | None = None) -> float:
    tree = root / f"bare-{uuid.uuid4().hex[:8]}"
    config = tree / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text("{}")
    (config / "inputdataconfig.json").write_text("{}")
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    (tree / "model").mkdir()
    (tree / "output" / "data").mkdir(parents=True)
    run_label = uuid.uuid4().hex
    wall_start = time.time()
    started = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", "--hostname", "algo-1", "-v", f"{tree}:/opt/ml",
                    "--label", f"optml.bench.run={run_label}", IMAGE, "train"], check=True,
                   stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if phases is not None:
        events = _engine_events(("optml.bench.run", run_label), wall_start, time.time())
        phases.append({phase: events[action] - wall_start for phase, action in (
            ("container created", "create"), ("container started", "start"),
            ("container exited", "die"), ("container removed", "destroy")) if action in events}
            | {"client saw Completed": elapsed})
    assert (tree / "model" / "model.txt").exists()
    return elapsed


PHASES = ("create call returned", "runner process up", "Starting", "container created",
          "container started", "container exited", "container removed", "Completed written",
          "client saw Completed")


def _engine_events(label: tuple[str, str], since: float, until: float) -> dict[str, float]:
    """The first time (epoch seconds) of each container event for containers with ``label``."""
    import docker

    engine = docker.from_env()
    try:
        times: dict[str, float] = {}
        for event in engine.events(since=int(since) - 1, until=int(until) + 1, decode=True,
                                   filters={"type": "container",
                                            "label": f"{label[0]}={label[1]}"}):
            times.setdefault(event["Action"], event["timeNano"] / 1e9)
        return times
    finally:
        engine.close()


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def optml_phases(root: Path, name: str, description: dict[str, Any], wall_start: float,
                 created: float, seen: float) -> dict[str, float]:
    """Seconds from the create call to each phase's end (see the module docstring)."""
    marker = root / "state" / "training-jobs" / name / "runner.started"
    transitions = {t["Status"]: t for t in description.get("SecondaryStatusTransitions", [])}
    events = _engine_events(("optml.job", name), wall_start, seen)
    points = {
        "create call returned": created,
        "runner process up": marker.stat().st_mtime if marker.exists() else None,
        "Starting": _epoch(transitions["Starting"]["StartTime"]) if "Starting" in transitions
        else None,
        "container created": events.get("create"),
        "container started": events.get("start"),
        "container exited": events.get("die"),
        "container removed": events.get("destroy"),
        "Completed written": _epoch(transitions["Completed"]["StartTime"])
        if "Completed" in transitions else None,
        "client saw Completed": seen,
    }
    return {phase: at - wall_start for phase, at in points.items() if at is not None}


def optml_job(client: object, root: Path, phases: list[dict[str, float]] | None = None) -> float:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    wall_start = time.time()
    started = time.perf_counter()
    client.create_training_job(  # type: ignore[attr-defined]
        TrainingJobName=name, RoleArn="arn:aws:iam::000000000000:role/local",
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": (root / "output").as_uri()},
        ResourceConfig={"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    created = time.time()
    while True:
        description = client.describe_training_job(  # type: ignore[attr-defined]
            TrainingJobName=name)
        status = description["TrainingJobStatus"]
        if status in {"Completed", "Failed", "Stopped"}:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if phases is not None:
        phases.append(optml_phases(root, name, description, wall_start, created, time.time()))
    if status != "Completed":
        sys.exit(f"optml job {name} ended {status}")
    assert (root / "output" / name / "output" / "model.tar.gz").exists()
    return elapsed


def sdk_job(root: Path) -> float | None:
    config = root / "sdk-config.yaml"
    config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n"
                      "      TelemetryOptOut: true\n")
    env = dict(os.environ, AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", SAGEMAKER_SUPPRESS_V2_WARNING="1",
               SAGEMAKER_USER_CONFIG_OVERRIDE=str(config))
    output = root / f"sdk-{uuid.uuid4().hex[:8]}"
    done = subprocess.run([sys.executable, "-c", SDK_JOB, IMAGE, output.as_uri()], env=env,
                          capture_output=True, text=True, cwd=root, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("SDK_SECONDS"):
            return float(line.split()[1])
    print(f"SDK local mode did not run: {done.stderr[-800:]}", file=sys.stderr)
    return None


def remove_sdk_containers() -> None:
    """The SDK's local mode leaves its docker-compose containers behind (exited); remove them."""
    listed = subprocess.run(["docker", "ps", "-aq", "--filter", f"ancestor={IMAGE}", "--filter",
                             "label=com.docker.compose.project"],
                            capture_output=True, text=True, check=False)
    ids = listed.stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)


def report(label: str, values: list[float]) -> None:
    print(f"{label:<28} best {min(values):6.2f} s   median {statistics.median(values):6.2f} s")


def report_phases(bare: list[dict[str, float]], ours: list[dict[str, float]]) -> None:
    """Median time from launch to the end of each phase, and each phase's own share."""
    print("\nphase (median seconds since launch)   bare docker run   optml local   optml step")
    previous = 0.0
    for phase in PHASES:
        mine = [p[phase] for p in ours if phase in p]
        theirs = [p[phase] for p in bare if phase in p]
        at = statistics.median(mine) if mine else None
        bare_at = f"{statistics.median(theirs):15.3f}" if theirs else f"{'':15}"
        if at is None:
            print(f"{phase:<37}{bare_at}   {'-':>11}")
            continue
        print(f"{phase:<37}{bare_at}   {at:11.3f}   {at - previous:+10.3f}")
        previous = at


def rounds(args: argparse.Namespace, client: object, cold_client: object, root: Path,
           bare: list[float], ours: list[float], cold: list[float], sdk: list[float],
           bare_phases: list[dict[str, float]], our_phases: list[dict[str, float]]) -> None:
    """The interleaved runs: bare, optml, optml with warm runners off, the SDK."""
    for _ in range(args.repeat):
        bare.append(bare_docker_run(root, bare_phases))
        ours.append(optml_job(client, root, our_phases))
        cold.append(optml_job(cold_client, root))
        if args.sdk:
            seconds = sdk_job(root)
            if seconds is not None:
                sdk.append(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sdk", action="store_true", help="also time the SDK's local mode")
    args = parser.parse_args()
    build_image()
    from local_mode.sagemaker import SageMakerClient
    from toolkit.settings import Settings

    with tempfile.TemporaryDirectory(prefix="optml-bench-") as tmp:
        root = Path(tmp)
        client = SageMakerClient(Settings.from_environ(), state_dir=root / "state",
                                 backend="docker")
        cold_client = SageMakerClient(
            Settings.from_environ({**os.environ, "OPTML_LOCAL_WARM_RUNNERS": "false"}),
            state_dir=root / "state", backend="docker")
        bare_docker_run(root)  # warm the engine's caches for all
        optml_job(client, root)  # and the first job of a client has no runner waiting
        bare: list[float] = []
        ours: list[float] = []
        cold: list[float] = []
        sdk: list[float] = []
        bare_phases: list[dict[str, float]] = []
        our_phases: list[dict[str, float]] = []
        try:
            rounds(args, client, cold_client, root, bare, ours, cold, sdk, bare_phases, our_phases)
        finally:
            remove_sdk_containers()
        report("docker run IMAGE train", bare)
        report("optml local (docker)", ours)
        report("  runner started at Create", cold)
        if sdk:
            report("SDK local mode (fit)", sdk)
        report_phases(bare_phases, our_phases)
        ratio = statistics.median(ours) / statistics.median(bare)
        verdict = "met" if ratio <= 1.5 else "MISSED"
        print(f"\nratio optml/docker-run (median): {ratio:.2f}x  (target <= 1.5x: {verdict})")
        print(f"ratio optml with the runner started at Create / docker-run (median): "
              f"{statistics.median(cold) / statistics.median(bare):.2f}x")
        if sdk:
            print(f"ratio SDK/optml (median): {statistics.median(sdk) / statistics.median(ours):.2f}x")


if __name__ == "__main__":
    main()
