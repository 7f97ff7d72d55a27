#!/usr/bin/env python3
"""Example: train in scikit-learn, export to ONNX in the job, serve with ONNX Runtime, batched.

Train a StandardScaler + LogisticRegression pipeline on the wine data (shipped inside
scikit-learn) in an image FROM optml/sklearn with skl2onnx baked in from the offline wheelhouse,
export it to model.onnx inside the job, serve that with an image FROM optml/onnx (no
scikit-learn) whose inference module micro-batches concurrent requests, fire concurrent
requests, run a batch transform, and compare every answer with scikit-learn's on the host.

    python examples/sklearn-to-onnx/run.py [--backend auto|docker|process] [--output DIR]
"""

from __future__ import annotations

import collections
import importlib.util
import json
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.datasets import load_wine

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402 -- examples/common.py, the examples' shared glue
import wheels  # noqa: E402 -- examples/wheels.py: extra wheels (skl2onnx), offline wheelhouse

NAME = HERE.name
TRAIN_IMAGE = "optml-examples/sklearn-to-onnx-train:latest"
SERVE_IMAGE = "optml-examples/sklearn-to-onnx-serve:latest"
REQUESTS = 48
"""Concurrent invocations sent (a bounded count: the example must stay quick)."""
CONCURRENCY = 16
"""Client threads: as many as the endpoint's batch_max_size, so batches can fill."""


def write_data(root: Path) -> np.ndarray:
    """Train/validation CSVs (label first) and two unlabelled batch files holding the
    validation rows in order; returns the validation features."""
    wine = load_wine()
    order = np.random.default_rng(0).permutation(len(wine.target))
    rows = np.column_stack([wine.target[order], wine.data[order]])
    for name, part in (("train", rows[:140]), ("validation", rows[140:])):
        (root / name).mkdir(parents=True)
        np.savetxt(root / name / f"{name}.csv", part, delimiter=",", fmt="%g")
    (root / "batch").mkdir()
    for index, chunk in enumerate(np.array_split(rows[140:, 1:], 2)):
        np.savetxt(root / "batch" / f"wines-{index}.csv", chunk, delimiter=",", fmt="%g")
    return np.loadtxt(root / "validation" / "validation.csv", delimiter=",")[:, 1:]


def training_backend(requested: str, base_image: str) -> tuple[str, str]:
    """:func:`common.choose_backend`, and more: Docker also needs optml/onnx (the serving image
    is built FROM it), and the process backend trains with this Python, so needs skl2onnx."""
    backend, why = common.choose_backend(requested, base_image)
    if backend == "docker" and not common.image_exists("optml/onnx:latest"):
        if requested == "docker":
            raise SystemExit("--backend docker: optml/onnx:latest is missing "
                             "(scripts/build-images.sh)")
        backend, why = "process", "optml/onnx is not built (scripts/build-images.sh)"
    if backend == "process" and importlib.util.find_spec("skl2onnx") is None:
        raise SystemExit("the process backend trains with this Python, which lacks skl2onnx: "
                         "pip install skl2onnx, or use --backend docker")
    return backend, why


def build_images() -> int:
    """Build the training image (context staged with the extra wheels) and the serving image;
    returns how many extra wheels the training image installs."""
    extra = wheels.extra_wheels("sklearn", HERE / "image-requirements.txt", NAME)
    with tempfile.TemporaryDirectory(prefix="optml-example-context.") as context:
        wheels.stage_context(Path(context), {"Dockerfile": HERE / "Dockerfile",
                                             "code": HERE / "code"}, extra)
        common.build_image(Path(context), TRAIN_IMAGE)
    common.build_image(HERE / "serve", SERVE_IMAGE)
    return len(extra)


def host_pipeline(output_tar: Path, into: Path) -> Any:
    """The fitted scikit-learn pipeline the job left in output.tar.gz."""
    with tarfile.open(output_tar) as tar:
        tar.extract("sklearn-pipeline.joblib", into, filter="data")
    return joblib.load(into / "sklearn-pipeline.joblib")


def parse_answer(body: bytes, content_type: str) -> tuple[list[int], list[list[float]]]:
    if content_type.startswith("text/csv"):
        rows = [line.split(",") for line in body.decode().splitlines()]
        return [int(r[0]) for r in rows], [[float(v) for v in r[1:]] for r in rows]
    predictions = json.loads(body)["predictions"]
    return [p["label"] for p in predictions], [p["probabilities"] for p in predictions]


