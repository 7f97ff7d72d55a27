"""The inference pipeline example (examples/inference-pipeline), run as a user runs it: on the
Docker backend (two images, two training jobs, one endpoint of two containers) and on the
process backend (``optml serve`` processes, no Docker).

Checked, not only exit 0: the endpoint's answer equals preprocess -> predict computed here from
the two artifacts (both through the example's own check and independently in this test); each
container was told its own port through SAGEMAKER_BIND_TO_PORT; an error in the first container
is a ModelError naming it; and no container, network or process of the run is left. Fast unit
and property-based tests of the preprocessor's parsing, feature engineering and npy answer come
first.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import docker
import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.docker.test_examples import EXAMPLES, no_containers_left, run, summary_of
from tests.docker.test_examples_multi_model import load
from tests.integration.local_training_support import processes_using
from toolkit.serving import HTTPError

PREPROCESS = EXAMPLES / "inference-pipeline" / "code" / "preprocess"
RUN = [sys.executable, str(EXAMPLES / "inference-pipeline" / "run.py")]


def preprocess_modules() -> tuple[ModuleType, ModuleType]:
    """``features`` and the preprocessor's ``inference`` (which imports ``features``)."""
    features = load(PREPROCESS / "features.py", "features")
    try:
        return features, load(PREPROCESS / "inference.py", "pipeline_example_preprocess")
    finally:
        del sys.modules["features"]  # no stray top-level "features" for other tests


def test_features_standardise_what_they_were_fitted_on() -> None:
    features, _ = preprocess_modules()
    rng = np.random.default_rng(3)
    raw = np.column_stack([rng.uniform(-5, 35, 100), rng.integers(0, 24, 100),
                           rng.uniform(50, 500, 100)])
    params = features.fit(raw)
    out = features.transform(raw, params)
    assert out.shape == (100, len(features.OUTPUTS)) == (100, len(params["mean"]))
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1, rtol=1e-12)
    json.dumps(params)  # the artifact is plain JSON


@pytest.mark.parametrize(("rows", "words"), [
    ([[20, 25, 100]], "row 0: hour=25"), ([[20, 3, 100], [20, -1, 100]], "row 1: hour=-1"),
    ([[20, 3, 0]], "row 0: floor_area_m2=0 is not a positive number"),
    ([[20, 3, float("inf")]], "floor_area_m2=inf"), ([[20, 3]], "expected rows of 3 values"),
    ([[20, float("nan"), 100]], "hour=nan"),
    ([[20, 3, 100], [float("-inf"), 3, 100]], "row 1: temperature_c=-inf")])
def test_bad_raw_rows_name_the_row_and_column(rows: list[list[float]], words: str) -> None:
    features, inference = preprocess_modules()
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        features.engineer(np.asarray(rows, dtype=np.float64))
    with pytest.raises(HTTPError) as caught:  # the container answers 400 with that message
        inference.predict_fn(np.asarray(rows, dtype=np.float64), {"mean": [0] * 5,
                                                                  "std": [1] * 5})
    assert caught.value.status_code == 400 and words in caught.value.message


