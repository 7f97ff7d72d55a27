"""Local batch transform on the process backend: real ``optml serve`` instances, real files."""

from __future__ import annotations

import gzip
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from local_mode.errors import ValidationException
from tests.integration.test_local_endpoints_support import FAST_ENV, Local, local
from toolkit.formats import recordio, tfrecord
from toolkit.pids import pid_alive

__all__ = ["local"]

CSV_SUM = """
    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        if isinstance(body, str):
            body = body.encode()
        if b"boom" in body:
            raise ValueError("boom")
        lines = [l for l in body.decode().split("\\n") if l]
        return "".join(str(sum(float(x) for x in l.split(","))) + "\\n" for l in lines), "text/csv"
"""

REVERSE = """
    import io
    from toolkit.formats import recordio, tfrecord

    FORMAT = {"application/x-recordio": recordio, "application/x-tfrecord": tfrecord}

    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        module = FORMAT[content_type]
        out = io.BytesIO()
        records = list(module.read_records(io.BytesIO(body)))
        for record in records:
            module.write_record(out, record[::-1] + b"/%d" % len(records))
        return out.getvalue(), content_type
"""

SLOW = """
    import json
    import os
    import threading
    import time

    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def model_fn(model_dir):
        return None

    def execution_parameters_fn():
        return {"MaxConcurrentTransforms": 3, "BatchStrategy": "SINGLE_RECORD",
                "MaxPayloadInMB": 2}

    def transform_fn(model, body, content_type, accept):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(float(os.environ.get("DELAY", "0.3")))
        with lock:
            state["now"] -= 1
        return json.dumps({"pid": os.getpid(), "max": state["max"]}) + "\\n", "application/json"
"""


def job(local: Local, name: str, model: str, inputs: Path | str, output: Path | str,
        **extra: Any) -> dict[str, Any]:
    data_type = extra.pop("S3DataType", "S3Prefix")
    transform_input = {"DataSource": {"S3DataSource": {
        "S3DataType": data_type,
        "S3Uri": inputs if isinstance(inputs, str) else inputs.as_uri()}},
        **extra.pop("Input", {})}
    request = {"TransformJobName": name, "ModelName": model, "TransformInput": transform_input,
               "TransformOutput": {"S3OutputPath": output if isinstance(output, str)
                                   else output.as_uri(), **extra.pop("Output", {})},
               "TransformResources": {"InstanceType": "local",
                                      "InstanceCount": extra.pop("InstanceCount", 1)},
               **extra}
    local.sm.create_transform_job(**request)
    return wait(local, name)


def wait(local: Local, name: str, timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = local.sm.describe_transform_job(TransformJobName=name)
        if described["TransformJobStatus"] in ("Completed", "Failed", "Stopped"):
            return described
        assert time.monotonic() < deadline, described
        time.sleep(0.05)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_line_split_batches_join_and_filters_in_input_order(local: Local, tmp_path: Path
                                                            ) -> None:
    local.model("sum", CSV_SUM)
    rows = {f"part-{n}.csv": "".join(f"{n}{i},{i},{i * 10}\n" for i in range(300))
            for n in (1, 2)}
    for name, text in rows.items():
        write(tmp_path / "in" / name, text.encode())
    described = job(local, "t1", "sum", tmp_path / "in", tmp_path / "out",
                    Input={"ContentType": "text/csv", "SplitType": "Line"},
                    Output={"AssembleWith": "Line", "Accept": "text/csv"},
                    BatchStrategy="MultiRecord", MaxPayloadInMB=1, MaxConcurrentTransforms=2,
                    DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input",
                                    "OutputFilter": "$[1:]"})
    assert described["TransformJobStatus"] == "Completed", described
    assert described["BatchStrategy"] == "MultiRecord" and described["MaxPayloadInMB"] == 1
    for n in (1, 2):
        lines = (tmp_path / "out" / f"part-{n}.csv.out").read_text().splitlines()
        assert lines == [f"{i},{i * 10},{float(i * 11)}" for i in range(300)]
    progress = local.sm.transform_progress(TransformJobName="t1")
    assert progress == {"FilesTotal": 2, "FilesDone": 2, "FilesFailed": 0, "RecordsDone": 600}
    assert local.sm.list_transform_jobs()["TransformJobSummaries"][0]["TransformJobName"] == "t1"


JSON_SCORE = """
    import json

    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        if isinstance(body, str):
            body = body.encode()
        out = [json.dumps({"score": sum(json.loads(l))}) for l in body.decode().splitlines() if l]
        return "\\n".join(out) + "\\n", "application/jsonlines"
"""


