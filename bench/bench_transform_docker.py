"""A one-file batch transform end to end: optml local mode's Docker backend vs the same work
done by hand around a bare ``docker run``, interleaved in one run.

- peer (bare): ``docker run -d -p 127.0.0.1::8080 -v MODEL:/opt/ml/model IMAGE serve``, poll
  ``GET /ping`` every 10 ms until 200, ``POST /invocations`` with the whole input file
  (``text/csv``), write the response as ``<file>.out``, ``docker rm -f``: what a transform of one
  small file needs, with nothing else.
- optml: ``create_transform_job`` (``SplitType Line``, ``MultiRecord``, ``file://`` in and out)
  until DescribeTransformJob says Completed (polled every 20 ms): the runner, the model's
  artifact unpacked, the container, the health check, the request, the output, the teardown.
  Each Create is handed to a runner that waits ready (docs/local-mode.md); the row "runner
  started at Create" is a second client with ``OPTML_LOCAL_WARM_RUNNERS=false``.

The image is ``optml/sklearn`` serving a decision tree fitted here (its default handlers), the
input one CSV file of ``--lines`` rows; the two ``.out`` files are compared byte for byte. The
ratio of medians is printed against the target (optml <= 1.5x the bare run). Everything either
side started is removed at the end, also on failure or Ctrl-C.

    .venv/bin/python bench/bench_transform_docker.py [--repeat 5] [--lines 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_transform_vs_sdk import (
    ENV,
    TERMINAL,
    model_tarball,
    remove_ours,
    write_inputs,
)

from local_mode.sagemaker import SageMakerClient
from toolkit.settings import Settings

BENCH_LABEL = "org.optml.bench=transform-docker"
TARGET = 1.5


def bare_transform(image: str, model_dir: Path, source: Path, out_dir: Path) -> float:
    """Seconds for the hand-made transform of ``source`` (see the module docstring)."""
    started = time.perf_counter()
    env = [arg for key, value in ENV.items() for arg in ("-e", f"{key}={value}")]
    container = subprocess.run(
        ["docker", "run", "-d", "--label", BENCH_LABEL, "-p", "127.0.0.1::8080",
         "-v", f"{model_dir}:/opt/ml/model", *env, image, "serve"],
        check=True, capture_output=True, text=True).stdout.strip()
    try:
        port = subprocess.run(["docker", "port", container, "8080/tcp"], check=True,
                              capture_output=True, text=True).stdout.split(":")[-1].strip()
        base = f"http://127.0.0.1:{port}"
        with requests.Session() as session:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if session.get(f"{base}/ping", timeout=2).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the bare container never answered /ping")
                time.sleep(0.01)
            response = session.post(f"{base}/invocations", data=source.read_bytes(),
                                    headers={"Content-Type": "text/csv",
                                             "Accept": "text/csv"}, timeout=60)
            response.raise_for_status()
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{source.name}.out").write_bytes(response.content)
    finally:
        subprocess.run(["docker", "rm", "-f", container], check=True,
                       stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def optml_transform(sm: SageMakerClient, inputs: Path, output: Path) -> float:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    sm.create_transform_job(
        TransformJobName=name, ModelName="bench", BatchStrategy="MultiRecord",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": inputs.as_uri()}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": output.as_uri(), "Accept": "text/csv"},
        TransformResources={"InstanceType": "local", "InstanceCount": 1})
    while (described := sm.describe_transform_job(TransformJobName=name))[
            "TransformJobStatus"] not in TERMINAL:
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if described["TransformJobStatus"] != "Completed":
        raise RuntimeError(f"{name}: {described['TransformJobStatus']}: "
                           f"{described.get('FailureReason')}")
    return elapsed


def remove_bare() -> None:
    listed = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={BENCH_LABEL}"],
                            capture_output=True, text=True, check=False).stdout.split()
    if listed:
        subprocess.run(["docker", "rm", "-f", *listed], check=False, stdout=subprocess.DEVNULL)


def report(label: str, values: list[float]) -> None:
    print(f"{label:<40} best {min(values):6.2f} s   median {statistics.median(values):6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="optml/sklearn:latest")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lines", type=int, default=100)
    args = parser.parse_args()
    bare: list[float] = []
    ours: list[float] = []
    cold: list[float] = []
    with tempfile.TemporaryDirectory(prefix="optml-bench-") as tmp:
        root = Path(tmp)
        tarball = root / "model" / "model.tar.gz"
        model_tarball(tarball)
        model_dir = root / "model-dir"
        model_dir.mkdir()
        with tarfile.open(tarball) as archive:
            archive.extractall(model_dir, filter="data")
        write_inputs(root / "input", 1, args.lines)
        source = next((root / "input").iterdir())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "OPTML_"))}
        state = root / "state"
        env.update(OPTML_LOCAL_STATE_DIR=str(state))
        sm = SageMakerClient(Settings.from_environ(env), backend="docker")
        sm_cold = SageMakerClient(Settings.from_environ({**env, "OPTML_LOCAL_WARM_RUNNERS": "false"}),
                                  backend="docker")
        try:
            sm.create_model(ModelName="bench", PrimaryContainer={
                "Image": args.image, "ModelDataUrl": tarball.as_uri(), "Environment": ENV})
            bare_transform(args.image, model_dir, source, root / "warm-bare")  # warm both
            optml_transform(sm, root / "input", root / "warm-ours")
            for index in range(args.repeat):
                bare.append(bare_transform(args.image, model_dir, source,
                                           root / f"bare-{index}"))
                ours.append(optml_transform(sm, root / "input", root / f"ours-{index}"))
                cold.append(optml_transform(sm_cold, root / "input", root / f"cold-{index}"))
                mine = (root / f"ours-{index}" / f"{source.name}.out").read_bytes()
                theirs = (root / f"bare-{index}" / f"{source.name}.out").read_bytes()
                if mine != theirs:
                    raise RuntimeError("the .out files of optml and the bare run differ")
        finally:
            for job in sm.store.list("transform-jobs"):
                if job.describe()["TransformJobStatus"] not in TERMINAL:
                    sm.stop_transform_job(TransformJobName=job.name)
            remove_ours(state)
            remove_bare()
    print(f"image {args.image}; one CSV file of {args.lines} lines; SplitType Line, MultiRecord;"
          f" {args.repeat} interleaved rounds; load average {os.getloadavg()[0]:.2f}")
    report("bare docker run + /ping + one POST + rm", bare)
    report("optml local transform (docker)", ours)
    report("  runner started at Create", cold)
    ratio = statistics.median(ours) / statistics.median(bare)
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"ratio optml/bare (median): {ratio:.2f}x  (target <= {TARGET}x: {verdict})")
    print(f"ratio optml with the runner started at Create / bare (median): "
          f"{statistics.median(cold) / statistics.median(bare):.2f}x")


if __name__ == "__main__":
    main()