def test_preprocessor_refuses_unparseable_and_unknown_bodies() -> None:
    _, inference = preprocess_modules()
    for body, content_type, status in ((b"1,x,3\n", "text/csv", 400),
                                       (b"[[1, 2", "application/json", 400),
                                       (b"1,2,3", "application/x-npy", 415)):
        with pytest.raises(HTTPError) as caught:
            inference.input_fn(body, content_type)
        assert caught.value.status_code == status
    with pytest.raises(HTTPError) as caught:
        inference.output_fn(np.zeros((1, 5)), "image/png")
    assert caught.value.status_code == 406


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
raw_rows = st.lists(st.tuples(finite, st.floats(0, 23.999, allow_nan=False),
                              st.floats(1e-3, 1e6, allow_nan=False)), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(rows=raw_rows, as_json=st.booleans())
def test_preprocessor_parses_exactly_and_its_npy_answer_round_trips(
        rows: list[tuple[float, float, float]], as_json: bool) -> None:
    """Any valid rows, sent as CSV (repr floats) or JSON: parsed to the same float64 values, and
    the npy the model container receives holds exactly ``features.transform`` of them."""
    features, inference = preprocess_modules()
    if as_json:
        parsed = inference.input_fn(json.dumps(rows).encode(), "application/json")
    else:
        body = "".join(",".join(repr(v) for v in row) + "\n" for row in rows)
        parsed = inference.input_fn(body.encode(), "text/csv; charset=utf-8")
    np.testing.assert_array_equal(parsed, np.asarray(rows, dtype=np.float64))
    params = {"mean": [1.0, 2.0, 0.0, 0.0, 3.0], "std": [2.0, 4.0, 1.0, 1.0, 0.5]}
    answer, content_type = inference.output_fn(inference.predict_fn(parsed, params),
                                               "application/x-npy")
    assert content_type == "application/x-npy"
    got = np.load(io.BytesIO(answer), allow_pickle=False)
    np.testing.assert_array_equal(got, features.transform(np.asarray(rows), params))


def member(tarball: Path, name: str) -> bytes:
    with tarfile.open(tarball) as tar:
        data = tar.extractfile(name)
        assert data is not None, f"{tarball}: {name}"
        return data.read()


def preprocess_then_predict(root: Path, raw: np.ndarray) -> np.ndarray:
    """The pipeline's two steps, done here from the artifacts the two training jobs wrote."""
    artifacts = root / "artifacts"
    pre = artifacts / "pipeline-preprocess" / "output" / "model.tar.gz"
    mod = artifacts / "pipeline-model" / "output" / "model.tar.gz"
    (root / "check").mkdir()
    (root / "check" / "features.py").write_bytes(member(pre, "code/features.py"))
    spec = importlib.util.spec_from_file_location("check_features", root / "check" / "features.py")
    assert spec is not None and spec.loader is not None
    features = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(features)
    params = json.loads(member(pre, "preprocessor.json"))
    model = joblib.load(io.BytesIO(member(mod, "model.joblib")))
    return np.asarray(model.predict(features.transform(raw, params)))


def check_run(root: Path, summary: dict[str, Any]) -> None:
    assert summary["metrics"]["validation:rmse"] < 0.8  # noise sd 0.5
    with tarfile.open(root / "artifacts" / "pipeline-preprocess" / "output" / "model.tar.gz") \
            as tar:
        assert {"preprocessor.json", "code/inference.py", "code/features.py"} <= \
            set(tar.getnames())
    with tarfile.open(root / "artifacts" / "pipeline-model" / "output" / "model.tar.gz") as tar:
        assert {"model.joblib", "code/inference.py"} <= set(tar.getnames())

    raw = np.asarray(summary["raw"])
    body = "".join(f"{t:g},{h:g},{a:g}\n" for t, h, a in raw)  # what run.py sent
    expected = preprocess_then_predict(root, np.loadtxt(io.StringIO(body), delimiter=",",
                                                        ndmin=2))
    assert len(summary["predictions"]) == len(raw) == 5
    np.testing.assert_allclose(summary["predictions"], expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(summary["csv_predictions"], expected, rtol=1e-12, atol=0)
    assert summary["expected"] == pytest.approx(expected.tolist(), rel=1e-12)
    np.testing.assert_allclose(summary["predictions"], summary["truth"], atol=2.0)

    error = summary["bad_row_error"]
    assert error["status"] == 400
    assert "from preprocess" in error["message"] and "hour=25" in error["message"]
    assert len(summary["bind_ports"]) == 2  # two containers, two ports
    # each container served its own artifact's code/inference.py; only the preprocessor
    # parses the client's body itself (the model decodes npy with the toolkit's input_fn)
    handlers = [line.split("handlers: ", 1)[1] for line in
                (root / "logs" / "main-1.log").read_text().splitlines() if "handlers: " in line]
    assert len(handlers) == 2, handlers
    assert all("model_fn from " in h and "model/code/inference.py" in h for h in handlers)
    assert sorted("input_fn from toolkit" in h for h in handlers) == [False, True]
    assert processes_using(root) == []


@pytest.mark.docker
def test_inference_pipeline_on_docker(images: dict[str, str],
                                      docker_client: docker.DockerClient,
                                      tmp_path: Path) -> None:
    out = run([*RUN, "--backend", "docker", "--output", str(tmp_path)], tmp_path)
    root, summary = summary_of(tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "docker"
    assert "training: docker" in out
    assert summary["told_ports"] == {"preprocess": "8080", "model": "8081"}
    assert summary["bind_ports"] == [8080, 8081]
    check_run(root, summary)
    no_containers_left(docker_client, "optml.job=pipeline-preprocess",
                       "optml.job=pipeline-model", "optml.endpoint=inference-pipeline")
    state = f"optml.state={root / 'state'}"
    assert docker_client.networks.list(filters={"label": state}) == []


def test_inference_pipeline_on_the_process_backend(tmp_path: Path) -> None:
    out = run([*RUN, "--backend", "process", "--output", str(tmp_path)], tmp_path)
    root, summary = summary_of(tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "process"
    assert "training: process" in out and "told_ports" not in summary
    check_run(root, summary)