def invoke_concurrently(rt: Any, endpoint: str, features: np.ndarray) -> list[dict[str, Any]]:
    """REQUESTS requests of 1-3 validation rows from CONCURRENCY threads, CSV and JSON mixed,
    plus one request with a wrong row width (it must fail alone, with 400)."""
    def one(index: int) -> dict[str, Any]:
        first, count = index % len(features), 1 + index % 3
        picks = [(first + k) % len(features) for k in range(count)]
        rows = features[picks]
        as_csv = index % 2 == 0
        body = ("\n".join(",".join(repr(float(v)) for v in row) for row in rows) if as_csv
                else json.dumps(rows.tolist()))
        content_type = "text/csv" if as_csv else "application/json"
        accept = "application/json" if as_csv else "text/csv"
        if index == REQUESTS:  # the malformed one
            body, content_type = "1,2,3", "text/csv"
        try:
            answer = rt.invoke_endpoint(EndpointName=endpoint, Body=body,
                                        ContentType=content_type, Accept=accept)
        except rt.exceptions.ModelError as error:  # the container answered 4xx/5xx
            return {"rows": picks, "error": type(error).__name__,
                    "status": error.response.get("OriginalStatusCode")}
        labels, probabilities = parse_answer(answer["Body"].read(), answer["ContentType"])
        return {"rows": picks, "content_type": content_type, "accept": accept,
                "labels": labels, "probabilities": probabilities,
                "batch_size": int(answer["CustomAttributes"].partition("=")[2])}

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return list(pool.map(one, range(REQUESTS + 1)))


def compare(pipeline: Any, features: np.ndarray, labels: list[int],
            probabilities: list[list[float]]) -> tuple[int, float]:
    """(rows whose label differs, largest probability difference) against scikit-learn."""
    expected = pipeline.predict_proba(features)
    return (int(np.sum(np.asarray(labels) != pipeline.classes_[expected.argmax(axis=1)])),
            float(np.max(np.abs(np.asarray(probabilities) - expected))))


def main(argv: list[str] | None = None) -> int:
    args = common.example_parser(__doc__).parse_args(argv)
    run = common.start(NAME, args.output, args.backend, "optml/sklearn:latest",
                       choose=training_backend)
    summary: dict[str, Any] = {"backend": run.backend, "serving_backend": run.serving}
    if run.backend == "docker":
        summary["extra_wheels"] = build_images()
        print(f"[images] {TRAIN_IMAGE} (+{summary['extra_wheels']} wheels from the offline "
              f"wheelhouse), {SERVE_IMAGE}", flush=True)
    sm, serving_sm, rt = run.clients()
    features = write_data(run.root / "data")

    request = run.training_request(HERE / "job.json", HERE / "code")
    job = common.train(sm, request, run.state)
    metrics = common.final_metrics(job)
    model_data = job["ModelArtifacts"]["S3ModelArtifacts"]
    print(f"[train] {job['TrainingJobStatus']}; metrics {metrics}; model {model_data}")
    output_tar = run.root / "artifacts" / NAME / "output" / "output.tar.gz"
    pipeline = host_pipeline(output_tar, run.root / "host")
    summary.update(metrics=metrics, model_data=model_data)

    # model.tar.gz holds only model.onnx: the inference code is the serving image's own.
    container = run.serving_container({
        "Image": SERVE_IMAGE, "ModelDataUrl": model_data,
        "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}}, HERE / "serve")
    with common.deployed(serving_sm, NAME, container) as endpoint:
        answers = invoke_concurrently(rt, endpoint, features)
        good = [a for a in answers if "error" not in a]
        mismatched, max_diff = compare(
            pipeline, features[[r for a in good for r in a["rows"]]],
            [x for a in good for x in a["labels"]], [p for a in good for p in a["probabilities"]])
        sizes = collections.Counter(a["batch_size"] for a in good)
        print(f"[invoke] {len(good)} concurrent answers from {CONCURRENCY} threads; batch sizes "
              f"{dict(sorted(sizes.items()))}; {mismatched} labels differ from scikit-learn; "
              f"max |p_onnx - p_sklearn| = {max_diff:.2e}")
        bad = [a for a in answers if "error" in a]
        print(f"[invoke] malformed request alone failed: {bad}")
        summary.update(answers=answers, invoke_label_mismatches=mismatched,
                       invoke_max_probability_diff=max_diff)

        common.transform(serving_sm, {
            "TransformJobName": NAME, "ModelName": endpoint, "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": 1,
            "TransformInput": {"DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": (run.root / "data" / "batch").as_uri()}},
                "ContentType": "text/csv", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": (run.root / "transform").as_uri(),
                                "Accept": "text/csv", "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}})
    lines = [line for path in sorted((run.root / "transform").glob("*.out"))
             for line in path.read_text().splitlines()]
    labels, probabilities = parse_answer("\n".join(lines).encode(), "text/csv")
    mismatched, max_diff = compare(pipeline, features, labels, probabilities)
    print(f"[transform] {len(lines)} rows in {run.root / 'transform'}; {mismatched} labels differ "
          f"from scikit-learn; max |p_onnx - p_sklearn| = {max_diff:.2e}")
    summary.update(transform_rows=len(lines), transform_label_mismatches=mismatched,
                   transform_max_probability_diff=max_diff)
    (run.root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[done] summary {run.root / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