def test_json_join_with_input_and_single_record(local: Local, tmp_path: Path) -> None:
    local.model("score", JSON_SCORE)
    records = [{"id": i, "features": [i, 1]} for i in range(5)]
    write(tmp_path / "in" / "a.jsonl",
          "".join(json.dumps(r) + "\n" for r in records).encode())
    described = job(local, "j", "score", tmp_path / "in", tmp_path / "out",
                    Input={"ContentType": "application/jsonlines", "SplitType": "Line"},
                    Output={"AssembleWith": "Line"}, BatchStrategy="SingleRecord",
                    DataProcessing={"InputFilter": "$.features", "JoinSource": "Input"})
    assert described["TransformJobStatus"] == "Completed", described
    out = [json.loads(line) for line in (tmp_path / "out" / "a.jsonl.out").read_text().splitlines()]
    assert out == [{**r, "SageMakerOutput": {"score": r["id"] + 1}} for r in records]


@pytest.mark.parametrize("split", ["RecordIO", "TFRecord"])
@pytest.mark.parametrize("strategy", ["SingleRecord", "MultiRecord"])
def test_binary_records_with_both_strategies(local: Local, tmp_path: Path, split: str,
                                             strategy: str) -> None:
    module = recordio if split == "RecordIO" else tfrecord
    local.model("rev", REVERSE)
    payloads = [bytes([65 + i]) * (i + 1) + b"\n\x00" for i in range(12)]
    buffer = io.BytesIO()
    for payload in payloads:
        module.write_record(buffer, payload)
    write(tmp_path / "in" / "data.bin", buffer.getvalue())
    described = job(local, "b", "rev", tmp_path / "in", tmp_path / "out",
                    Input={"ContentType": f"application/x-{split.lower()}", "SplitType": split},
                    BatchStrategy=strategy, MaxPayloadInMB=1)
    assert described["TransformJobStatus"] == "Completed", described
    with (tmp_path / "out" / "data.bin.out").open("rb") as handle:
        results = list(module.read_records(handle))
    per_request = 1 if strategy == "SingleRecord" else 12
    assert results == [p[::-1] + b"/%d" % per_request for p in payloads]


def test_gzip_whole_objects_and_a_failing_file(local: Local, tmp_path: Path) -> None:
    local.model("sum", CSV_SUM)
    write(tmp_path / "in" / "good-1.csv.gz", gzip.compress(b"1,2\n3,4\n"))
    write(tmp_path / "in" / "bad.csv.gz", gzip.compress(b"boom\n"))
    write(tmp_path / "in" / "sub" / "good-2.csv.gz", gzip.compress(b"5,5\n"))
    described = job(local, "g", "sum", tmp_path / "in", tmp_path / "out",
                    Input={"ContentType": "text/csv", "CompressionType": "Gzip"},
                    ModelClientConfig={"InvocationsMaxRetries": 0,
                                       "InvocationsTimeoutInSeconds": 30})
    assert described["TransformJobStatus"] == "Failed"
    assert "1 of 3 input file(s) failed" in described["FailureReason"]
    assert "bad.csv.gz" in described["FailureReason"] and "boom" in described["FailureReason"]
    assert (tmp_path / "out" / "good-1.csv.gz.out").read_text() == "3.0\n7.0\n"
    assert (tmp_path / "out" / "sub" / "good-2.csv.gz.out").read_text() == "10.0\n"
    assert not (tmp_path / "out" / "bad.csv.gz.out").exists()


def test_record_too_large_fails_its_file_and_zero_streams_the_whole_object(
        local: Local, tmp_path: Path) -> None:
    local.model("sum", CSV_SUM)
    big = b"1,1\n" * 400_000  # 1.6 MB
    write(tmp_path / "in" / "big.csv", big)
    write(tmp_path / "one" / "line.csv", b"1," + b"0" * (1024 * 1024) + b"\n")
    streamed = job(local, "z", "sum", tmp_path / "in", tmp_path / "out",
                   Input={"ContentType": "text/csv", "SplitType": "Line"}, MaxPayloadInMB=0)
    assert streamed["TransformJobStatus"] == "Completed", streamed
    assert (tmp_path / "out" / "big.csv.out").read_bytes() == b"2.0\n" * 400_000
    failed = job(local, "l", "sum", tmp_path / "one", tmp_path / "out2",
                 Input={"ContentType": "text/csv", "SplitType": "Line"}, MaxPayloadInMB=1)
    assert failed["TransformJobStatus"] == "Failed"
    assert "line.csv: record 0 is" in failed["FailureReason"]
    assert "MaxPayloadInMB=1" in failed["FailureReason"]


