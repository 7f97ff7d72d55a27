"""s3:// input, output and checkpoints through a real S3 HTTP server (moto on 127.0.0.1)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from tests.integration.local_training_support import (
    assert_nothing_left,
    channel,
    job_name,
    make_env,
    request,
    stop_everything,
    write_code,
)

pytest_plugins = ["tests.fixtures.s3_server"]

SCRIPT = """
    import json, os
    from pathlib import Path
    from toolkit.channels import open_channel
    files = Path(os.environ["SM_CHANNEL_TRAIN"])
    staged = {str(p.relative_to(files)): p.read_text() for p in sorted(files.rglob("*"))
              if p.is_file()}
    with open_channel("stream").open_epoch() as epoch:
        streamed = [r.decode() for r in epoch.records("recordio")]
    config = json.loads(Path(os.environ["SM_INPUT_CONFIG_DIR"], "checkpointconfig.json").read_text())
    Path(config["LocalPath"], "ckpt.txt").write_text("saved")
    Path(os.environ["SM_MODEL_DIR"], "seen.json").write_text(
        json.dumps({"staged": staged, "streamed": streamed}))
"""


def _untar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()  # type: ignore[union-attr]
                if m.isfile()}


def test_s3_input_output_and_checkpoints(tmp_path: Path, s3_environ: dict[str, str],
                                         s3_client: Any, s3_bucket: str) -> None:
    for key, body in {"train/a.csv": "1", "train/nested/b.csv": "2", "trainer/no.csv": "x",
                      "stream/x": "rec-x", "stream/y": "rec-y"}.items():
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=body.encode())
    env = make_env(tmp_path, {**os.environ, **s3_environ})
    try:
        code = write_code(tmp_path / "code", SCRIPT)
        name = job_name("s3")
        env.client.create_training_job(**request(
            name, code, f"s3://{s3_bucket}/results", channels=[
                channel("train", f"s3://{s3_bucket}/train/"),
                channel("stream", f"s3://{s3_bucket}/stream/", InputMode="Pipe",
                        RecordWrapperType="RecordIO")],
            CheckpointConfig={"S3Uri": f"s3://{s3_bucket}/checkpoints"}))
        done = env.wait(name)
        assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
        assert done["ModelArtifacts"]["S3ModelArtifacts"] == \
            f"s3://{s3_bucket}/results/{name}/output/model.tar.gz"
        model = s3_client.get_object(Bucket=s3_bucket,
                                     Key=f"results/{name}/output/model.tar.gz")["Body"].read()
        seen = json.loads(_untar(model)["seen.json"])
        assert seen == {"staged": {"a.csv": "1", "nested/b.csv": "2"},
                        "streamed": ["rec-x", "rec-y"]}
        s3_client.head_object(Bucket=s3_bucket, Key=f"results/{name}/output/output.tar.gz")
        ckpt = s3_client.get_object(Bucket=s3_bucket, Key="checkpoints/ckpt.txt")["Body"].read()
        assert ckpt == b"saved"
        assert_nothing_left(env.state_dir)
    finally:
        stop_everything(env)
