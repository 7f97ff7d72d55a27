#!/usr/bin/env python3
"""Example: a multi-model endpoint -- one container serving one model per region.

Train one small linear house-price model per region (three training jobs of the same image,
run at once), publish their model.tar.gz files under one S3-style prefix, create a model with
``Mode: MultiModel`` whose ``ModelDataUrl`` is that prefix, deploy it, and invoke each region's
model with ``TargetModel``. The container holds at most two models (a demo cap, see
code/inference.py), so asking for the third makes it answer 507 and local mode unloads the
least recently used model and retries, as the service does.

    python examples/multi-model-endpoint/run.py [--backend auto|docker|process] [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import common  # examples/common.py, the examples' shared glue

IMAGE = "optml-examples/multi-model-endpoint:latest"
ENDPOINT = "multi-model-endpoint"
MAX_LOADED_MODELS = 2
"""The demo cap handed to the container (DEMO_MAX_LOADED_MODELS): fewer slots than models."""

TRUTH = {  # price in k EUR = intercept + area_m2, rooms, age_years coefficients
    "north": (50.0, [3.0, 10.0, -0.8]),
    "south": (20.0, [1.8, 5.0, -0.3]),
    "east": (80.0, [4.2, 2.0, -1.5]),
}
HOUSES = [[80.0, 3.0, 10.0], [150.0, 5.0, 40.0]]
"""The houses every region's model prices: the same input, a different answer per model."""

INVOCATIONS = ["north", "south", "east", "north"]
"""With two slots: east evicts north (least recently used), then north evicts south."""


def write_data(root: Path) -> None:
    """Per region: ``<region>/train/train.csv`` and ``<region>/validation/validation.csv``,
    price first, then area_m2, rooms, age_years (no header)."""
    rng = np.random.default_rng(8)
    for region, (intercept, coef) in TRUTH.items():
        n = 200
        x = np.column_stack([rng.uniform(40, 200, n), rng.integers(1, 7, n).astype(float),
                             rng.uniform(0, 80, n)])
        y = intercept + x @ np.asarray(coef) + rng.normal(0, 5.0, n)
        rows = np.column_stack([y, x])
        for name, part in (("train", rows[:160]), ("validation", rows[160:])):
            (root / region / name).mkdir(parents=True)
            np.savetxt(root / region / name / f"{name}.csv", part, delimiter=",", fmt="%.6f")


def train_all(sm: Any, requests: list[dict[str, Any]], state: Path) -> list[dict[str, Any]]:
    """Start every training job, then wait for all of them (they run side by side)."""
    for request in requests:
        sm.create_training_job(**request)
    jobs = []
    for request in requests:
        name = request["TrainingJobName"]
        while (job := sm.describe_training_job(TrainingJobName=name))["TrainingJobStatus"] \
                not in ("Completed", "Failed", "Stopped"):
            time.sleep(0.2)
        if job["TrainingJobStatus"] != "Completed":
            log = state / "training-jobs" / name / "logs" / "all.log"
            raise SystemExit(f"training job {name} {job['TrainingJobStatus']}: "
                             f"{job.get('FailureReason')}\nlog: {log}")
        jobs.append(dict(job))
    return jobs


def publish(jobs: list[dict[str, Any]], prefix: Path) -> dict[str, Path]:
    """Copy each job's model.tar.gz to ``<prefix>/<region>.tar.gz`` -- the multi-model layout
    (what ``aws s3 cp`` into the endpoint's prefix does); returns region -> tarball."""
    prefix.mkdir(parents=True)
    published = {}
    for job in jobs:
        region = job["HyperParameters"]["region"]
        source = Path(job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("file://"))
        published[region] = prefix / f"{region}.tar.gz"
        shutil.copyfile(source, published[region])
    return published


def host_predictions(tarball: Path) -> list[float]:
    """What the model in ``tarball`` answers for HOUSES, computed here (the check)."""
    with tarfile.open(tarball) as tar:
        member = tar.extractfile("model.json")
        assert member is not None, f"{tarball}: model.json is not a file"
        spec = json.load(member)
    prices = np.asarray(HOUSES) @ np.asarray(spec["coef"]) + spec["intercept"]
    return [float(p) for p in prices]


