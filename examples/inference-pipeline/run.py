#!/usr/bin/env python3
"""Example: a two-container inference pipeline behind one endpoint.

Train a preprocessor (feature engineering + standardisation, its own image and inference.py),
then a ridge regression on what that preprocessor produces, deploy both as one model with
``Containers`` (preprocess, then model; each told its port through SAGEMAKER_BIND_TO_PORT), and
invoke the endpoint once: raw rows in, predictions out. The answer is checked against
preprocess -> predict computed here from the two artifacts.

    python examples/inference-pipeline/run.py [--backend auto|docker|process] [--output DIR]
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402 -- examples/common.py, the examples' shared glue

IMAGES = {"preprocess": "optml-examples/inference-pipeline-preprocess:latest",
          "model": "optml-examples/inference-pipeline-model:latest"}
ENDPOINT = "inference-pipeline"


def energy(raw: np.ndarray) -> np.ndarray:
    """The known truth behind the data: kWh per hour of a building."""
    temperature, hour, area = raw.T
    kwh = (2.0 + 1.5 * (temperature - 18.0) ** 2 / 10.0 + 3.0 * np.sin(2 * np.pi * hour / 24)
           + 2.0 * np.cos(2 * np.pi * hour / 24) + 4.0 * np.log(area))
    return np.asarray(kwh, dtype=np.float64)


def write_data(root: Path) -> np.ndarray:
    """``train/train.csv`` and ``validation/validation.csv`` (energy_kwh first, then
    temperature_c, hour, floor_area_m2); returns five validation rows to invoke with."""
    rng = np.random.default_rng(7)
    n = 300
    raw = np.column_stack([np.round(rng.uniform(-5, 35, n), 1),
                           rng.integers(0, 24, n).astype(float),
                           np.round(rng.uniform(50, 500, n), 1)])
    rows = np.column_stack([energy(raw) + rng.normal(0, 0.5, n), raw])
    for name, part in (("train", rows[:240]), ("validation", rows[240:])):
        (root / name).mkdir(parents=True)
        np.savetxt(root / name / f"{name}.csv", part, delimiter=",", fmt="%.6f")
    return raw[240:245]


def build_images() -> None:
    """Both images of the pipeline, from the one Dockerfile's two stages, offline."""
    import docker

    engine = docker.from_env(timeout=600)
    try:
        for target, tag in IMAGES.items():
            engine.images.build(path=str(HERE), target=target, tag=tag, rm=True,
                                network_mode="none")
    finally:
        engine.close()


def on_host(preprocessor_tar: Path, model_tar: Path, raw: np.ndarray) -> list[float]:
    """preprocess -> predict computed here from the two artifacts (the check of the endpoint)."""
    with tempfile.TemporaryDirectory() as scratch, tarfile.open(preprocessor_tar) as pre, \
            tarfile.open(model_tar) as mod:
        files = {"features.py": pre.extractfile("code/features.py"),
                 "preprocessor.json": pre.extractfile("preprocessor.json"),
                 "model.joblib": mod.extractfile("model.joblib")}
        for file_name, member in files.items():
            assert member is not None, f"{file_name} missing from an artifact"
            (Path(scratch) / file_name).write_bytes(member.read())
        spec = importlib.util.spec_from_file_location("pipeline_features",
                                                      Path(scratch) / "features.py")
        assert spec is not None and spec.loader is not None
        features = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(features)
        params = json.loads((Path(scratch) / "preprocessor.json").read_text())
        model = joblib.load(Path(scratch) / "model.joblib")
    return [float(p) for p in model.predict(features.transform(raw, params))]


def told_ports(state: Path) -> dict[str, str]:
    """Docker only: each running container's ``SAGEMAKER_BIND_TO_PORT``, by ContainerHostname,
    read from the engine (what the platform told it, not what it says it did)."""
    import docker

    engine = docker.from_env(timeout=30)
    try:
        told = {}
        for item in engine.containers.list(filters={"label": [
                f"optml.endpoint={ENDPOINT}", f"optml.state={state.resolve()}"]}):
            env = dict(e.split("=", 1) for e in item.attrs["Config"]["Env"])
            told[item.attrs["Config"]["Hostname"]] = env.get("SAGEMAKER_BIND_TO_PORT", "")
        return dict(sorted(told.items()))
    finally:
        engine.close()


