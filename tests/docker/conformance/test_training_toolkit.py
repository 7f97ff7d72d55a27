"""The reference training toolkit (sagemaker-training from PyPI) under local mode on Docker.

optml-conformance/training-toolkit is built as the toolkit documents: ``pip install
sagemaker-training``, ``COPY train.py /opt/ml/code/train.py``, ``ENV SAGEMAKER_PROGRAM=train.py``.
Its script (images/training-toolkit/train.py) writes what it saw to the model directory. The
toolkit only works when the platform leaves /opt/ml/code alone, lays out the config files as the
service does and runs the image's ``train`` -- so these tests prove the mount layout, the config
files, host-name resolution between hosts, Pipe FIFOs, hyperparameter passing, the failure file
and MetricDefinitions against code nobody on this project wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.docker import sdk_local
from tests.docker.conformance.local import (
    SDK_FIT_FILE_AND_PIPE,
    LocalMode,
    channel,
    files,
    read_tarball,
)

IMAGE = "optml-conformance/training-toolkit:latest"
HYPERPARAMETERS = {"greeting": "hello wide world", "layers": "[64, 32]",
                   "config": '{"depth": 3, "name": "a b"}', "lr": "0.5"}
DECODED = {"greeting": "hello wide world", "layers": [64, 32],
           "config": {"depth": 3, "name": "a b"}, "lr": 0.5}
"""What the toolkit makes of HYPERPARAMETERS: every value that parses as JSON is decoded."""
TRAIN = {"a.csv": "1,2\n", "b.csv": "3,4\n"}
STREAM = {"s1.txt": "stream-one\n", "s2.txt": "stream-two\n"}


def _channels(tmp_path: Path) -> list[dict[str, Any]]:
    return [channel("train", files(tmp_path / "train", TRAIN)),
            channel("stream", files(tmp_path / "stream", STREAM), mode="Pipe")]


@pytest.mark.docker
def test_two_hosts_talk_by_name_read_file_and_pipe_and_report_metrics(local: LocalMode,
                                                                      tmp_path: Path) -> None:
    described = local.train(
        "tk-two-hosts", IMAGE, count=2, channels=_channels(tmp_path),
        HyperParameters=HYPERPARAMETERS,
        algorithm={"MetricDefinitions": [{"Name": "train:loss", "Regex": r"loss=([0-9.]+);"}]})
    assert described["TrainingJobStatus"] == "Completed", \
        (described.get("FailureReason"), local.job_log("tk-two-hosts"))
    model = local.artifacts("tk-two-hosts")
    assert sorted(model) == ["host-0.json", "host-1.json"]
    reports = [json.loads(model[f"host-{i}.json"]) for i in range(2)]
    # the hosts reached each other by name: algo-2 connected to algo-1 and got its answer
    assert reports[0]["peers"] == {"algo-2": "hello from algo-2"}
    assert reports[1]["peers"] == {"algo-1": "welcome from algo-1"}
    for host, report in zip(("algo-1", "algo-2"), reports, strict=True):
        assert report["cwd"] == "/opt/ml/code"  # the image's code was not hidden by a mount
        assert report["env"]["SM_CURRENT_HOST"] == host
        assert json.loads(report["env"]["SM_HOSTS"]) == ["algo-1", "algo-2"]
        assert json.loads(report["env"]["SM_HPS"]) == DECODED
        # the toolkit's own rendering: a dict as k=v pairs, a list as Python prints it
        assert report["argv"] == ["--config", "depth=3,name=a b",
                                  "--greeting", "hello wide world",
                                  "--layers", "[64, 32]", "--lr", "0.5"]
        assert report["config"]["hyperparameters.json"] == HYPERPARAMETERS
        assert json.loads(report["env"]["SM_CHANNELS"]) == ["stream", "train"]
        assert report["config"]["inputdataconfig.json"]["stream"]["TrainingInputMode"] == "Pipe"
        assert report["train"] == "1,2\n3,4\n"
        assert report["stream"] == "stream-one\nstream-two\n"  # read from the FIFO stream_0
        assert report["training_env"]["master_hostname"] == "algo-1"
    # the script printed loss=0.5000, 0.3333, 0.2500: the last value is the final metric
    (metric,) = described["FinalMetricDataList"]
    assert metric["MetricName"] == "train:loss" and metric["Value"] == pytest.approx(0.25)
    assert local.artifacts("tk-two-hosts", "output") == {"summary-0.txt": b"trained\n",
                                                         "summary-1.txt": b"trained\n"}


@pytest.mark.docker
def test_a_failing_script_fails_the_job_with_the_users_message(local: LocalMode) -> None:
    described = local.train("tk-fails", IMAGE, HyperParameters={"fail": "disk on fire"})
    assert described["TrainingJobStatus"] == "Failed", local.job_log("tk-fails")
    # the script described its failure in /opt/ml/output/failure and the toolkit left it there
    assert described["FailureReason"] == "user-failure-marker: disk on fire"
    assert "ValueError: user-failure-marker: disk on fire" in local.job_log("tk-fails")


@pytest.mark.docker
def test_the_sdks_local_mode_gives_the_script_the_same(local: LocalMode, tmp_path: Path) -> None:
    channels = _channels(tmp_path)
    sdk_out = tmp_path / "sdk-output"
    sdk_local.run_sdk(SDK_FIT_FILE_AND_PIPE, [IMAGE, (tmp_path / "train").as_uri(),
                                (tmp_path / "stream").as_uri(), sdk_out.as_uri(),
                                json.dumps(HYPERPARAMETERS)], tmp_path / "sdk").check()
    sdk = json.loads(read_tarball(sdk_out / "model.tar.gz")["host-0.json"])
    described = local.train("tk-parity", IMAGE, channels=channels,
                            HyperParameters=HYPERPARAMETERS)
    assert described["TrainingJobStatus"] == "Completed", local.job_log("tk-parity")
    ours = json.loads(local.artifacts("tk-parity")["host-0.json"])

    # what the script got: the same argv, hyperparameters, channels and data
    assert ours["argv"] == sdk["argv"]
    assert ours["config"]["hyperparameters.json"] == sdk["config"]["hyperparameters.json"]
    for key in ("SM_HPS", "SM_CHANNELS", "SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR",
                "SM_CHANNEL_TRAIN", "SM_CHANNEL_STREAM", "SM_INPUT_CONFIG_DIR", "SM_USER_ARGS",
                "SM_MODULE_DIR", "SM_USER_ENTRY_POINT"):
        assert ours["env"][key] == sdk["env"][key], key
    assert ours["train"] == sdk["train"] == "1,2\n3,4\n"
    # the SDK turns Pipe into File; the service (and local mode) stream it through a FIFO
    assert ours["stream"] == sdk["stream"] == "stream-one\nstream-two\n"
    assert sdk["config"]["inputdataconfig.json"]["stream"]["TrainingInputMode"] == "File"
    assert ours["config"]["inputdataconfig.json"]["stream"]["TrainingInputMode"] == "Pipe"
    # host names: the service's algo-1; the SDK's algo-1-<random>
    assert ours["env"]["SM_CURRENT_HOST"] == "algo-1"
    assert sdk["env"]["SM_CURRENT_HOST"].startswith("algo-1-")
    # the same variables, whatever their host-dependent values
    assert sorted(ours["env"]) == sorted(sdk["env"])
    assert ours["cwd"] == sdk["cwd"] == "/opt/ml/code"
