#!/usr/bin/env python3
"""Example 3: a streaming linear model trained from RecordIO-protobuf in Pipe mode, on 2 hosts.

Writes 8 RecordIO-protobuf files from a known linear function, trains with the channel in Pipe
mode and ShardedByS3Key on 2 instances (each host streams its half for several epochs and fits
its own weights), deploys the model (which averages the hosts' weights) and invokes it with
application/x-recordio-protobuf, text/csv and application/json, printing what each step did.

    python examples/pipe-recordio-linear/run.py [--backend auto|docker|process] [--output DIR]
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.formats import recordio_protobuf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402 -- examples/common.py, the examples' shared glue

IMAGE = "optml-examples/pipe-recordio-linear:latest"
TRUE_WEIGHTS = np.array([1.5, -2.0, 0.75, 3.0])
TRUE_BIAS = -1.0
FILES, ROWS_PER_FILE, NOISE = 8, 250, 0.05
CONTENT_TYPES = ("application/x-recordio-protobuf", "text/csv", "application/json")


def write_data(root: Path) -> int:
    """``FILES`` RecordIO-protobuf objects of float32 rows (label = the linear function plus
    noise); returns the number of rows."""
    rng = np.random.default_rng(0)
    (root / "train").mkdir(parents=True)
    for index in range(FILES):
        features = rng.normal(size=(ROWS_PER_FILE, len(TRUE_WEIGHTS))).astype(np.float32)
        labels = (features @ TRUE_WEIGHTS + TRUE_BIAS
                  + rng.normal(scale=NOISE, size=ROWS_PER_FILE)).astype(np.float32)
        (root / "train" / f"part-{index:02d}.rec").write_bytes(
            recordio_protobuf.encode_dense(features, labels))
    return FILES * ROWS_PER_FILE


def bodies(rows: np.ndarray) -> dict[str, bytes]:
    """The same float32 rows in each request format (CSV/JSON spell each float32 exactly)."""
    as_text = [[repr(float(v)) for v in row] for row in rows]
    return {
        "application/x-recordio-protobuf": recordio_protobuf.encode_dense(rows),
        "text/csv": "\n".join(",".join(row) for row in as_text).encode(),
        "application/json": ("[" + ",".join("[" + ",".join(row) + "]" for row in as_text)
                             + "]").encode(),
    }


def extract(tarball: str, into: Path) -> Path:
    into.mkdir(parents=True)
    with tarfile.open(Path(tarball.removeprefix("file://"))) as tar:
        tar.extractall(into, filter="data")
    return into


def shards_report(output_dir: Path, total_rows: int) -> dict[str, Any]:
    """What each host saw (``shard-<host>.json``, written by train.py), and whether the hosts'
    first-epoch rows are disjoint and together cover every row."""
    seen = {p.stem.removeprefix("shard-"): json.loads(p.read_text())
            for p in sorted(output_dir.glob("shard-*.json"))}
    rows = [set(s["first_epoch_rows"]) for s in seen.values()]
    union = set().union(*rows)
    return {
        "hosts": {host: {
            "input_mode": s["input_mode"],
            "config_input_mode": s["input_data_config"]["train"]["TrainingInputMode"],
            "config_distribution": s["input_data_config"]["train"]["S3DistributionType"],
            "epochs": len(s["epochs"]),
            "all_epochs_from_fifo": all(e["fifo"] for e in s["epochs"]),
            "rows_per_epoch": [e["rows"] for e in s["epochs"]],
            "same_rows_every_epoch": len({e["digest"] for e in s["epochs"]}) == 1,
        } for host, s in seen.items()},
        "overlap_rows": sum(len(r) for r in rows) - len(union),
        "union_rows": len(union),
        "total_rows": total_rows,
    }


def load_model(model_dir: Path) -> Any:
    """The endpoint's own ``model_fn`` (code/inference.py from the artifact), run here to show
    the averaged weights."""
    spec = importlib.util.spec_from_file_location("example_inference",
                                                  model_dir / "code" / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.model_fn(str(model_dir))


def main(argv: list[str] | None = None) -> int:
    args = common.example_parser(__doc__).parse_args(argv)
    run = common.start(HERE.name, args.output, args.backend, "optml/base:latest")
    if run.backend == "docker":
        common.build_image(HERE, IMAGE)
    sm, serving_sm, rt = run.clients()
    total_rows = write_data(run.root / "data")
    print(f"[data] {FILES} RecordIO-protobuf files, {total_rows} rows, y = "
          f"{TRUE_WEIGHTS.tolist()}·x + {TRUE_BIAS} + N(0, {NOISE}²)")
    summary: dict[str, Any] = {"backend": run.backend, "serving_backend": run.serving,
                               "true_weights": TRUE_WEIGHTS.tolist(), "true_bias": TRUE_BIAS}

    request = run.training_request(HERE / "job.json", HERE / "code")
    job = common.train(sm, request, run.state)
    metrics = common.final_metrics(job)
    model_data = job["ModelArtifacts"]["S3ModelArtifacts"]
    print(f"[train] {job['TrainingJobStatus']} on {request['ResourceConfig']['InstanceCount']} "
          f"hosts; last {metrics}; model {model_data}")

    shards = shards_report(extract(model_data.replace("model.tar.gz", "output.tar.gz"),
                                   run.root / "output"), total_rows)
    for host, info in shards["hosts"].items():
        print(f"[pipe] {host}: inputdataconfig says {info['config_input_mode']}/"
              f"{info['config_distribution']}; {info['epochs']} epochs through FIFOs: "
              f"{info['all_epochs_from_fifo']}; rows per epoch {info['rows_per_epoch']}")
    print(f"[pipe] overlap between hosts {shards['overlap_rows']} rows; together "
          f"{shards['union_rows']} of {total_rows}")
    model_dir = extract(model_data, run.root / "model")
    host_models = {p.stem.removeprefix("weights-"): json.loads(p.read_text())
                   for p in sorted(model_dir.glob("weights-*.json"))}
    for host, part in host_models.items():
        print(f"[model] {host}: weights {np.round(part['weights'], 4).tolist()} "
              f"bias {part['bias']:.4f} from {part['rows']} rows")
    model = load_model(model_dir)
    error = float(max(np.abs(model.weights - TRUE_WEIGHTS).max(), abs(model.bias - TRUE_BIAS)))
    print(f"[model] averaged: weights {np.round(model.weights, 4).tolist()} bias "
          f"{model.bias:.4f}; largest error against the generating weights {error:.4f}")
    summary.update(status=job["TrainingJobStatus"], metrics=metrics, model_data=model_data,
                   shards=shards, host_models=host_models, weights=model.weights.tolist(),
                   bias=model.bias, max_weight_error=error)

    queries = np.random.default_rng(1).normal(size=(3, len(TRUE_WEIGHTS))).astype(np.float32)
    container = {"Image": IMAGE, "ModelDataUrl": model_data,
                 "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}}
    predictions: dict[str, list[float]] = {}
    with common.deployed(serving_sm, HERE.name, container) as endpoint:
        for content_type, body in bodies(queries).items():
            answer = rt.invoke_endpoint(EndpointName=endpoint, Body=body,
                                        ContentType=content_type, Accept="application/json")
            predictions[content_type] = json.loads(answer["Body"].read())
            print(f"[invoke] {content_type:32} -> {np.round(predictions[content_type], 4)}")
        answer = rt.invoke_endpoint(EndpointName=endpoint, Body=bodies(queries)["text/csv"],
                                    ContentType="text/csv",
                                    Accept="application/x-recordio-protobuf")
        as_records = recordio_protobuf.decode(answer["Body"].read()).features.reshape(-1)
        print(f"[invoke] text/csv, Accept recordio-protobuf -> {np.round(as_records, 4)}")
    expected = queries.astype(np.float64) @ TRUE_WEIGHTS + TRUE_BIAS
    print(f"[invoke] the generating function gives  {np.round(expected, 4)}")
    summary.update(predictions=predictions, recordio_answer=as_records.tolist(),
                   expected=expected.tolist())
    (run.root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[done] summary {run.root / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
