"""``optml local deploy / endpoints / invoke / delete-endpoint / transform`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from local_mode.cli import local
from tests.integration.test_local_endpoints_support import (
    ECHO,
    FAST_ENV,
    make_model_tar,
    settings_for,
)


def test_deploy_invoke_list_delete_and_transform(tmp_path: Path) -> None:
    group = local
    state = tmp_path / "state"
    env = dict(settings_for(state).environ)
    runner = CliRunner(env=env)
    tar = make_model_tar(tmp_path / "model.tar.gz", ECHO, {"value.txt": "cli"})
    args = ["--state-dir", str(state)]
    envs = [x for k, v in FAST_ENV.items() for x in ("--env", f"{k}={v}")]
    try:
        deployed = runner.invoke(group, ["deploy", "m", "--model-data", tar.as_uri(), *envs,
                                         *args])
        assert deployed.exit_code == 0, deployed.output
        assert "InService" in deployed.output
        listed = runner.invoke(group, ["endpoints", *args])
        assert "m" in listed.output and "InService" in listed.output and "1/1" in listed.output
        (tmp_path / "body.txt").write_text("from a file")
        invoked = runner.invoke(group, ["invoke", "m", "--body", f"@{tmp_path / 'body.txt'}",
                                        "--content-type", "text/plain", *args])
        assert invoked.exit_code == 0, invoked.output
        assert json.loads(invoked.stdout)["body"] == "from a file"
        failed = runner.invoke(group, ["invoke", "m", "--body", "fail", "--content-type",
                                       "text/plain", *args])
        assert failed.exit_code == 1 and "asked to fail" in failed.output

        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "a.txt").write_text("x\n")
        job = tmp_path / "job.yaml"
        job.write_text(f"""
TransformJobName: t
ModelName: m
TransformInput:
  DataSource: {{S3DataSource: {{S3DataType: S3Prefix, S3Uri: "{(tmp_path / 'in').as_uri()}"}}}}
  SplitType: Line
TransformOutput: {{S3OutputPath: "{(tmp_path / 'out').as_uri()}"}}
TransformResources: {{InstanceType: local, InstanceCount: 1}}
""")
        done = runner.invoke(group, ["transform", str(job), "--wait", *args])
        assert done.exit_code == 0, done.output
        assert "files 1/1 done" in done.output
        assert json.loads((tmp_path / "out" / "a.txt.out").read_text())["body"] == "x\n"
        bad = runner.invoke(group, ["transform", str(tmp_path / "body.txt"), *args])
        assert bad.exit_code == 2
    finally:
        deleted = runner.invoke(group, ["delete-endpoint", "m", *args])
    assert deleted.exit_code == 0, deleted.output
    assert runner.invoke(group, ["delete-endpoint", "m", *args]).exit_code == 1
