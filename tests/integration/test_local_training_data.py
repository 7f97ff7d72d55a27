"""Input data on the process backend: File / FastFile staging from every kind of file:// source,
and Pipe mode through the feeder (epochs, sharding, RecordIO, gzip, augmented manifests)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.integration.local_training_support import (
    LocalEnv,
    assert_nothing_left,
    channel,
    job_name,
    local_env,
    request,
    write_code,
)

__all__ = ["local_env"]

INVENTORY_SCRIPT = """
    import json, os, stat
    from pathlib import Path
    report = {"config": json.loads(Path(os.environ["SM_INPUT_CONFIG_DIR"],
                                        "inputdataconfig.json").read_text()), "channels": {}}
    for name in json.loads(os.environ["SM_CHANNELS"]):
        root = Path(os.environ["SM_CHANNEL_" + name.upper()])
        files = {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
                 if p.is_file()}
        # mode bits, not a write attempt: these tests may run as root, whom modes do not stop
        writable = any(p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
                       for p in [root, *root.rglob("*")])
        report["channels"][name] = {"files": files, "writable": writable}
    Path(os.environ["SM_MODEL_DIR"], "report.json").write_text(json.dumps(report))
"""


def test_file_and_fastfile_staging_from_directory_file_prefix_and_manifest(
        local_env: LocalEnv, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "part-0.csv").write_text("a")
    (data / "part-1.csv").write_text("b")
    (data / "other.csv").write_text("c")
    (data / "sub" / "deep.csv").write_text("d")
    manifest = tmp_path / "list.manifest"
    manifest.write_text(json.dumps([{"prefix": f"file://{data}/"}, "other.csv",
                                    "sub/deep.csv"]))
    code = write_code(tmp_path / "code", INVENTORY_SCRIPT)
    name = job_name("file")
    local_env.client.create_training_job(**request(name, code, local_env.output_uri, channels=[
        channel("whole", f"file://{data}"),
        channel("single", f"file://{data}/other.csv"),
        channel("prefix", f"file://{data}/part-"),
        channel("listed", f"file://{manifest}", S3DataType="ManifestFile"),
        channel("fast", f"file://{data}", InputMode="FastFile", ContentType="text/csv"),
    ]))
    done = local_env.wait(name)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    report = json.loads(local_env.artifacts(name)["report.json"])
    channels = report["channels"]
    every = {"other.csv": "c", "part-0.csv": "a", "part-1.csv": "b", "sub/deep.csv": "d"}
    assert channels["whole"] == {"files": every, "writable": True}
    assert channels["single"]["files"] == {"other.csv": "c"}
    assert channels["prefix"]["files"] == {"part-0.csv": "a", "part-1.csv": "b"}
    assert channels["listed"]["files"] == {"other.csv": "c", "sub/deep.csv": "d"}
    assert channels["fast"] == {"files": every, "writable": False}
    assert report["config"]["fast"] == {"TrainingInputMode": "FastFile",
                                        "S3DistributionType": "FullyReplicated",
                                        "RecordWrapperType": "None", "ContentType": "text/csv"}
    assert report["config"]["whole"]["TrainingInputMode"] == "File"
    assert "channel whole: 4 bytes staged" in local_env.log(name)
    assert_nothing_left(local_env.state_dir)


PIPE_EPOCHS_SCRIPT = """
    import json, os
    from pathlib import Path
    from toolkit.channels import open_channel
    train = open_channel("train")
    epochs = []
    for _ in range(3):
        with train.open_epoch() as epoch:
            epochs.append([r.decode() for r in epoch.records("recordio")])
    config = json.loads(Path(os.environ["SM_INPUT_CONFIG_DIR"], "inputdataconfig.json").read_text())
    Path(os.environ["SM_MODEL_DIR"], "epochs.json").write_text(
        json.dumps({"epochs": epochs, "config": config}))
