"""The SageMaker Python SDK, unchanged and with a normal (non-local) Session, against the wire
API on the Docker backend: an image built the way users build theirs (the README's three-line
image, code in /opt/ml/code) trains on 2 instances from ``s3://`` with its log streamed, is
deployed and predicted with CSV and JSON serializers, scores an ``s3://`` prefix in a batch
transform split by line, and is deleted. The SDK runs in a child interpreter whose only link to
local mode is the environment ``optml local api --env`` prints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.docker.conformance.local import LocalMode
from tests.docker.conformance.test_plain_images import THREE_LINE
from tests.docker.conformance.wire import ROLE, run_sdk, sdk_result, wire_server

SDK_SCRIPT = r'''
import json, sys
import boto3, sagemaker
from sagemaker.deserializers import JSONDeserializer
from sagemaker.estimator import Estimator
from sagemaker.serializers import CSVSerializer, JSONSerializer

args = json.loads(sys.argv[1])
session = sagemaker.Session()
bucket = session.default_bucket()
train = session.upload_data(args["train_dir"], bucket=bucket, key_prefix="wire/train")
batch = session.upload_data(args["batch_dir"], bucket=bucket, key_prefix="wire/batch")
estimator = Estimator(image_uri=args["image"], role=args["role"], instance_count=2,
                      instance_type="ml.m5.large", hyperparameters={"alpha": 0.1},
                      output_path=f"s3://{bucket}/wire/output", sagemaker_session=session,
                      metric_definitions=[{"Name": "train:rmse",
                                           "Regex": r"train_rmse=([0-9.]+)"}])
estimator.fit({"train": train}, logs=True)
job = estimator.latest_training_job.describe()
predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                             serializer=CSVSerializer(), deserializer=JSONDeserializer())
csv_answer = predictor.predict(args["query"])
predictor.serializer = JSONSerializer()
json_answer = predictor.predict(args["query"])
transformer = estimator.transformer(instance_count=1, instance_type="ml.m5.large",
                                    output_path=f"s3://{bucket}/wire/scored",
                                    accept="application/json", assemble_with="Line")
transformer.transform(batch, content_type="text/csv", split_type="Line")
transformer.wait(logs=False)
s3 = boto3.client("s3")
scored = {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
          for item in s3.list_objects_v2(Bucket=bucket, Prefix="wire/scored/")["Contents"]}
endpoint = predictor.endpoint_name
predictor.delete_model()      # (it reads the endpoint's config, so before delete_endpoint)
predictor.delete_endpoint()
endpoints = [e["EndpointName"] for e in session.sagemaker_client.list_endpoints()["Endpoints"]]
print("\nRESULT " + json.dumps({
    "status": job["TrainingJobStatus"], "metrics": job.get("FinalMetricDataList", []),
    "artifact": job["ModelArtifacts"]["S3ModelArtifacts"], "bucket": bucket,
    "csv": csv_answer, "json": json_answer, "scored": scored,
    "endpoint": endpoint, "endpoints_left": endpoints}, default=str), flush=True)
'''


@pytest.mark.docker
def test_the_sdk_trains_deploys_predicts_and_transforms_unchanged(
        local: LocalMode, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    features = rng.normal(size=(40, 3)).round(4)
    target = features @ np.array([2.0, -1.0, 0.5]) + 1.0
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "data.csv").write_text("".join(
        ",".join(repr(float(v)) for v in row) + "\n" for row in np.column_stack([target,
                                                                                 features])))
    (tmp_path / "batch").mkdir()
    (tmp_path / "batch" / "rows.csv").write_text("".join(
        ",".join(repr(float(v)) for v in row) + "\n" for row in features[:5]))
    with wire_server(local) as server:
        script = tmp_path / "sdk_run.py"
        script.write_text(SDK_SCRIPT)
        args = {"image": THREE_LINE, "role": ROLE,
                "train_dir": str(tmp_path / "train"), "batch_dir": str(tmp_path / "batch"),
                "query": features[:2].tolist()}
        run = run_sdk(server, script, args)
    result = sdk_result(run)
    assert result["status"] == "Completed"
    assert result["bucket"] == "sagemaker-us-east-1-000000000000"  # STS's account, S3's bucket
    assert result["artifact"].startswith(f"s3://{result['bucket']}/wire/output/")
    assert [m["MetricName"] for m in result["metrics"]] == ["train:rmse"]
    # fit(logs=True) streamed both hosts' logs (one train_rmse line each) through the
    # CloudWatch Logs API, as the SDK prints them: the messages alone
    assert run.stdout.count("train_rmse=") == 2, run.stdout[-3000:]
    from sklearn.linear_model import Ridge

    expected = Ridge(alpha=0.1).fit(features, target).predict(features[:2]).tolist()
    assert result["csv"]["predictions"] == pytest.approx(expected, abs=1e-5)
    assert result["json"]["predictions"] == pytest.approx(expected, abs=1e-5)
    (key, text), = result["scored"].items()
    assert key.endswith("rows.csv.out")
    # the default strategy (MultiRecord) sends the 5 lines in one request: one JSON answer
    scored = [p for line in text.strip().splitlines() for p in json.loads(line)["predictions"]]
    assert scored == pytest.approx(Ridge(alpha=0.1).fit(features, target)
                                   .predict(features[:5]).tolist(), abs=1e-5)
    assert result["endpoint"] not in result["endpoints_left"]
