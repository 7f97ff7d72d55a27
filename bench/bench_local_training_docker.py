"""A no-op training job end to end: optml local mode's Docker backend vs a bare ``docker run``.

Run:  .venv/bin/python bench/bench_local_training_docker.py [--repeat 5] [--sdk]

Image: ``optml-bench/noop-trainer`` (the Debian stand-in + a ``train`` script that writes one
file into /opt/ml/model), built here from ``optml/python-standin:bookworm`` (make it with
scripts/build-base-standin.sh).

- peer ``docker run``: ``docker run --rm -v TREE:/opt/ml IMAGE train`` on a tree with the same
  config files, timed from launch until the command returns (the model file is then on disk).
- optml: ``create_training_job`` on the Docker backend until DescribeTrainingJob says Completed
  (network, container, config files, logs, model.tar.gz and output.tar.gz written, teardown).
- ``--sdk``: the SageMaker Python SDK's local mode (``Estimator.fit`` with file:// input and
  output, docker-compose underneath), timed around ``fit`` only (not the SDK's import).
The runs are interleaved ``--repeat`` times; best and median are printed, and the ratio of
medians (target: optml <= 2x the bare run). The machine is shared: compare within one run.
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
from pathlib import Path

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


def bare_docker_run(root: Path) -> float:
    tree = root / f"bare-{uuid.uuid4().hex[:8]}"
    config = tree / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text("{}")
    (config / "inputdataconfig.json").write_text("{}")
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    (tree / "model").mkdir()
    (tree / "output" / "data").mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", "--hostname", "algo-1", "-v", f"{tree}:/opt/ml",
                    IMAGE, "train"], check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    assert (tree / "model" / "model.txt").exists()
    return elapsed


def optml_job(client: object, root: Path) -> float:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    client.create_training_job(  # type: ignore[attr-defined]
        TrainingJobName=name, RoleArn="arn:aws:iam::000000000000:role/local",
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": (root / "output").as_uri()},
        ResourceConfig={"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    while True:
        status = client.describe_training_job(  # type: ignore[attr-defined]
            TrainingJobName=name)["TrainingJobStatus"]
        if status in {"Completed", "Failed", "Stopped"}:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
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


def report(label: str, values: list[float]) -> None:
    print(f"{label:<28} best {min(values):6.2f} s   median {statistics.median(values):6.2f} s")


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
        bare_docker_run(root)  # warm the engine's caches for both
        optml_job(client, root)
        bare, ours, sdk = [], [], []
        for _ in range(args.repeat):
            bare.append(bare_docker_run(root))
            ours.append(optml_job(client, root))
            if args.sdk:
                seconds = sdk_job(root)
                if seconds is not None:
                    sdk.append(seconds)
        report("docker run IMAGE train", bare)
        report("optml local (docker)", ours)
        if sdk:
            report("SDK local mode (fit)", sdk)
        ratio = statistics.median(ours) / statistics.median(bare)
        print(f"ratio optml/docker-run (median): {ratio:.2f}x  (target <= 2x)")
        if sdk:
            print(f"ratio SDK/optml (median): {statistics.median(sdk) / statistics.median(ours):.2f}x")


if __name__ == "__main__":
    main()
