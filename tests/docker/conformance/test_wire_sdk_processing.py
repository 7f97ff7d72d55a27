"""The SageMaker Python SDK's ScriptProcessor, unchanged and with a normal (non-local) Session,
against the wire API on the Docker backend: a local script runs on 2 instances over a local
directory of CSV files that the SDK uploads and local mode shards by S3 key, with its logs
streamed by ``run(wait=True, logs=True)`` through the CloudWatch Logs API, its outputs uploaded
to S3 and its exit message in DescribeProcessingJob; a script that fails makes ``run`` raise the
SDK's UnexpectedStatusException with the job's FailureReason.

The SDK puts the code at ``/opt/ml/processing/input/code`` and the data input at
``/opt/ml/processing/input``: LocalPaths inside one another. Both jobs run at once, each in its
own child interpreter: the SDK's log reader sleeps 10 s before it first looks at the job, and
while it tails a running job it looks at the status only every 30 s."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.docker.conformance.local import LocalMode
from tests.docker.conformance.test_plain_images import THREE_LINE
from tests.docker.conformance.wire import ROLE, run_sdk, sdk_result, wire_server

SDK_SCRIPT = r'''
import json, sys
import boto3, sagemaker
from sagemaker.exceptions import UnexpectedStatusException
from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor

args = json.loads(sys.argv[1])
session = sagemaker.Session()
bucket = session.default_bucket()
processor = ScriptProcessor(image_uri=args["image"], command=["python3"], instance_count=2,
                            instance_type="ml.m5.large", role=args["role"],
                            base_job_name=args["base"], sagemaker_session=session)
inputs = [ProcessingInput(source=args["data"], destination="/opt/ml/processing/input",
                          s3_data_distribution_type="ShardedByS3Key")] if args["data"] else []
output_uri = f"s3://{bucket}/{args['base']}/seen"
outputs = [ProcessingOutput(source="/opt/ml/processing/output", output_name="seen",
                            destination=output_uri)]
raised = None
try:
    processor.run(code=args["code"], inputs=inputs, outputs=outputs,
                  arguments=["--scale", "2.5", "--label", "two words"], wait=True, logs=True)
except UnexpectedStatusException as exc:
    raised = str(exc)
described = processor.latest_job.describe()
s3 = boto3.client("s3")
listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{args['base']}/seen/").get("Contents", [])
written = {item["Key"].rsplit("/", 1)[1]:
           json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
           for item in listed}
print("\nRESULT " + json.dumps({
    "raised": raised, "status": described["ProcessingJobStatus"],
    "exit_message": described.get("ExitMessage"),
    "failure_reason": described.get("FailureReason"),
    "inputs": {i["InputName"]: i["S3Input"]["LocalPath"] for i in described["ProcessingInputs"]},
    "output_uri": described["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"],
    "expected_output_uri": output_uri, "written": written}, default=str), flush=True)
'''

PREPROCESS = r'''
"""Sum the ``value`` column of the CSV files this instance was given."""
import argparse, csv, json, pathlib

parser = argparse.ArgumentParser()
parser.add_argument("--scale", type=float, required=True)
parser.add_argument("--label", required=True)
args = parser.parse_args()
host = json.loads(pathlib.Path("/opt/ml/config/resourceconfig.json").read_text())["current_host"]
root = pathlib.Path("/opt/ml/processing/input")
seen = sorted(str(p.relative_to(root)) for p in root.rglob("*")
              if p.is_file() and p.relative_to(root).parts[0] != "code")
rows = [row for name in seen for row in csv.DictReader((root / name).open())]
total = sum(float(row["value"]) for row in rows)
print(f"preprocess {host}: {len(seen)} files, {len(rows)} rows, total {total}", flush=True)
pathlib.Path("/opt/ml/processing/output", f"{host}.json").write_text(json.dumps({
    "files": seen, "rows": len(rows), "scaled": total * args.scale, "label": args.label,
    "code": sorted(p.name for p in (root / "code").iterdir())}))
pathlib.Path("/opt/ml/output/message").write_text(f"preprocessed with scale {args.scale}")
'''

FAILING = r'''
"""algo-2 fails at once, leaving a message; algo-1 would wait far longer than the test."""
import json, pathlib, sys, time

host = json.loads(pathlib.Path("/opt/ml/config/resourceconfig.json").read_text())["current_host"]
if host == "algo-2":
    print(f"failing {host}: the input has no header row", flush=True)
    pathlib.Path("/opt/ml/output/message").write_text("no header row in the input")
    sys.exit(3)
print(f"failing {host}: waiting for my peer", flush=True)
time.sleep(300)
'''

PARTS = 6
ROWS = 4


@pytest.mark.docker
def test_the_sdks_script_processor_shards_logs_uploads_and_fails_unchanged(
        local: LocalMode, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    values = {}
    for part in range(PARTS):
        rows = [(part * 10 + row, part + row / 4) for row in range(ROWS)]
        values[f"part-{part}.csv"] = sum(value for _, value in rows)
        (data / f"part-{part}.csv").write_text(
            "id,value\n" + "".join(f"{i},{v}\n" for i, v in rows))
    (tmp_path / "preprocess.py").write_text(PREPROCESS)
    (tmp_path / "failing.py").write_text(FAILING)
    script = tmp_path / "sdk_run.py"
    script.write_text(SDK_SCRIPT)
    common = {"image": THREE_LINE, "role": ROLE}
    with wire_server(local) as server, ThreadPoolExecutor(2) as pool:
        ok = pool.submit(run_sdk, server, script, common | {
            "base": "prep", "code": str(tmp_path / "preprocess.py"), "data": str(data)},
            timeout=300)
        bad = pool.submit(run_sdk, server, script, common | {
            "base": "failing", "code": str(tmp_path / "failing.py"), "data": None},
            timeout=300)
        ok_run, bad_run = ok.result(), bad.result()

    result = sdk_result(ok_run)
    assert result["raised"] is None
    assert result["status"] == "Completed", result
    assert result["inputs"] == {"input-1": "/opt/ml/processing/input",
                                "code": "/opt/ml/processing/input/code"}
    assert result["exit_message"] == "preprocessed with scale 2.5"
    # each instance wrote what it saw, named by its current_host; the outputs are in S3
    assert result["output_uri"] == result["expected_output_uri"]
    written = result["written"]
    assert sorted(written) == ["algo-1.json", "algo-2.json"]
    shards = [set(written[f"algo-{n}.json"]["files"]) for n in (1, 2)]
    assert all(shards) and shards[0].isdisjoint(shards[1])  # each saw only its shard
    assert shards[0] | shards[1] == set(values)
    for shard, seen in zip(shards, (written["algo-1.json"], written["algo-2.json"]),
                           strict=True):
        assert seen["rows"] == ROWS * len(shard)
        assert seen["scaled"] == pytest.approx(2.5 * sum(values[name] for name in shard))
        assert seen["label"] == "two words"
        assert seen["code"] == ["preprocess.py"]  # the nested code input is there too
    # run(logs=True) printed each host's stream once (not local mode's merged all.log)
    for n, shard in ((1, shards[0]), (2, shards[1])):
        line = f"preprocess algo-{n}: {len(shard)} files, {ROWS * len(shard)} rows"
        assert ok_run.stdout.count(line) == 1, ok_run.stdout[-3000:]

    failed = sdk_result(bad_run)
    assert failed["status"] == "Failed"
    assert failed["failure_reason"] == \
        "AlgorithmError: See job logs for more information (host algo-2 exited with code 3)"
    assert failed["raised"] is not None and failed["failure_reason"] in failed["raised"]
    assert failed["exit_message"] == "no header row in the input"
    assert failed["written"] == {}  # a failed job uploads no EndOfJob output
    assert bad_run.stdout.count("failing algo-2: the input has no header row") == 1, \
        bad_run.stdout[-3000:]
    assert bad_run.stdout.count("failing algo-1: waiting for my peer") == 1
