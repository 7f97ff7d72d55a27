"""The processing pipeline example (examples/processing-pipeline), run as a user runs it: on the
Docker backend (one image for a 2-instance processing job, a training job and a batch transform)
and on the process backend (no Docker).

Checked, not only exit 0: the two processing instances read disjoint shares of the raw files
that together cover them all, dropped exactly the dirty records the example wrote, and uploaded
host-named files side by side into each output prefix; the paths they used came from their
config files (container paths on Docker, the relocated tree on the process backend); the
training job read both instances' files in each channel; every transform row equals the
artifact's model applied here to the featurised held-out record; nothing is left running. Fast
tests of the shared record parsing come first.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import docker
import joblib
import numpy as np
import pytest

from tests.docker.test_examples import EXAMPLES, no_containers_left, run, summary_of
from tests.docker.test_examples_multi_model import load
from tests.integration.local_training_support import processes_using

NAME = "processing-pipeline"
CODE = EXAMPLES / NAME / "code"
RUN = [sys.executable, str(EXAMPLES / NAME / "run.py")]
PROCESSING_JOB, TRAINING_JOB = "processing-pipeline-preprocess", "processing-pipeline-train"
RAW_FILES = [f"customers-{i}.csv" for i in range(6)]
KEPT = 900  # 6 files x 150 good records


def features_module() -> Any:
    return load(CODE / "features.py", "processing_pipeline_features")


@pytest.mark.parametrize(("contract", "normal"), [
    ("month-to-month", "month-to-month"), (" Month to Month", "month-to-month"),
    ("ONE_YEAR", "one-year"), ("two year ", "two-year")])
def test_contract_spellings_are_normalised(contract: str, normal: str) -> None:
    features = features_module()
    customer = features.parse(["C1", "24", "70.00", contract, "2", "Yes"], labelled=True)
    assert customer.contract == normal and customer.churned == 1
    assert features.featurise(customer) == pytest.approx(
        [2.0, np.log(70.0), float(normal == "month-to-month"), float(normal == "two-year"), 2.0])


@pytest.mark.parametrize(("values", "reason"), [
    (["C1", "24", "", "one-year", "2", "no"], "missing value"),
    (["C1", "n/a", "70", "one-year", "2", "no"], "not a number"),
    (["C1", "2.5", "70", "one-year", "2", "no"], "not a number"),
    (["C1", "24", "-12.50", "one-year", "2", "no"], "out of range"),
    (["C1", "24", "nan", "one-year", "2", "no"], "out of range"),
    (["C1", "24", "70", "weekly", "2", "no"], "unknown contract"),
    (["C1", "24", "70", "one-year", "2", "maybe"], "unknown label"),
    (["C1", "24", "70", "one-year", "2"], "wrong field count")])
def test_bad_records_are_refused_with_their_reason(values: list[str], reason: str) -> None:
    features = features_module()
    with pytest.raises(features.BadRecord, match=reason) as caught:
        features.parse(values, labelled=True)
    assert caught.value.reason == reason


def csv_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def check_run(root: Path, summary: dict[str, Any], hosts: list[str]) -> None:
    processing = summary["processing"]
    assert processing["status"] == "Completed"
    reports = processing["reports"]
    assert sorted(reports) == hosts
    shares = [set(r["files"]) for r in reports.values()]
    assert all(len(s) == 3 for s in shares) and set.intersection(*shares) == set()
    assert set.union(*shares) == set(RAW_FILES)  # ShardedByS3Key: disjoint, complete
    for report in reports.values():
        assert report["hosts"] == hosts
        assert report["kept"] == report["train_rows"] + report["validation_rows"]
        assert 0.1 < report["validation_rows"] / report["kept"] < 0.3  # 20 % by key hash
    dropped: dict[str, int] = {}
    for report in reports.values():
        for reason, count in report["dropped"].items():
            dropped[reason] = dropped.get(reason, 0) + count
    assert dropped == summary["dirty"]
    assert sum(r["kept"] for r in reports.values()) == KEPT
    assert sum(r["records"] for r in reports.values()) == summary["raw_records"]
    first = reports[hosts[0]]
    assert processing["exit_message"].startswith(f"{hosts[0]}: kept {first['kept']} of ")

    processed = root / "processed"
    for split in ("train", "validation"):  # every instance's file, side by side in one prefix
        assert sorted(p.name for p in (processed / split).iterdir()) == \
            [f"part-{h}.csv" for h in hosts]
        for host in hosts:
            lines = csv_lines(processed / split / f"part-{host}.csv")
            assert len(lines) == reports[host][f"{split}_rows"]
            assert all(len(line.split(",")) == 6 for line in lines)  # label + 5 features
    assert sorted(p.name for p in (processed / "report").iterdir()) == \
        [f"{h}.json" for h in hosts]

    training = summary["training"]
    assert training["status"] == "Completed"
    assert training["metrics"]["validation:auc"] >= 0.8
    train_log = (root / "state" / "training-jobs" / TRAINING_JOB / "logs" / "all.log").read_text()
    assert f"train rows={KEPT - sum(r['validation_rows'] for r in reports.values())} from 2 " \
           "files; validation rows=" in train_log
    model_tar = root / "artifacts" / TRAINING_JOB / "output" / "model.tar.gz"
    with tarfile.open(model_tar) as tar:
        assert {"model.joblib", "code/inference.py", "code/features.py"} <= set(tar.getnames())
        model_file = tar.extractfile("model.joblib")
        assert model_file is not None
        model = joblib.load(io.BytesIO(model_file.read()))

    transform = summary["transform"]
    assert transform["rows"] == 300 and all(transform["checks"].values()), transform
    assert transform["accuracy"] >= transform["bayes_accuracy"] - 0.05
    assert transform["mean_abs_error"] < 0.08 and transform["auc"] > 0.8
    held_out = csv_lines(root / "data" / "holdout" / "holdout.csv")
    joined = csv_lines(root / "transform" / "holdout.csv.out")
    assert len(joined) == len(held_out)
    features = features_module()
    rows = np.array([features.featurise(features.parse(line.split(","), labelled=False))
                     for line in held_out])
    expected = model.predict_proba(rows)[:, 1]
    for line, raw, want in zip(joined, held_out, expected):
        assert line.startswith(raw + ",")  # JoinSource=Input
        probability, label = line[len(raw) + 1:].split(",")
        assert float(probability) == pytest.approx(want, abs=1e-6)
        assert label == ("yes" if want >= 0.5 else "no")
    assert not (root / "state" / "models" / NAME).exists()  # run.py deleted its model
    assert processes_using(root) == []


@pytest.mark.docker
def test_processing_pipeline_on_docker(images: dict[str, str],
                                       docker_client: docker.DockerClient,
                                       tmp_path: Path) -> None:
    out = run([*RUN, "--backend", "docker", "--output", str(tmp_path)], tmp_path)
    root, summary = summary_of(tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "docker", out
    hosts = ["algo-1", "algo-2"]
    check_run(root, summary, hosts)
    for report in summary["processing"]["reports"].values():  # what the config files said
        assert report["local_paths"] == {
            "raw": "/opt/ml/processing/input/raw",
            **{k: f"/opt/ml/processing/output/{k}" for k in ("train", "validation", "report")}}
    request = json.loads((root / "state" / "processing-jobs" / PROCESSING_JOB /
                          "request.json").read_text())
    assert request["AppSpecification"]["ContainerEntrypoint"] == \
        ["python3", "/opt/ml/code/preprocess.py"]  # the image's own code
    no_containers_left(docker_client, f"optml.job={PROCESSING_JOB}", f"optml.job={TRAINING_JOB}",
                       f"optml.transform={NAME}")
    state = f"optml.state={root / 'state'}"
    assert docker_client.networks.list(filters={"label": state}) == []


def test_processing_pipeline_on_the_process_backend(tmp_path: Path) -> None:
    out = run([*RUN, "--backend", "process", "--output", str(tmp_path)], tmp_path)
    root, summary = summary_of(tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "process", out
    hosts = ["127.0.0.1", "127.0.0.2"]
    check_run(root, summary, hosts)
    work = root / "state" / "processing-jobs" / PROCESSING_JOB / "work"
    for host, report in summary["processing"]["reports"].items():
        # each host's relocated /opt/ml tree, as its config file named it (mapped by local mode)
        tree = work / host / "processing"
        assert report["local_paths"] == {
            "raw": str(tree / "input" / "raw"),
            **{k: str(tree / "output" / k) for k in ("train", "validation", "report")}}
