"""A real client accepts an optml image: the SageMaker Python SDK's local mode (v2) drives one
through fit -> deploy -> predict.

The image is the README's "own image in three lines": ``optml/sklearn`` plus a training script
in ``/opt/ml/code`` (``optml-test/sdk-sklearn``), which optml's ``train`` runs by default; the
SDK's local mode, like the service, mounts only its own directories under ``/opt/ml``. The
SDK's ``Estimator.fit`` trains a decision tree on CSV data the test writes,
``estimator.deploy(..., instance_type="local")`` serves the artifact with the image's
default scikit-learn handlers on host port 8080, and ``predictor.predict`` is called with the
SDK's CSV and JSON serializers; the answers must be the host's own predictions from the same
artifact. ``predictor.delete_endpoint()`` ends the endpoint; :mod:`tests.docker.sdk_local` then
removes what docker-compose left behind and checks port 8080 is free again.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import docker
import docker.errors
import numpy as np
import pytest

from tests.docker import harness, sdk_local

SKLEARN = "optml/sklearn:latest"
IMAGE = "optml-test/sdk-sklearn:latest"

TRAIN_PY = r'''
"""Decision tree on CSV channels (label first, no header), saved where optml/sklearn looks."""
import os, pathlib
import joblib
import numpy as np
from sklearn.tree import DecisionTreeClassifier

files = sorted(pathlib.Path(os.environ["SM_CHANNEL_TRAIN"]).glob("*.csv"))
data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(data[:, 1:], data[:, 0].astype(int))
joblib.dump(model, pathlib.Path(os.environ["SM_MODEL_DIR"], "model.joblib"))
print("trained on", len(data), "rows", flush=True)
'''

# Runs in the SDK's interpreter after sdk_local.PRELUDE (session, ARGS, report).
SDK_FIT_DEPLOY_PREDICT = r'''
import json
from sagemaker.deserializers import CSVDeserializer, JSONDeserializer
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.serializers import CSVSerializer, JSONSerializer

image, train_uri, output_uri, rows_json = ARGS
rows = json.loads(rows_json)
estimator = Estimator(image_uri=image, role="arn:aws:iam::000000000000:role/local",
                      instance_count=1, instance_type="local", output_path=output_uri,
                      sagemaker_session=session)
estimator.fit({"train": TrainingInput(train_uri, content_type="text/csv")}, logs=False)
report({"model_data": estimator.model_data})
predictor = estimator.deploy(initial_instance_count=1, instance_type="local",
                             serializer=CSVSerializer(), deserializer=CSVDeserializer())
try:
    status = session.sagemaker_client.describe_endpoint(
        EndpointName=predictor.endpoint_name)["EndpointStatus"]
    csv = predictor.predict(rows)
    predictor.serializer, predictor.deserializer = JSONSerializer(), JSONDeserializer()
    report({"status": status, "csv": csv, "json": predictor.predict(rows)})
finally:
    predictor.delete_endpoint()
'''


def _build(client: docker.DockerClient) -> str:
    """``IMAGE`` from an in-memory context (the engine caches it across runs)."""
    files = {"Dockerfile": f"FROM {SKLEARN}\nCOPY train.py /opt/ml/code/train.py\n",
             "train.py": TRAIN_PY}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as context:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            context.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    client.images.build(fileobj=buffer, custom_context=True, tag=IMAGE, rm=True, forcerm=True,
                        network_mode="none")
    return IMAGE


@pytest.fixture(scope="module")
def sdk_image(docker_client: docker.DockerClient) -> str:
    try:
        docker_client.images.get(SKLEARN)
    except docker.errors.ImageNotFound:
        harness.build_images(("sklearn",))  # also builds base and the stand-in when missing
    return _build(docker_client)


def _training_data(directory: Path) -> None:
    """300 labelled rows in three classes: label first, three features, no header."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 3)).round(4)
    labels = (features[:, 0] + features[:, 1] > 0).astype(int) + (features[:, 2] > 1)
    directory.mkdir(parents=True)
    np.savetxt(directory / "data.csv", np.column_stack([labels, features]), delimiter=",",
               fmt="%g")


def _host_predictions(model_tarball: Path, rows: list[list[float]]) -> list[int]:
    """What the artifact the SDK's training job wrote predicts here, on the host."""
    import joblib

    with tarfile.open(model_tarball) as archive:
        member = archive.extractfile("model.joblib")
        assert member is not None
        model: Any = joblib.load(io.BytesIO(member.read()))
    return [int(v) for v in model.predict(np.asarray(rows))]


@pytest.mark.docker
def test_sdk_fits_deploys_and_predicts_with_csv_and_json(
        tmp_path: Path, docker_client: docker.DockerClient, sdk_image: str) -> None:
    train = tmp_path / "train"
    _training_data(train)
    output = tmp_path / "sdk-output"
    rows = np.random.default_rng(1).normal(size=(25, 3)).round(4).tolist()
    workdir = tmp_path / "sdk"
    run = sdk_local.run_sdk(SDK_FIT_DEPLOY_PREDICT,
                            [sdk_image, train.as_uri(), output.as_uri(), json.dumps(rows)],
                            workdir, serves=True)  # sweeps and frees port 8080 even on failure
    assert sdk_local.leftovers(docker_client, workdir) == []
    assert not sdk_local.port_in_use()
    run.check()
    trained, served = run.results
    assert trained["model_data"] == (output / "model.tar.gz").as_uri()
    expected = _host_predictions(output / "model.tar.gz", rows)
    assert len(set(expected)) > 1  # a model that predicts one class would prove little
    assert served["status"] == "InService"
    # CSVDeserializer reads our one-prediction-per-line CSV as rows of one string field
    assert served["csv"] == [[str(v)] for v in expected]
    assert served["json"] == expected
    # the training and the serving container both ran, and both were removed afterwards
    assert len([name for name in run.swept if name.startswith("container ")]) == 2
