"""Parity with the SageMaker Python SDK's local mode on what it supports: batch transform and
a real-time endpoint, the same model, image and input through both.

One module fixture runs everything once (a container start costs seconds on the shared
machine): optml's two transform jobs and its endpoint are created on the Docker backend first,
then the SDK's local mode (in its own interpreter, see :mod:`tests.docker.sdk_local`) runs the
same two transforms and deploys the same model, and finally optml's endpoint is invoked with the
very request bodies the SDK's serializers produced. The tests then compare:

- ``SplitType: Line``, ``MultiRecord``, ``file://`` in and out, ``AssembleWith`` unset: every
  ``.out`` file is byte-for-byte the SDK's (and holds the host's own predictions);
- ``AssembleWith: Line``: the SDK writes a newline after every response even when the response
  already ends with one, so its files carry one extra blank line per request; optml ends each
  result with exactly one newline, as the service does (the documented difference);
- the endpoint: the same bodies with the same content type for the CSV and JSON serializers.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import numpy as np
import pytest

from local_mode.docker_engine import STATE_LABEL
from local_mode.runtime import RuntimeClient
from local_mode.sagemaker import SageMakerClient
from tests.docker import harness, sdk_local
from toolkit.settings import Settings

SKLEARN = "optml/sklearn:latest"
ENV = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "OPTML_INSTALL_REQUIREMENTS": "false"}
INPUT_ROWS = {"part-0.csv": 400, "part-1.csv": 1, "part-2.csv": 250}
WAIT_SECONDS = 300.0
"""A liveness bound for a job or an endpoint, not a speed assertion."""
TERMINAL = ("Completed", "Failed", "Stopped")

# Runs in the SDK's interpreter after sdk_local.PRELUDE (session, ARGS, report).
SDK_TRANSFORM_AND_PREDICT = r'''
import json
from sagemaker.deserializers import BytesDeserializer, CSVDeserializer, JSONDeserializer
from sagemaker.model import Model
from sagemaker.predictor import Predictor
from sagemaker.serializers import CSVSerializer, JSONSerializer

image, model_uri, input_uri, out_none, out_line, rows_json, env_json = ARGS
rows = json.loads(rows_json)
model = Model(image_uri=image, model_data=model_uri, role="arn:aws:iam::000000000000:role/local",
              sagemaker_session=session, env=json.loads(env_json), predictor_cls=Predictor)
for assemble_with, output in ((None, out_none), ("Line", out_line)):
    transformer = model.transformer(instance_count=1, instance_type="local",
                                    strategy="MultiRecord", assemble_with=assemble_with,
                                    output_path=output, accept="text/csv")
    # local mode runs the job inside this call; wait/logs would ask CloudWatch
    transformer.transform(input_uri, content_type="text/csv", split_type="Line", wait=False,
                          logs=False)
report({"transformed": True})
predictor = model.deploy(initial_instance_count=1, instance_type="local")
try:
    answers = {}
    for name, serializer, deserializer in (("csv", CSVSerializer(), CSVDeserializer()),
                                           ("json", JSONSerializer(), JSONDeserializer())):
        accept = deserializer.ACCEPT[0]
        predictor.serializer = serializer
        predictor.deserializer = BytesDeserializer(accept=accept)
        raw = predictor.predict(rows)
        predictor.deserializer = deserializer
        answers[name] = {"request": serializer.serialize(rows),
                         "content_type": serializer.CONTENT_TYPE, "accept": accept,
                         "raw": raw.decode(), "parsed": predictor.predict(rows)}
    report(answers)
finally:
    predictor.delete_endpoint()
'''


@dataclass(frozen=True)
class Outcome:
    """Both sides' results, gathered once for the module."""

    inputs: Path
    expected: dict[str, list[float]]  # the host's predictions per input file
    query_expected: list[float]  # the host's predictions for the endpoint's request rows
    sdk: sdk_local.SdkRun
    sdk_out: dict[str, Path]  # "none" / "line" -> output directory
    ours_out: dict[str, Path]
    ours_jobs: dict[str, dict[str, Any]]  # describe_transform_job per assembly
    ours_answers: dict[str, dict[str, Any]]  # "csv" / "json" -> body and content type