"""


def test_pipe_mode_feeds_three_epochs_with_recordio_and_gzip(local_env: LocalEnv,
                                                              tmp_path: Path) -> None:
    data = tmp_path / "pipe"
    data.mkdir()
    for index in range(4):
        (data / f"obj-{index}.gz").write_bytes(gzip.compress(f"payload {index}".encode()))
    code = write_code(tmp_path / "code", PIPE_EPOCHS_SCRIPT)
    name = job_name("pipe")
    local_env.client.create_training_job(**request(name, code, local_env.output_uri, channels=[
        channel("train", f"file://{data}", InputMode="Pipe", RecordWrapperType="RecordIO",
                CompressionType="Gzip")]))
    done = local_env.wait(name)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    result = json.loads(local_env.artifacts(name)["epochs.json"])
    expected = [f"payload {i}" for i in range(4)]
    assert result["epochs"] == [expected] * 3
    assert result["config"]["train"] == {"TrainingInputMode": "Pipe",
                                         "S3DistributionType": "FullyReplicated",
                                         "RecordWrapperType": "RecordIO",
                                         "CompressionType": "Gzip"}
    assert_nothing_left(local_env.state_dir)


SHARD_SCRIPT = """
    import os
    from pathlib import Path
    from toolkit.channels import open_channel
    with open_channel("train").open_epoch() as epoch:
        records = [r.decode() for r in epoch.records("recordio")]
    host = os.environ["SM_CURRENT_HOST"]
    Path(os.environ["SM_MODEL_DIR"], host + ".txt").write_text("\\n".join(records))
"""


def test_pipe_sharded_by_s3_key_gives_every_object_to_exactly_one_of_three_hosts(
        local_env: LocalEnv, tmp_path: Path) -> None:
    data = tmp_path / "shards"
    data.mkdir()
    objects = [f"object-{index:02d}" for index in range(10)]
    for key in objects:
        (data / key).write_text(key)
    code = write_code(tmp_path / "code", SHARD_SCRIPT)
    name = job_name("shard")
    local_env.client.create_training_job(**request(
        name, code, local_env.output_uri, instance_count=3, channels=[
            channel("train", f"file://{data}", InputMode="Pipe", RecordWrapperType="RecordIO",
                    S3DataDistributionType="ShardedByS3Key")]))
    done = local_env.wait(name)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    files = local_env.artifacts(name)
    shares = [files[f"127.0.0.{i}.txt"].decode().split("\n") for i in (1, 2, 3)]
    assert all(shares), shares  # each host got a share
    received = [key for share in shares for key in share]
    assert sorted(received) == objects  # every object exactly once across hosts
    assert_nothing_left(local_env.state_dir)


AUGMENTED_SCRIPT = """
    import json, os
    from pathlib import Path
    from toolkit.channels import open_channel
    with open_channel("train").open_epoch() as epoch:
        records = [r.decode() for r in epoch.records("recordio")]
    Path(os.environ["SM_MODEL_DIR"], "records.json").write_text(json.dumps(records))
"""


def test_augmented_manifest_sends_the_named_attributes_in_order(local_env: LocalEnv,
                                                                tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    lines = []
    for index in range(3):
        (images / f"{index}.bin").write_text(f"image-bytes-{index}")
        lines.append(json.dumps({"source-ref": f"file://{images}/{index}.bin",
                                 "label": index * 10, "ignored": "x"}))
    manifest_dir = tmp_path / "manifest"
    manifest_dir.mkdir()
    (manifest_dir / "train.manifest").write_text("\n".join(lines) + "\n")
    code = write_code(tmp_path / "code", AUGMENTED_SCRIPT)
    name = job_name("augmented")
    local_env.client.create_training_job(**request(name, code, local_env.output_uri, channels=[
        channel("train", f"file://{manifest_dir}/train.manifest",
                S3DataType="AugmentedManifestFile", AttributeNames=["source-ref", "label"],
                InputMode="Pipe", RecordWrapperType="RecordIO")]))
    done = local_env.wait(name)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    records = json.loads(local_env.artifacts(name)["records.json"])
    assert records == ["image-bytes-0", "0", "image-bytes-1", "10", "image-bytes-2", "20"]
    assert_nothing_left(local_env.state_dir)

