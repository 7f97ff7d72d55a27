"""The multi-model endpoint example (examples/multi-model-endpoint), run as a user runs it: on
the Docker backend (training jobs and the endpoint in the example's image) and on the process
backend (``optml serve`` processes, no Docker).

Checked, not only exit 0: three training jobs' artifacts published under one prefix; each
``TargetModel`` answers with its own region's model, equal to the linear model in its tarball
computed here; the demo cap (two models in memory) makes the container answer 507 and local mode
unloads the least recently used model, in that order; an unknown ``TargetModel`` is a
ValidationError; and no container, network or process of the run is left. Fast unit tests of
the example's training fit and of its demo cap (MemoryError past two live models) come first.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import docker
import numpy as np
import pytest

from tests.docker.test_examples import EXAMPLES, no_containers_left, run, summary_of
from tests.integration.local_training_support import processes_using
from toolkit.serving import LoadContext

CODE = EXAMPLES / "multi-model-endpoint" / "code"
RUN = [sys.executable, str(EXAMPLES / "multi-model-endpoint" / "run.py")]


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def test_train_fit_recovers_a_known_linear_model() -> None:
    train = load(CODE / "train.py", "mme_example_train")
    x = np.random.default_rng(1).uniform(0, 100, (50, 3))
    coef, intercept = train.fit(x, 7.0 + x @ np.array([2.0, -1.0, 0.5]), 0.0)
    np.testing.assert_allclose(coef, [2.0, -1.0, 0.5], rtol=1e-9)
    assert intercept == pytest.approx(7.0, rel=1e-9)
    shrunk, _ = train.fit(x, 7.0 + x @ np.array([2.0, -1.0, 0.5]), 1e6)
    assert np.abs(shrunk).sum() < np.abs(coef).sum()  # l2 shrinks, intercept unpenalised


def test_demo_cap_refuses_a_third_model_until_one_is_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inference = load(CODE / "inference.py", "mme_example_inference")
    monkeypatch.setenv("DEMO_MAX_LOADED_MODELS", "2")
    for region in ("a", "b", "c"):
        (tmp_path / region).mkdir()
        (tmp_path / region / "model.json").write_text(json.dumps(
            {"region": region, "features": ["x", "y", "z"], "coef": [1, 2, 3], "intercept": 4}))
    models = [inference.model_fn(str(tmp_path / r), LoadContext(tmp_path / r, f"{r}.tar.gz"))
              for r in ("a", "b")]
    assert inference.resident() == ["a.tar.gz", "b.tar.gz"]
    with pytest.raises(MemoryError):
        inference.model_fn(str(tmp_path / "c"), LoadContext(tmp_path / "c", "c.tar.gz"))
    del models[0]  # what optml's unload does: drop the only reference
    gc.collect()
    models.append(inference.model_fn(str(tmp_path / "c"), LoadContext(tmp_path / "c", "c.tar.gz")))
    assert inference.resident() == ["b.tar.gz", "c.tar.gz"]
    assert inference.predict_fn([[1, 1, 1]], models[-1])["prices"].tolist() == [10.0]


def check_run(root: Path, summary: dict[str, Any]) -> None:
    assert set(summary["metrics"]) == {"north", "south", "east"}
    assert all(m["validation:rmse"] < 8.0 for m in summary["metrics"].values())  # noise sd 5
    assert summary["models"] == ["east.tar.gz", "north.tar.gz", "south.tar.gz"]
    for name in summary["models"]:
        with tarfile.open(root / "models" / name) as tar:
            assert tar.getnames() == ["model.json"]

    calls = summary["calls"]
    assert [c["target"] for c in calls] == ["north.tar.gz", "south.tar.gz", "east.tar.gz",
                                            "north.tar.gz"]
    for call in calls:  # each TargetModel answered with its own model, the one in its tarball
        assert call["model"] == call["target"]
        assert call["region"] == call["target"].removesuffix(".tar.gz")
        assert call["predictions"] == pytest.approx(call["expected"], rel=1e-9)
    first_house = {c["region"]: round(c["predictions"][0]) for c in calls}
    assert len(set(first_house.values())) == 3, first_house  # same input, three answers
    assert calls[3]["predictions"] == calls[0]["predictions"]  # north reloaded, same answer

    # two slots: east refused (507) -> north unloaded; north refused -> south unloaded
    assert [c["resident_models"] for c in calls] == [
        ["north.tar.gz"], ["north.tar.gz", "south.tar.gz"], ["east.tar.gz", "south.tar.gz"],
        ["east.tar.gz", "north.tar.gz"]]
    assert summary["refused_loads"] == 2
    assert summary["evicted"] == ["north.tar.gz", "south.tar.gz"]
    assert summary["unknown_model_error"] == "ValidationError"
    assert processes_using(root) == []


@pytest.mark.docker
def test_multi_model_endpoint_on_docker(images: dict[str, str],
                                        docker_client: docker.DockerClient,
                                        tmp_path: Path) -> None:
    out = run([*RUN, "--backend", "docker", "--output", str(tmp_path)], tmp_path)
    root, summary = summary_of(tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "docker"
    assert "training: docker" in out and "refused 2 load(s) with 507" in out
    check_run(root, summary)
    instance_log = (root / "logs" / "main-1.log").read_text()
    # the image's own handlers, where a user's image keeps them (nothing names a directory)
    assert "model_fn from /opt/ml/code/inference.py" in instance_log
    assert instance_log.count("POST /models -> 507") == 2
    no_containers_left(docker_client, "optml.job=mme-north", "optml.job=mme-south",
                       "optml.job=mme-east", "optml.endpoint=multi-model-endpoint")
    state = f"optml.state={root / 'state'}"
    assert docker_client.networks.list(filters={"label": state}) == []


def test_multi_model_endpoint_on_the_process_backend(tmp_path: Path) -> None:
    out = run([*RUN, "--backend", "process", "--output", str(tmp_path)], tmp_path)
    root, summary = summary_of(tmp_path)
    assert summary["backend"] == summary["serving_backend"] == "process"
    assert "training: process" in out
    check_run(root, summary)
    # no image here: the handlers come from the example's code/ as the submit directory
    instance_log = (root / "logs" / "main-1.log").read_text()
    assert f"model_fn from {CODE / 'inference.py'}" in instance_log
