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

import json
import re
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402 -- examples/common.py, the examples' shared glue

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
    return [common.wait_for_training(sm, request["TrainingJobName"], state)
            for request in requests]


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


def main(argv: list[str] | None = None) -> int:
    args = common.example_parser(__doc__).parse_args(argv)
    run = common.start(HERE.name, args.output, args.backend, "optml/base:latest")
    if run.backend == "docker":
        common.build_image(HERE, IMAGE)
    sm, serving_sm, rt = run.clients()
    write_data(run.root / "data")
    summary: dict[str, Any] = {"backend": run.backend, "serving_backend": run.serving}

    requests = [run.training_request(HERE / "job.json", HERE / "code", REGION=region)
                for region in TRUTH]
    jobs = train_all(sm, requests, run.state)
    summary["metrics"] = {}
    for job in jobs:
        metrics = common.final_metrics(job)
        summary["metrics"][job["HyperParameters"]["region"]] = metrics
        print(f"[train] {job['TrainingJobName']}: {job['TrainingJobStatus']}; {metrics}")
    published = publish(jobs, run.root / "models")
    prefix = (run.root / "models").as_uri() + "/"
    print(f"[publish] {', '.join(p.name for p in published.values())} under {prefix}")

    # The handlers are the image's own /opt/ml/code/inference.py (serve's default module), not
    # the artifacts': one container serves every model.
    container = run.serving_container({
        "Image": IMAGE, "Mode": "MultiModel", "ModelDataUrl": prefix,
        "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1",
                        "DEMO_MAX_LOADED_MODELS": str(MAX_LOADED_MODELS)}}, HERE / "code")
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
        common.keep_endpoint_logs(run.state, endpoint, run.root / "logs")

    runner_log = (run.root / "logs" / "runner.log").read_text()
    evicted = re.findall(r"unloaded model (\S+) \(least recently used\)", runner_log)
    refused = sum(p.read_text().count("[demo cap]") for p in (run.root / "logs").glob("*.log")
                  if p.name != "runner.log")
    print(f"[memory] the container refused {refused} load(s) with 507; local mode unloaded, "
          f"least recently used first: {evicted} (logs in {run.root / 'logs'})")
    expected = {region: host_predictions(path) for region, path in published.items()}
    for call in calls:
        region = call["target"].removesuffix(".tar.gz")
        call["expected"] = expected[region]
    summary.update(calls=calls, evicted=evicted, refused_loads=refused,
                   models=sorted(p.name for p in published.values()))
    (run.root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[done] summary {run.root / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