def _model_tarball(path: Path) -> Any:
    """A decision tree fitted on the host (same scikit-learn as the image) as model.tar.gz."""
    import joblib
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(11)
    features = rng.normal(size=(300, 3))
    model = DecisionTreeRegressor(max_depth=6, random_state=0).fit(
        features, features @ np.array([1.5, -2.0, 0.5]) + 3.0)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    path.parent.mkdir(parents=True)
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("model.joblib")
        info.size, info.mode = len(buffer.getvalue()), 0o644
        archive.addfile(info, io.BytesIO(buffer.getvalue()))
    return model


def _write_inputs(directory: Path) -> dict[str, np.ndarray]:
    directory.mkdir()
    rows = {}
    for seed, (name, count) in enumerate(INPUT_ROWS.items()):
        rows[name] = np.random.default_rng(seed).normal(size=(count, 3)).round(6)
        (directory / name).write_text(
            "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows[name]))
    return rows


class Ours:
    """optml's local clients on the Docker backend, on a private state directory."""

    def __init__(self, root: Path) -> None:
        self.state = (root / "state").absolute()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "OPTML_"))}
        env.update(OPTML_LOCAL_STATE_DIR=str(self.state), OPTML_LOCAL_STOP_GRACE_SECONDS="2")
        settings = Settings.from_environ(env)
        self.sm = SageMakerClient(settings, backend="docker")
        self.rt = RuntimeClient(settings)

    def transform(self, name: str, inputs: Path, output: Path, assemble_with: str) -> None:
        self.sm.create_transform_job(
            TransformJobName=name, ModelName="parity", BatchStrategy="MultiRecord",
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                            "S3Uri": inputs.as_uri()}},
                            "ContentType": "text/csv", "SplitType": "Line"},
            TransformOutput={"S3OutputPath": output.as_uri(), "Accept": "text/csv",
                             "AssembleWith": assemble_with},
            TransformResources={"InstanceType": "local", "InstanceCount": 1})

    def wait_job(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_SECONDS
        while (described := self.sm.describe_transform_job(TransformJobName=name))[
                "TransformJobStatus"] not in TERMINAL:
            assert time.monotonic() < deadline, described
            time.sleep(0.1)
        return described

    def wait_endpoint(self, name: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while (status := self.sm.describe_endpoint(EndpointName=name))[
                "EndpointStatus"] != "InService":
            assert status["EndpointStatus"] != "Failed", status.get("FailureReason")
            assert time.monotonic() < deadline, status
            time.sleep(0.05)

    def cleanup(self, client: docker.DockerClient) -> list[str]:
        """Delete everything; return what was still there after a bounded wait (then gone)."""
        self.rt.close()
        for resource in self.sm.store.list("endpoints"):
            self.sm.delete_endpoint(EndpointName=resource.name)
        for resource in self.sm.store.list("transform-jobs"):
            if resource.describe()["TransformJobStatus"] not in TERMINAL:
                self.sm.stop_transform_job(TransformJobName=resource.name)
        selector = {"label": f"{STATE_LABEL}={self.state}"}
        deadline = time.monotonic() + 60  # a finished transform runner tears down on its own
        while client.containers.list(all=True, filters=selector) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        left = [f"container {c.name}" for c in client.containers.list(all=True,
                                                                      filters=selector)]
        for container in client.containers.list(all=True, filters=selector):
            harness.remove(container)
        for network in client.networks.list(filters=selector):
            left.append(f"network {network.name}")
            network.remove()
        return left


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory,
            docker_client: docker.DockerClient) -> Iterator[Outcome]:
    try:
        docker_client.images.get(SKLEARN)
    except docker.errors.ImageNotFound:
        harness.build_images(("sklearn",))
    root = tmp_path_factory.mktemp("sdk-transform")
    model = _model_tarball(root / "model" / "model.tar.gz")
    # the SDK extracts the artifact beside the tarball: it gets its own copy
    sdk_tarball = root / "sdk-model" / "model.tar.gz"
    sdk_tarball.parent.mkdir()
    sdk_tarball.write_bytes((root / "model" / "model.tar.gz").read_bytes())
    inputs = root / "input"
    rows = _write_inputs(inputs)
    expected = {name: model.predict(values).tolist() for name, values in rows.items()}
    query = np.random.default_rng(5).normal(size=(20, 3)).round(6).tolist()
    ours = Ours(root)
    ours_out = {"none": root / "ours-none", "line": root / "ours-line"}
    sdk_out = {"none": root / "sdk-none", "line": root / "sdk-line"}
    try:
        ours.sm.create_model(ModelName="parity", PrimaryContainer={
            "Image": SKLEARN, "ModelDataUrl": (root / "model" / "model.tar.gz").as_uri(),
            "Environment": ENV})
        ours.transform("parity-none", inputs, ours_out["none"], "None")
        ours.transform("parity-line", inputs, ours_out["line"], "Line")
        ours.sm.create_endpoint_config(EndpointConfigName="parity", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "parity", "InitialInstanceCount": 1,
            "InstanceType": "local", "InitialVariantWeight": 1.0}])
        ours.sm.create_endpoint(EndpointName="parity", EndpointConfigName="parity")
        # the SDK runs meanwhile (optml never binds 8080: its ports are the engine's choice)
        sdk = sdk_local.run_sdk(
            SDK_TRANSFORM_AND_PREDICT,
            [SKLEARN, sdk_tarball.as_uri(), inputs.as_uri(), sdk_out["none"].as_uri(),
             sdk_out["line"].as_uri(), json.dumps(query), json.dumps(ENV)],
            root / "sdk", serves=True).check()
        jobs = {kind: ours.wait_job(f"parity-{kind}") for kind in ("none", "line")}
        ours.wait_endpoint("parity")
        answers = {}
        for kind, asked in sdk.result.items():
            response = ours.rt.invoke_endpoint(
                EndpointName="parity", Body=asked["request"].encode(),
                ContentType=asked["content_type"], Accept=asked["accept"])
            answers[kind] = {"raw": response["Body"].read().decode(),
                             "content_type": response["ContentType"]}
        yield Outcome(inputs, expected, model.predict(query).tolist(), sdk, sdk_out, ours_out,
                      jobs, answers)
    finally:
        left = ours.cleanup(docker_client)
    assert left == [], f"optml left {left} behind until removed by force"
    assert sdk_local.leftovers(docker_client, root / "sdk") == []


