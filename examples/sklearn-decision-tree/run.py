#!/usr/bin/env python3
"""Example 1: the classic bring-your-own pattern with scikit-learn, end to end.

Train a decision tree on CSV (iris, shipped inside scikit-learn), deploy it, invoke it with CSV
and JSON, and run a batch transform with JoinSource=Input, printing what each step did.

    python examples/sklearn-decision-tree/run.py [--backend auto|docker|process] [--output DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402 -- examples/common.py, the examples' shared glue

IMAGE = "optml-examples/sklearn-decision-tree:latest"
CLASSES = ["setosa", "versicolor", "virginica"]


def write_data(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation CSVs (label first) and two unlabelled batch files; returns the
    validation rows and labels, which the batch files hold in order."""
    iris = load_iris()
    order = np.random.default_rng(0).permutation(len(iris.target))
    rows = np.column_stack([iris.target[order], iris.data[order]])
    for name, part in (("train", rows[:120]), ("validation", rows[120:])):
        (root / name).mkdir(parents=True)
        np.savetxt(root / name / f"{name}.csv", part, delimiter=",", fmt="%g")
    (root / "batch").mkdir()
    for index, chunk in enumerate(np.array_split(rows[120:, 1:], 2)):
        np.savetxt(root / "batch" / f"flowers-{index}.csv", chunk, delimiter=",", fmt="%g")
    return rows[120:, 1:], rows[120:, 0].astype(int)


def main(argv: list[str] | None = None) -> int:
    args = common.example_parser(__doc__).parse_args(argv)
    run = common.start(HERE.name, args.output, args.backend, "optml/sklearn:latest")
    if run.backend == "docker":
        common.build_image(HERE, IMAGE)
    sm, serving_sm, rt = run.clients()
    features, labels = write_data(run.root / "data")
    summary: dict[str, object] = {"backend": run.backend, "serving_backend": run.serving}

    request = run.training_request(HERE / "job.json", HERE / "code")
    job = common.train(sm, request, run.state)
    metrics = common.final_metrics(job)
    model_data = job["ModelArtifacts"]["S3ModelArtifacts"]
    print(f"[train] {job['TrainingJobStatus']}; metrics {metrics}; model {model_data}")
    summary.update(metrics=metrics, model_data=model_data)

    container = {"Image": IMAGE, "ModelDataUrl": model_data,
                 "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}}
    with common.deployed(serving_sm, "sklearn-decision-tree", container) as endpoint:
        picks = [int(np.flatnonzero(labels == k)[0]) for k in range(3)]
        csv_body = "\n".join(",".join(f"{v:g}" for v in features[i]) for i in picks)
        csv_out = rt.invoke_endpoint(EndpointName=endpoint, Body=csv_body,
                                     ContentType="text/csv", Accept="text/csv")
        json_out = rt.invoke_endpoint(EndpointName=endpoint, ContentType="application/json",
                                      Body=json.dumps(features[picks].tolist()),
                                      Accept="application/json")
        csv_labels = csv_out["Body"].read().decode().split()
        json_predictions = json.loads(json_out["Body"].read())["predictions"]
        for i, got, detail in zip(picks, csv_labels, json_predictions):
            print(f"[invoke] {features[i]} -> csv {got}, json {detail} "
                  f"(true {CLASSES[labels[i]]})")
        summary.update(invoke_true=[CLASSES[labels[i]] for i in picks], invoke_csv=csv_labels,
                       invoke_json=json_predictions)

        common.transform(serving_sm, {
            "TransformJobName": "sklearn-decision-tree", "ModelName": endpoint,
            "BatchStrategy": "MultiRecord",
            "TransformInput": {"DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": (run.root / "data" / "batch").as_uri()}},
                "ContentType": "text/csv", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": (run.root / "transform").as_uri(),
                                "Accept": "text/csv", "AssembleWith": "Line"},
            "DataProcessing": {"JoinSource": "Input"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}})
    joined = [line for path in sorted((run.root / "transform").glob("*.out"))
              for line in path.read_text().splitlines()]
    correct = sum(line.rsplit(",", 1)[1] == CLASSES[k] for line, k in zip(joined, labels))
    print(f"[transform] {len(joined)} joined rows in {run.root / 'transform'}, e.g. {joined[0]!r}; "
          f"{correct}/{len(labels)} match the true species")
    summary.update(transform_rows=len(joined), transform_correct=correct)
    (run.root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[done] summary {run.root / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