def keep_logs(state: Path, name: str, dest: Path) -> None:
    """Copy the endpoint's logs out of the state (delete_endpoint removes the state)."""
    source = state / "endpoints" / name
    dest.mkdir(parents=True, exist_ok=True)
    for log in [source / "runner.log", *sorted((source / "logs").glob("*.log"))]:
        if log.is_file():
            shutil.copyfile(log, dest / log.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["auto", "docker", "process"], default="auto")
    parser.add_argument("--output", type=Path, default=Path("example-output"))
    args = parser.parse_args(argv)
    root = common.new_run_dir(args.output / HERE.name)
    backend, why = common.choose_backend(args.backend, "optml/base:latest")
    serving, serving_why = common.serving_backend(backend)
    print(f"[{HERE.name}] run directory {root}\n[backend] training: {backend} ({why}); "
          f"serving: {serving} ({serving_why})", flush=True)
    if backend == "docker":
        common.build_image(HERE, IMAGE)
    state = root / "state"
    sm = common.local_client("sagemaker", state_dir=state, backend=backend)
    serving_sm = common.local_client("sagemaker", state_dir=state, backend=serving)
    rt = common.local_client("sagemaker-runtime", state_dir=state)
    write_data(root / "data")
    summary: dict[str, Any] = {"backend": backend, "serving_backend": serving}

    code_dir = "/opt/program" if backend == "docker" else str(HERE / "code")
    requests = [common.load_spec(HERE / "job.json", {
        "REGION": region, "CODE_DIR": code_dir, "DATA": (root / "data").as_uri(),
        "OUTPUT": root.as_uri()}) for region in TRUTH]
    jobs = train_all(sm, requests, state)
    summary["metrics"] = {}
    for job in jobs:
        metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
        summary["metrics"][job["HyperParameters"]["region"]] = metrics
        print(f"[train] {job['TrainingJobName']}: {job['TrainingJobStatus']}; {metrics}")
    published = publish(jobs, root / "models")
    prefix = (root / "models").as_uri() + "/"
    print(f"[publish] {', '.join(p.name for p in published.values())} under {prefix}")

    container = {"Image": IMAGE, "Mode": "MultiModel", "ModelDataUrl": prefix,
                 "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                                 "SAGEMAKER_SUBMIT_DIRECTORY": code_dir,
                                 "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
                                 "DEMO_MAX_LOADED_MODELS": str(MAX_LOADED_MODELS)}}
    calls: list[dict[str, Any]] = []
    with common.deployed(serving_sm, ENDPOINT, container) as endpoint:
        for region in INVOCATIONS:
            out = rt.invoke_endpoint(EndpointName=endpoint, TargetModel=f"{region}.tar.gz",
                                     ContentType="application/json",
                                     Accept="application/json", Body=json.dumps(HOUSES))
            answer = json.loads(out["Body"].read())
            calls.append({"target": f"{region}.tar.gz", **answer})
            print(f"[invoke] TargetModel={region}.tar.gz -> "
                  f"{[round(p, 1) for p in answer['predictions']]} "
                  f"(k EUR); models in memory now: {answer['resident_models']}")
        try:
            rt.invoke_endpoint(EndpointName=endpoint, TargetModel="west.tar.gz",
                               ContentType="application/json", Body=json.dumps(HOUSES))
            summary["unknown_model_error"] = None
        except rt.exceptions.ValidationError as exc:
            summary["unknown_model_error"] = exc.response["Error"]["Code"]
            print(f"[invoke] TargetModel=west.tar.gz -> {exc.response['Error']['Code']}: "
                  f"{exc.response['Error']['Message']}")
        keep_logs(state, endpoint, root / "logs")

    runner_log = (root / "logs" / "runner.log").read_text()
    evicted = re.findall(r"unloaded model (\S+) \(least recently used\)", runner_log)
    refused = sum(text.count("[demo cap]") for text in
                  (p.read_text() for p in (root / "logs").glob("*.log") if p.name != "runner.log"))
    print(f"[memory] the container refused {refused} load(s) with 507; local mode unloaded, "
          f"least recently used first: {evicted} (logs in {root / 'logs'})")
    expected = {region: host_predictions(path) for region, path in published.items()}
    for call in calls:
        region = call["target"].removesuffix(".tar.gz")
        call["expected"] = expected[region]
    summary.update(calls=calls, evicted=evicted, refused_loads=refused,
                   models=sorted(p.name for p in published.values()))
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[done] summary {root / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