@pytest.mark.docker
def test_line_multirecord_transform_out_files_are_identical(outcome: Outcome) -> None:
    job = outcome.ours_jobs["none"]
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert job["BatchStrategy"] == "MultiRecord"
    names = sorted(f"{name}.out" for name in INPUT_ROWS)
    assert sorted(p.name for p in outcome.sdk_out["none"].iterdir()) == names
    assert sorted(p.name for p in outcome.ours_out["none"].iterdir()) == names
    for name, predictions in outcome.expected.items():
        ours = (outcome.ours_out["none"] / f"{name}.out").read_bytes()
        assert ours == (outcome.sdk_out["none"] / f"{name}.out").read_bytes(), name
        assert [float(v) for v in ours.split()] == pytest.approx(predictions, rel=1e-6)


@pytest.mark.docker
def test_assemble_with_line_differs_only_by_the_sdks_extra_newline(outcome: Outcome) -> None:
    job = outcome.ours_jobs["line"]
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    for name in INPUT_ROWS:
        ours = (outcome.ours_out["line"] / f"{name}.out").read_bytes()
        sdk = (outcome.sdk_out["line"] / f"{name}.out").read_bytes()
        # each file fits one MultiRecord request; its CSV answer already ends with "\n"
        assert ours == (outcome.ours_out["none"] / f"{name}.out").read_bytes()
        assert ours.endswith(b"\n") and not ours.endswith(b"\n\n")
        assert sdk == ours + b"\n"


@pytest.mark.docker
def test_endpoint_answers_the_sdks_requests_as_the_sdks_endpoint_does(outcome: Outcome) -> None:
    sdk = outcome.sdk.result
    assert set(sdk) == set(outcome.ours_answers) == {"csv", "json"}
    for kind, ours in outcome.ours_answers.items():
        assert ours["raw"] == sdk[kind]["raw"], kind
        assert ours["content_type"].split(";")[0] == sdk[kind]["accept"]
    assert sdk["json"]["parsed"] == pytest.approx(outcome.query_expected, rel=1e-6)
    assert [float(v) for [v] in sdk["csv"]["parsed"]] == \
        pytest.approx(outcome.query_expected, rel=1e-6)
