"""The reference inference toolkit with Multi Model Server under local mode on Docker.

optml-conformance/inference-toolkit is built as sagemaker-inference documents: the toolkit and
multi-model-server from PyPI, a Java runtime from Debian, a handler service, an entrypoint that
starts the model server on ``serve``. Its toy model (images/inference-toolkit/
conformance_handler.py) answers which model, model directory and instance served a request. These
tests prove that local mode serves such an image as the service would: a 2-instance endpoint
balanced over both containers, a multi-model endpoint that loads each TargetModel through the
server's own ``POST /models``, and a batch transform whose output matches what the SDK's local
mode makes of the same image, model and input.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.docker import sdk_local
from tests.docker.conformance.local import LocalMode, files, tarball

IMAGE = "optml-conformance/inference-toolkit:latest"
ENV = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
ROWS = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.5], [-1.0, 0.5, 0.25]]


def _csv(rows: list[list[float]]) -> str:
    return "".join(",".join(str(v) for v in row) + "\n" for row in rows)


def _model(path: Path, name: str, scale: float) -> Path:
    return tarball(path, {"model.json": json.dumps({"name": name, "scale": scale})})


def _expected(rows: list[list[float]], scale: float) -> list[float]:
    return [round(sum(row) * scale, 6) for row in rows]


@pytest.mark.docker
def test_two_instances_both_serve(local: LocalMode, tmp_path: Path) -> None:
    local.model("tk-two", IMAGE, _model(tmp_path / "m" / "model.tar.gz", "doubler", 2.0), ENV)
    local.deploy("tk-two", "tk-two", count=2, instance_type="ml.m5.large")
    loaded = set()
    for _ in range(6):  # the router balances idle instances round robin
        body, response = local.invoke("tk-two", _csv(ROWS).encode(), "text/csv",
                                      Accept="application/json")
        answer = json.loads(body)
        assert answer["predictions"] == _expected(ROWS, 2.0)
        assert answer["model_dir"] == "/opt/ml/model" and answer["model_files"] == ["model.json"]
        assert response["InvokedProductionVariant"] == "AllTraffic"
        loaded.add(answer["loaded"])
    assert len(loaded) == 2  # two containers, each with its own copy of the model
    body, response = local.invoke("tk-two", b"1,1,1\n", "text/csv", Accept="text/csv")
    assert body.decode().split() == ["6.0"] and response["ContentType"] == "text/csv"


@pytest.mark.docker
def test_multi_model_endpoint_serves_each_target_model(local: LocalMode, tmp_path: Path) -> None:
    models = tmp_path / "models"
    _model(models / "double.tar.gz", "double", 2.0)
    _model(models / "negate.tar.gz", "negate", -1.0)
    local.model("tk-mme", IMAGE, models, ENV, mode="MultiModel")
    local.deploy("tk-mme", "tk-mme")
    for target, scale in (("double.tar.gz", 2.0), ("negate.tar.gz", -1.0),
                          ("double.tar.gz", 2.0)):
        body, _ = local.invoke("tk-mme", _csv(ROWS).encode(), "text/csv",
                               Accept="application/json", TargetModel=target)
        answer = json.loads(body)
        assert answer["model"] == target.split(".")[0], answer
        assert answer["predictions"] == _expected(ROWS, scale)
        assert answer["multi_model"] == "true"  # the platform announced SAGEMAKER_MULTI_MODEL
        assert answer["model_dir"].startswith("/opt/ml/models/")
        assert answer["model_files"] == ["model.json"]


SDK_TRANSFORM = r'''
from sagemaker.model import Model

image, model_uri, input_uri, output_uri, env = ARGS
model = Model(image_uri=image, model_data=model_uri, role="arn:aws:iam::000000000000:role/local",
              sagemaker_session=session, env=_json.loads(env))
transformer = model.transformer(instance_count=1, instance_type="local", strategy="MultiRecord",
                                assemble_with="Line", output_path=output_uri, accept="text/csv")
# local mode runs the job inside this call; wait/logs would ask CloudWatch
transformer.transform(input_uri, content_type="text/csv", split_type="Line", wait=False,
                      logs=False)
report("transformed")
'''


@pytest.mark.docker
def test_batch_transform_matches_the_sdks_local_mode(local: LocalMode, tmp_path: Path) -> None:
    tar = _model(tmp_path / "m" / "model.tar.gz", "tripler", 3.0)
    inputs = files(tmp_path / "in", {"a.csv": _csv(ROWS * 20), "b.csv": _csv(ROWS[:1])})
    local.model("tk-batch", IMAGE, tar, ENV)
    # ours runs while the SDK's runs: the comparison costs about one container start, not two
    ours = local.start_transform(
        "tk-batch", "tk-batch", inputs, BatchStrategy="MultiRecord",
        transform_input={"ContentType": "text/csv", "SplitType": "Line"},
        transform_output={"Accept": "text/csv", "AssembleWith": "Line"})
    sdk_out = tmp_path / "sdk-out"
    sdk_local.run_sdk(SDK_TRANSFORM, [IMAGE, tar.as_uri(), inputs.as_uri(), sdk_out.as_uri(),
                                      json.dumps(ENV)], tmp_path / "sdk", serves=True).check()

    described = local.wait_transform("tk-batch")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert described["BatchStrategy"] == "MultiRecord"
    for name, rows in (("a.csv", ROWS * 20), ("b.csv", ROWS[:1])):
        output = (ours / f"{name}.out").read_bytes()
        assert [float(v) for v in output.decode().split()] == _expected(rows, 3.0)
        # byte for byte, but for the newline the SDK adds after a result that already ends
        # with one (AssembleWith=Line ends each result with exactly one newline)
        assert (sdk_out / f"{name}.out").read_bytes() == output + b"\n", name
