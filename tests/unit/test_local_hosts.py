"""One host's /opt/ml tree: the config files, writable directories and File/FastFile staging."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from local_mode.training.hosts import (
    Host,
    host_checkpoint_dir,
    make_removable,
    stage_files,
    write_config,
)
from local_mode.training.spec import TrainingJobSpec
from toolkit.layout import Layout


def _spec(**changes: Any) -> TrainingJobSpec:
    body: dict[str, Any] = {
        "TrainingJobName": "job",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "HyperParameters": {"lr": "0.1", "sagemaker_program": "train.py"},
        "OutputDataConfig": {"S3OutputPath": "file:///out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2},
    }
    body.update(changes)
    return TrainingJobSpec.from_request(body)


def test_config_files(tmp_path: Path) -> None:
    spec = _spec(InputDataConfig=[{"ChannelName": "train", "InputMode": "Pipe",
                                   "DataSource": {"S3DataSource": {
                                       "S3DataType": "S3Prefix", "S3Uri": "file:///d"}}}],
                 CheckpointConfig={"S3Uri": "file:///ckpt"})
    host = Host("algo-2", 1, 2, Layout(tmp_path / "algo-2"))
    write_config(spec, host, ["algo-1", "algo-2"], "eth0", "/opt/ml/checkpoints")
    layout = host.layout
    assert json.loads(layout.hyperparameters_file.read_text()) == {
        "lr": "0.1", "sagemaker_program": "train.py"}
    assert json.loads(layout.input_data_config_file.read_text()) == {"train": {
        "TrainingInputMode": "Pipe", "S3DistributionType": "FullyReplicated",
        "RecordWrapperType": "None"}}
    resource = json.loads(layout.resource_config_file.read_text())
    assert resource["current_host"] == "algo-2" and resource["hosts"] == ["algo-1", "algo-2"]
    assert resource["network_interface_name"] == "eth0"
    assert resource["current_instance_type"] == "ml.m5.large"
    assert json.loads(layout.checkpoint_config_file.read_text()) == {
        "LocalPath": "/opt/ml/checkpoints", "S3Uri": "file:///ckpt"}
    assert layout.model_dir.is_dir() and layout.output_data_dir.is_dir()


def test_the_directories_the_program_writes_are_writable_by_any_user(tmp_path: Path) -> None:
    """An image whose USER is not root must still write its model, failure file and
    checkpoints, whatever the runner's umask was."""
    spec = _spec(CheckpointConfig={"S3Uri": "file:///ckpt", "LocalPath": "/data/ckpt"})
    host = Host("h", 0, 1, Layout(tmp_path / "h"))
    old = os.umask(0o077)
    try:
        write_config(spec, host, ["h"], "lo", None)
    finally:
        os.umask(old)
    layout = host.layout
    for directory in (layout.model_dir, layout.output_dir, layout.output_data_dir,
                      host_checkpoint_dir(spec, host)):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o777, directory
    for directory in (layout.input_dir, layout.input_config_dir, layout.input_data_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755, directory
    for config in layout.input_config_dir.iterdir():
        assert stat.S_IMODE(config.stat().st_mode) == 0o644, config


def test_staged_files_are_readable_by_any_user(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "a.csv").write_text("1,2\n")
    spec = _spec(InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": data.as_uri()}}}])
    host = Host("h", 0, 1, Layout(tmp_path / "h"))
    old = os.umask(0o077)
    try:
        write_config(spec, host, ["h"], "lo", None)
        stage_files(spec.channels[0], host, {})
    finally:
        os.umask(old)
    staged = host.layout.channel_dir("train") / "sub" / "a.csv"
    assert stat.S_IMODE(staged.stat().st_mode) == 0o644
    assert stat.S_IMODE(staged.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE(host.layout.channel_dir("train").stat().st_mode) == 0o755


def test_no_checkpoint_config_without_checkpoints(tmp_path: Path) -> None:
    host = Host("h", 0, 1, Layout(tmp_path))
    write_config(_spec(), host, ["h"], "lo", None)
    assert not host.layout.checkpoint_config_file.exists()


def test_checkpoint_dirs_are_relocated_below_the_host_root(tmp_path: Path) -> None:
    host = Host("h", 0, 1, Layout(tmp_path / "h"))
    assert host_checkpoint_dir(_spec(), host) == tmp_path / "h" / "checkpoints"
    custom = _spec(CheckpointConfig={"S3Uri": "file:///c", "LocalPath": "/data/ckpt"})
    assert host_checkpoint_dir(custom, host) == tmp_path / "h" / "_abs" / "data" / "ckpt"


def test_sharded_file_staging_and_fastfile_modes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for index in range(6):
        (data / f"f{index}").write_text(str(index))
    staged: list[set[str]] = []
    progress: list[int] = []
    for index in range(2):
        spec = _spec(InputDataConfig=[{"ChannelName": "train", "InputMode": "FastFile",
                                       "DataSource": {"S3DataSource": {
                                           "S3DataType": "S3Prefix", "S3Uri": f"file://{data}",
                                           "S3DataDistributionType": "ShardedByS3Key"}}}])
        host = Host(f"h{index}", index, 2, Layout(tmp_path / f"h{index}"))
        copied = stage_files(spec.channels[0], host, {},
                             progress=lambda _name, total: progress.append(total))
        directory = host.layout.channel_dir("train")
        staged.append({p.name for p in directory.iterdir()})
        assert copied == len(staged[-1])
        assert not directory.stat().st_mode & stat.S_IWUSR
        assert all(not p.stat().st_mode & stat.S_IWUSR for p in directory.iterdir())
        make_removable(host.layout.root)
        assert directory.stat().st_mode & stat.S_IWUSR
    assert staged[0].isdisjoint(staged[1])
    assert staged[0] | staged[1] == {f"f{i}" for i in range(6)}
    assert progress == sorted(progress) or len(progress) == 6
