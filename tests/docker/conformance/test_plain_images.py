"""Images with no Python toolkit, with a non-root USER, and the README's three-line image.

- optml-conformance/plain-shell: ``train`` and ``serve`` are POSIX shell scripts (serve answers
  HTTP through socat), so nothing but the platform's files, environment and ports is involved.
  Its training is run under the SDK's local mode too, and what the script saw is compared.
- optml-conformance/nonroot: the same image as ``USER 10001:10001`` (no passwd entry): training
  writes /opt/ml/model and /opt/ml/output and reads a Pipe FIFO, serving reads /opt/ml/model.
- optml-conformance/three-line: README.md's "Your own image in three lines" (FROM optml/sklearn,
  requirements.txt, train.py and inference.py in /opt/ml/code) trains and serves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.docker import sdk_local
from tests.docker.conformance.local import (
    SDK_FIT_FILE_AND_PIPE,
    LocalMode,
    channel,
    files,
    read_tarball,
)

PLAIN = "optml-conformance/plain-shell:latest"
NONROOT = "optml-conformance/nonroot:latest"
THREE_LINE = "optml-conformance/three-line:latest"
HYPERPARAMETERS = {"alpha": "0.5", "note": "two words"}
TRAIN = {"a.txt": "line a\n", "b.txt": "line b\n"}
STREAM = {"s1": "streamed 1\n", "s2": "streamed 2\n"}


def _channels(tmp_path: Path) -> list[dict[str, object]]:
    return [channel("train", files(tmp_path / "train", TRAIN)),
            channel("stream", files(tmp_path / "stream", STREAM), mode="Pipe")]


def _serve(local: LocalMode, name: str, image: str, job: str) -> None:
    """Deploy what training job ``job`` produced, on ``image``."""
    local.model(name, image, local.output / job / "output" / "model.tar.gz")
    local.deploy(name, name)


@pytest.mark.docker
def test_shell_scripts_train_and_serve(local: LocalMode, tmp_path: Path) -> None:
    described = local.train("sh-train", PLAIN, channels=_channels(tmp_path),
                            HyperParameters=HYPERPARAMETERS)
    assert described["TrainingJobStatus"] == "Completed", local.job_log("sh-train")
    model = local.artifacts("sh-train")
    assert model["train.txt"] == b"line a\nline b\n"
    assert model["stream.txt"] == b"streamed 1\nstreamed 2\n"  # through the FIFO stream_0
    assert json.loads(model["seen/hyperparameters.json"]) == HYPERPARAMETERS
    assert model["seen/argc"] == b"0\n"  # `train` is the whole command
    assert model["seen/uid"] == b"0\n"
    env = dict(line.split("=", 1) for line in model["seen/env"].decode().splitlines())
    assert env["TRAINING_JOB_NAME"] == "sh-train"
    assert not [name for name in env if name.startswith("SM_")]  # toolkits set those
    assert local.artifacts("sh-train", "output") == {"summary.txt": b"trained by uid 0\n"}

    _serve(local, "sh-serve", PLAIN, "sh-train")
    body, response = local.invoke("sh-serve", b"shout this", "text/plain")
    assert body == b"hello from the shell|SHOUT THIS|uid=0"
    assert response["ContentType"] == "text/plain"


@pytest.mark.docker
def test_the_sdks_local_mode_gives_the_shell_trainer_the_same(local: LocalMode,
                                                              tmp_path: Path) -> None:
    channels = _channels(tmp_path)
    sdk_out = tmp_path / "sdk-output"
    sdk_local.run_sdk(SDK_FIT_FILE_AND_PIPE, [PLAIN, (tmp_path / "train").as_uri(),
                                (tmp_path / "stream").as_uri(), sdk_out.as_uri(),
                                json.dumps(HYPERPARAMETERS)], tmp_path / "sdk").check()
    sdk = read_tarball(sdk_out / "model.tar.gz")
    described = local.train("sh-parity", PLAIN, channels=channels,
                            HyperParameters=HYPERPARAMETERS)
    assert described["TrainingJobStatus"] == "Completed", local.job_log("sh-parity")
    ours = local.artifacts("sh-parity")

    for name in ("train.txt", "stream.txt", "greeting.txt", "seen/argc", "seen/uid"):
        assert ours[name] == sdk[name], name
    # the same hyperparameters (the SDK indents the file, the service and local mode do not)
    assert json.loads(ours["seen/hyperparameters.json"]) == \
        json.loads(sdk["seen/hyperparameters.json"]) == HYPERPARAMETERS
    # the same files in /opt/ml/input/config (their host-dependent fields aside)
    assert sorted(n for n in ours if n.endswith(".json")) == \
        sorted(n for n in sdk if n.endswith(".json"))
    ours_env = dict(line.split("=", 1) for line in ours["seen/env"].decode().splitlines())
    sdk_env = dict(line.split("=", 1) for line in sdk["seen/env"].decode().splitlines())
    for name in ("PATH", "LANG", "HOME"):
        assert ours_env.get(name) == sdk_env.get(name), name
    assert "TRAINING_JOB_NAME" in sdk_env and "TRAINING_JOB_NAME" in ours_env
    # the SDK turns Pipe into File (a directory); the service, and local mode, give a FIFO
    assert sdk["seen/channels"] == b"stream\ntrain\n"
    assert ours["seen/channels"] == b"stream_0\ntrain\n"


@pytest.mark.docker
def test_a_non_root_user_trains_from_a_pipe_fails_cleanly_and_serves(local: LocalMode,
                                                                     tmp_path: Path) -> None:
    described = local.train("nr-train", NONROOT, channels=_channels(tmp_path))
    assert described["TrainingJobStatus"] == "Completed", local.job_log("nr-train")
    model = local.artifacts("nr-train")
    assert model["seen/uid"] == b"10001\n"
    assert model["stream.txt"] == b"streamed 1\nstreamed 2\n"  # the FIFO is readable
    assert local.artifacts("nr-train", "output") == {"summary.txt": b"trained by uid 10001\n"}

    failed = local.train("nr-fail", NONROOT, HyperParameters={"fail": "yes"})
    assert failed["TrainingJobStatus"] == "Failed", local.job_log("nr-fail")
    # /opt/ml/output is writable for the image's user: its failure file is the reason
    assert failed["FailureReason"] == "the shell trainer (uid 10001) refuses: fail was set"

    _serve(local, "nr-serve", NONROOT, "nr-train")
    body, _ = local.invoke("nr-serve", b"quiet", "text/plain")
    assert body == b"hello from the shell|QUIET|uid=10001"  # it read /opt/ml/model


@pytest.mark.docker
def test_the_readmes_three_line_image_trains_and_serves(local: LocalMode, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    features = rng.normal(size=(60, 3)).round(4)
    target = features @ np.array([2.0, -1.0, 0.5]) + 1.0
    rows = np.column_stack([target, features])
    train = files(tmp_path / "train", {"data.csv": "".join(
        ",".join(repr(float(v)) for v in row) + "\n" for row in rows)})
    described = local.train("three-line", THREE_LINE, channels=[channel("train", train)],
                            HyperParameters={"alpha": "0.1"}, algorithm={
                                "MetricDefinitions": [{"Name": "train:rmse",
                                                       "Regex": r"train_rmse=([0-9.]+)"}]})
    assert described["TrainingJobStatus"] == "Completed", local.job_log("three-line")
    assert sorted(local.artifacts("three-line")) == ["model.joblib"]
    (rmse,) = described["FinalMetricDataList"]
    assert rmse["MetricName"] == "train:rmse"

    _serve(local, "three-line", THREE_LINE, "three-line")
    query = features[:4]
    body, _ = local.invoke("three-line", json.dumps(query.tolist()).encode(), "application/json",
                           Accept="application/json")
    answer = json.loads(body)
    assert answer["served_by"] == "/opt/ml/code/inference.py"  # the image's, not the model's
    from sklearn.linear_model import Ridge

    expected = Ridge(alpha=0.1).fit(features, target).predict(query)
    assert answer["predictions"] == pytest.approx(expected.tolist(), abs=1e-5)