def test_instances_share_files_concurrently_and_container_parameters_apply(
        local: Local, tmp_path: Path) -> None:
    local.model("slow", SLOW)
    for n in range(6):
        write(tmp_path / "in" / f"f{n}.txt", b"a\nb\n")
    described = job(local, "c", "slow", tmp_path / "in", tmp_path / "out", InstanceCount=2,
                    Input={"ContentType": "text/plain", "SplitType": "Line"},
                    Environment={"DELAY": "0.3"})
    assert described["TransformJobStatus"] == "Completed", described
    # nothing set on the job: the container's /execution-parameters win over the defaults
    assert described["BatchStrategy"] == "SingleRecord"
    assert described["MaxConcurrentTransforms"] == 3 and described["MaxPayloadInMB"] == 2
    outputs = [json.loads(line) for n in range(6)
               for line in (tmp_path / "out" / f"f{n}.txt.out").read_text().splitlines()]
    assert len(outputs) == 12
    assert len({o["pid"] for o in outputs}) == 2  # both instances took files
    assert max(o["max"] for o in outputs) >= 2  # really concurrent within an instance


def test_limits_validation_and_stop(local: Local, tmp_path: Path) -> None:
    local.model("slow", SLOW)
    write(tmp_path / "in" / "f.txt", b"".join(b"x\n" for _ in range(200)))
    base = {"ModelName": "slow", "TransformInput": {"DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": (tmp_path / "in").as_uri()}}},
        "TransformOutput": {"S3OutputPath": (tmp_path / "out").as_uri()},
        "TransformResources": {"InstanceType": "local", "InstanceCount": 1}}
    with pytest.raises(ValidationException, match="must not exceed 100"):
        local.sm.create_transform_job(TransformJobName="x", MaxConcurrentTransforms=20,
                                      MaxPayloadInMB=10, **base)
    with pytest.raises(ValidationException, match="Could not find model"):
        local.sm.create_transform_job(TransformJobName="x", **{**base, "ModelName": "nope"})
    local.sm.create_transform_job(TransformJobName="s", Environment={"DELAY": "0.5"}, **base)
    deadline = time.monotonic() + 60
    while local.sm.transform_progress(TransformJobName="s")["RecordsDone"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = local.sm.store.get("transform-jobs", "s").runner_pid()
    local.sm.stop_transform_job(TransformJobName="s")
    assert wait(local, "s")["TransformJobStatus"] == "Stopped"
    deadline = time.monotonic() + 30
    while pid is not None and pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid is None or not pid_alive(pid)
    assert not (local.sm.store.root / "transform-jobs" / "s" / "work").exists()
    with pytest.raises(ValidationException, match="already stopped"):
        local.sm.stop_transform_job(TransformJobName="s")


def test_manifest_input_and_s3_output(tmp_path: Path, s3_environ: dict[str, str],
                                      s3_client: Any, s3_bucket: str) -> None:
    env = Local(tmp_path, s3_environ)
    try:
        env.model("sum", CSV_SUM)
        write(tmp_path / "data" / "x.csv", b"1,1\n")
        write(tmp_path / "data" / "y.csv", b"2,2\n")
        write(tmp_path / "data" / "skip.csv", b"9,9\n")
        manifest = write(tmp_path / "m.json", json.dumps(
            [{"prefix": (tmp_path / "data").as_uri() + "/"}, "y.csv", "x.csv"]).encode())
        described = job(env, "m", "sum", manifest.as_uri(), f"s3://{s3_bucket}/out",
                        S3DataType="ManifestFile", Input={"ContentType": "text/csv"})
        assert described["TransformJobStatus"] == "Completed", described
        keys = sorted(o["Key"] for o in s3_client.list_objects_v2(
            Bucket=s3_bucket, Prefix="out/")["Contents"])
        assert keys == ["out/x.csv.out", "out/y.csv.out"]
        body = s3_client.get_object(Bucket=s3_bucket, Key="out/y.csv.out")["Body"].read()
        assert body == b"4.0\n"
    finally:
        env.cleanup()


def test_fast_env_is_used() -> None:
    assert FAST_ENV["SAGEMAKER_MODEL_SERVER_WORKERS"] == "1"