def main(argv: list[str] | None = None) -> int:
    args = common.example_parser(__doc__).parse_args(argv)
    run = common.start(HERE.name, args.output, args.backend, "optml/sklearn:latest")
    if run.backend == "docker":
        build_images()
    sm, serving_sm, rt = run.clients()
    raw = write_data(run.root / "data")
    summary: dict[str, Any] = {"backend": run.backend, "serving_backend": run.serving}

    pre_job = common.train(sm, run.training_request(
        HERE / "job-preprocess.json", HERE / "code" / "preprocess"), run.state)
    pre_data = pre_job["ModelArtifacts"]["S3ModelArtifacts"]
    print(f"[train] {pre_job['TrainingJobName']}: {pre_job['TrainingJobStatus']}; {pre_data}")
    model_job = common.train(sm, run.training_request(
        HERE / "job-model.json", HERE / "code" / "model", PREPROCESSOR=pre_data), run.state)
    model_data = model_job["ModelArtifacts"]["S3ModelArtifacts"]
    metrics = common.final_metrics(model_job)
    print(f"[train] {model_job['TrainingJobName']}: {model_job['TrainingJobStatus']}; "
          f"{metrics}; {model_data}")
    summary.update(metrics=metrics, artifacts={"preprocess": pre_data, "model": model_data})

    containers = [
        {"ContainerHostname": "preprocess", "Image": IMAGES["preprocess"],
         "ModelDataUrl": pre_data,
         "Environment": {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/x-npy",
                         "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}},
        {"ContainerHostname": "model", "Image": IMAGES["model"], "ModelDataUrl": model_data,
         "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}}]
    body = "".join(f"{t:g},{h:g},{a:g}\n" for t, h, a in raw)
    with common.deployed(serving_sm, ENDPOINT, containers) as endpoint:
        out = rt.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="text/csv",
                                 Accept="application/json")
        predictions = json.loads(out["Body"].read())["predictions"]
        csv_out = rt.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="text/csv",
                                     Accept="text/csv")
        csv_predictions = [float(v) for v in csv_out["Body"].read().decode().split()]
        for row, got in zip(raw, predictions):
            print(f"[invoke] {row.tolist()} -> {got:.3f} kWh (truth without noise "
                  f"{float(energy(row[None])[0]):.3f})")
        try:
            rt.invoke_endpoint(EndpointName=endpoint, Body="20,25,100\n",
                               ContentType="text/csv", Accept="application/json")
            summary["bad_row_error"] = None
        except rt.exceptions.ModelError as exc:
            summary["bad_row_error"] = {"status": exc.response["OriginalStatusCode"],
                                        "message": exc.response["Error"]["Message"]}
            print(f"[invoke] hour=25 -> ModelError: {exc.response['Error']['Message'][:160]}")
        if run.serving == "docker":
            summary["told_ports"] = told_ports(run.state)
            print(f"[ports] SAGEMAKER_BIND_TO_PORT per container: {summary['told_ports']}")
        common.keep_endpoint_logs(run.state, endpoint, run.root / "logs")

    instance_logs = "".join(p.read_text() for p in sorted((run.root / "logs").glob("main-*.log")))
    ports = sorted({int(p) for p in re.findall(r"listening on [\d.]+:(\d+)", instance_logs)})
    print(f"[ports] the containers' logs say they listened on {ports} "
          f"(logs in {run.root / 'logs'})")
    expected = on_host(Path(pre_data.removeprefix("file://")),
                       Path(model_data.removeprefix("file://")), np.loadtxt(
                           io.StringIO(body), delimiter=",", ndmin=2))
    worst = max(abs(a - b) for a, b in zip(predictions, expected))
    print(f"[check] endpoint vs preprocess->predict on the host: largest difference {worst:.3g}")
    summary.update(raw=raw.tolist(), predictions=predictions, csv_predictions=csv_predictions,
                   expected=expected, bind_ports=ports, truth=energy(raw).tolist())
    (run.root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[done] summary {run.root / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
