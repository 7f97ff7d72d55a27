#!/usr/bin/env python3
"""Example: a processing job feeds a training job, whose model scores a held-out file.

Preprocess raw customer CSVs with a processing job on 2 instances (the raw files sharded by key:
each instance cleans and featurises its own share and writes train/validation splits named after
itself), train a churn classifier on those two outputs, then score a held-out file of raw
records with a batch transform (create_model + create_transform_job). The predictions are
checked against the known probabilities the data was drawn from.

    python examples/processing-pipeline/run.py [--backend auto|docker|process] [--output DIR]
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from botocore.exceptions import WaiterError
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402 -- examples/common.py, the examples' shared glue

IMAGE = "optml-examples/processing-pipeline:latest"
NAME = "processing-pipeline"
RAW_FILES, RECORDS_PER_FILE, HOLDOUT_RECORDS = 6, 150, 300
SPELLINGS = {"month-to-month": ("month-to-month", "Month-to-Month", " month to month"),
             "one-year": ("one-year", "One Year", "ONE_YEAR"),
             "two-year": ("two-year", "Two-Year", "two year ")}
"""Each contract term (as the cleaned data spells it) and how the raw files spell it."""
LABEL_SPELLINGS = {1: ("yes", "Yes", "1"), 0: ("no", "No", "0")}
DIRTY = ("missing value", "not a number", "out of range", "unknown contract", "unknown label",
         "duplicate")
"""One record of each kind in every raw file: what the processing job must drop."""
HEADER = "customer_id,tenure_months,monthly_charges,contract,support_calls,churned\n"


def churn_probability(tenure: np.ndarray, charges: np.ndarray, contract: np.ndarray,
                      calls: np.ndarray) -> np.ndarray:
    """The known truth behind the labels."""
    logit = (0.3 - 0.6 * tenure / 12 + 2.0 * np.log(charges / 70)
             + 1.4 * (contract == "month-to-month") - 1.4 * (contract == "two-year")
             + 0.5 * (calls - 1.5))
    return np.asarray(1 / (1 + np.exp(-logit)), dtype=np.float64)


def customers(rng: np.random.Generator, n: int, prefix: str) -> dict[str, np.ndarray]:
    data = {"id": np.array([f"{prefix}{i:04d}" for i in range(n)]),
            "tenure": rng.integers(0, 73, n), "charges": np.round(rng.uniform(20, 120, n), 2),
            "contract": rng.choice(list(SPELLINGS), n, p=[0.5, 0.3, 0.2]),
            "calls": rng.poisson(1.5, n)}
    data["p"] = churn_probability(data["tenure"], data["charges"], data["contract"],
                                  data["calls"])
    data["churned"] = (rng.uniform(size=n) < data["p"]).astype(int)
    return data


def record(data: dict[str, np.ndarray], i: int, rng: np.random.Generator,
           label: bool) -> list[str]:
    """Record ``i`` as its raw CSV fields, in one of the messy spellings the raw data has."""
    fields = [str(data["id"][i]), str(data["tenure"][i]), f"{data['charges'][i]:.2f}",
              str(rng.choice(SPELLINGS[str(data["contract"][i])])), str(data["calls"][i])]
    return fields + [str(rng.choice(LABEL_SPELLINGS[int(data["churned"][i])]))] if label \
        else fields


def dirty(good: list[list[str]], kind: str, key: str) -> list[str]:
    """A record the processing job must drop for ``kind`` (a copy of a good one, spoiled)."""
    bad = [key, *good[0][1:]]
    spoil = {"missing value": (2, ""), "not a number": (1, "n/a"),
             "out of range": (2, "-12.50"), "unknown contract": (3, "weekly"),
             "unknown label": (5, "maybe")}
    if kind == "duplicate":
        return list(good[1])
    column, value = spoil[kind]
    bad[column] = value
    return bad


def write_data(root: Path) -> dict[str, Any]:
    """``raw/customers-N.csv`` (header, labels, messy spellings, one dirty record of each
    kind) and ``holdout/holdout.csv`` (clean raw records, no header, no label); returns the
    held-out truth and what was written."""
    rng = np.random.default_rng(11)
    (root / "raw").mkdir(parents=True)
    for index in range(RAW_FILES):
        data = customers(rng, RECORDS_PER_FILE, f"C{index}-")
        rows = [record(data, i, rng, label=True) for i in range(RECORDS_PER_FILE)]
        for number, kind in enumerate(DIRTY):
            rows.insert(int(rng.integers(2, len(rows))),
                        dirty(rows, kind, f"C{index}-X{number}"))
        (root / "raw" / f"customers-{index}.csv").write_text(
            HEADER + "".join(",".join(r) + "\n" for r in rows))
    holdout = customers(rng, HOLDOUT_RECORDS, "H")
    (root / "holdout").mkdir()
    (root / "holdout" / "holdout.csv").write_text("".join(
        ",".join(record(holdout, i, rng, label=False)) + "\n" for i in range(HOLDOUT_RECORDS)))
    return {"holdout": holdout, "raw_files": RAW_FILES,
            "raw_records": RAW_FILES * (RECORDS_PER_FILE + len(DIRTY)),
            "dirty": {kind: RAW_FILES for kind in DIRTY}}


def program(backend: str) -> dict[str, str]:
    """Where the processing job's ContainerEntrypoint finds Python and the code.

    Docker: the image's ``python3`` and ``/opt/ml/code`` (the Dockerfile's COPY). The process
    backend has no image, so the entrypoint runs on this machine: this Python and the directory
    the Dockerfile copies -- as :func:`common.code_environment` does for training."""
    if backend == "docker":
        return {"PYTHON": "python3", "CODE": "/opt/ml/code"}
    return {"PYTHON": sys.executable, "CODE": str(HERE / "code")}


def process(sm: Any, request: dict[str, Any], state: Path) -> dict[str, Any]:
    """Create the processing job, wait for it, and return its description (exit naming the
    job's log if it did not complete)."""
    name = request["ProcessingJobName"]
    sm.create_processing_job(**request)
    with contextlib.suppress(WaiterError):  # Failed: the description says why
        sm.get_waiter("processing_job_completed_or_stopped").wait(ProcessingJobName=name)
    job: dict[str, Any] = sm.describe_processing_job(ProcessingJobName=name)
    if job["ProcessingJobStatus"] != "Completed":
        log = state / "processing-jobs" / name / "logs" / "all.log"
        raise SystemExit(f"processing job {name} {job['ProcessingJobStatus']}: "
                         f"{job.get('FailureReason')}\nlog: {log}")
    return job


def local(uri: str) -> Path:
    """The directory behind a file:// URI (this example keeps its S3 prefixes on disk)."""
    return Path(uri.removeprefix("file://"))


def check_predictions(lines: list[str], holdout: dict[str, np.ndarray]) -> dict[str, Any]:
    """The transform's joined rows (raw record, probability, label) against the truth."""
    rows = [line.split(",") for line in lines]
    probability = np.array([float(r[-2]) for r in rows])
    predicted = np.array([r[-1] == "yes" for r in rows])
    truth, churned = holdout["p"], holdout["churned"]
    checks = {
        "every record answered, in order": [r[0] for r in rows] == holdout["id"].tolist(),
        "probabilities within [0, 1]": bool(((probability >= 0) & (probability <= 1)).all()),
        "label is probability >= 0.5": bool((predicted == (probability >= 0.5)).all()),
    }
    if not checks["every record answered, in order"]:
        return {"rows": len(rows), "checks": checks}
    accuracy = float((predicted == churned).mean())
    bayes = float(((truth >= 0.5) == churned).mean())  # the best any model can do here
    error = float(np.abs(probability - truth).mean())
    checks["accuracy within 0.05 of the true probabilities'"] = accuracy >= bayes - 0.05
    checks["mean |probability - truth| < 0.08"] = error < 0.08
    return {"rows": len(rows), "accuracy": accuracy, "bayes_accuracy": bayes,
            "auc": float(roc_auc_score(churned, probability)), "mean_abs_error": error,
            "checks": checks}


def main(argv: list[str] | None = None) -> int:
    args = common.example_parser(__doc__).parse_args(argv)
    started = time.monotonic()
    run = common.start(HERE.name, args.output, args.backend, "optml/sklearn:latest")
    if run.backend == "docker":
        common.build_image(HERE, IMAGE)
    sm, serving_sm, _ = run.clients()
    data = write_data(run.root / "data")
    print(f"[data] {data['raw_files']} raw CSV files, {data['raw_records']} records (one of "
          f"each dirty kind per file: {', '.join(DIRTY)}); {HOLDOUT_RECORDS} held-out records")
    summary: dict[str, Any] = {"backend": run.backend, "serving_backend": run.serving,
                               "raw_records": data["raw_records"], "dirty": data["dirty"]}

    # 1. processing: 2 instances, each cleaning its share of the raw files
    step = time.monotonic()
    request = common.load_spec(HERE / "job-preprocess.json", {
        "DATA": (run.root / "data").as_uri(), "OUTPUT": run.root.as_uri(),
        **program(run.backend)})
    job = process(sm, request, run.state)
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"]
               for o in job["ProcessingOutputConfig"]["Outputs"]}
    reports = {p.stem: json.loads(p.read_text())
               for p in sorted(local(outputs["report"]).glob("*.json"))}
    for host, report in reports.items():
        print(f"[process] {host} of {report['hosts']}: files {sorted(report['files'])}; kept "
              f"{report['kept']} of {report['records']} -> {report['train_rows']} train, "
              f"{report['validation_rows']} validation; dropped {report['dropped']}")
    print(f"[process] {job['ProcessingJobStatus']} in {time.monotonic() - step:.1f} s; "
          f"ExitMessage: {job.get('ExitMessage')!r}")
    files = {k: sorted(p.name for p in local(uri).iterdir()) for k, uri in outputs.items()}
    print(f"[process] outputs {files}")
    summary["processing"] = {"status": job["ProcessingJobStatus"],
                             "exit_message": job.get("ExitMessage"), "outputs": outputs,
                             "output_files": files, "reports": reports,
                             "seconds": round(time.monotonic() - step, 1)}

    # 2. training on the processing job's train and validation outputs
    step = time.monotonic()
    request = run.training_request(HERE / "job-train.json", HERE / "code",
                                   TRAIN=outputs["train"], VALIDATION=outputs["validation"])
    job = common.train(sm, request, run.state)
    metrics = common.final_metrics(job)
    model_data = job["ModelArtifacts"]["S3ModelArtifacts"]
    print(f"[train] {job['TrainingJobStatus']} in {time.monotonic() - step:.1f} s; "
          f"metrics {metrics}; model {model_data}")
    summary["training"] = {"status": job["TrainingJobStatus"], "metrics": metrics,
                           "model_data": model_data,
                           "seconds": round(time.monotonic() - step, 1)}

    # 3. batch transform of the held-out raw records with that model
    step = time.monotonic()
    transform_output = run.root / "transform"
    serving_sm.create_model(ModelName=NAME, ExecutionRoleArn=common.ROLE, PrimaryContainer={
        "Image": IMAGE, "ModelDataUrl": model_data,
        "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}})
    try:
        common.transform(serving_sm, {
            "TransformJobName": NAME, "ModelName": NAME, "BatchStrategy": "MultiRecord",
            "TransformInput": {"DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": (run.root / "data" / "holdout").as_uri()}},
                "ContentType": "text/csv", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": transform_output.as_uri(),
                                "Accept": "text/csv", "AssembleWith": "Line"},
            "DataProcessing": {"JoinSource": "Input"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}})
    finally:
        serving_sm.delete_model(ModelName=NAME)
    lines = (transform_output / "holdout.csv.out").read_text().splitlines()
    scored = check_predictions(lines, data["holdout"])
    print(f"[transform] Completed in {time.monotonic() - step:.1f} s; {scored['rows']} rows in "
          f"{transform_output / 'holdout.csv.out'}, e.g. {lines[0]!r}")
    if "accuracy" in scored:
        print(f"[transform] accuracy {scored['accuracy']:.3f} (the true probabilities' "
              f"{scored['bayes_accuracy']:.3f}), AUC {scored['auc']:.3f}, mean |probability - "
              f"truth| {scored['mean_abs_error']:.3f}")
    for check, ok in scored["checks"].items():
        print(f"[check] {'ok  ' if ok else 'FAIL'} {check}")
    summary["transform"] = {**scored, "output": str(transform_output / "holdout.csv.out"),
                            "seconds": round(time.monotonic() - step, 1)}
    summary["seconds"] = round(time.monotonic() - started, 1)
    (run.root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[done] in {summary['seconds']} s; summary {run.root / 'summary.json'}")
    return 0 if all(scored["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
