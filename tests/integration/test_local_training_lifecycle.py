"""Local training jobs on the process backend: the asynchronous lifecycle as the service shows it.

Real runner processes and real ``optml train`` processes on a temporary state directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from local_mode.sagemaker import SageMakerClient
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

OK_SCRIPT = """
    import json, os
    from pathlib import Path
    Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text(os.environ["SM_CURRENT_HOST"])
    Path(os.environ["SM_OUTPUT_DATA_DIR"], "out.txt").write_text("data")
    print("loss=0.25", flush=True)
"""

FAIL_SCRIPT = """
    import os
    from pathlib import Path
    Path(os.environ["SM_MODEL_DIR"], "partial.bin").write_bytes(b"half a model")
    Path(os.environ["SM_OUTPUT_DATA_DIR"], "debug.txt").write_text("why it failed")
    Path(os.environ["SM_OUTPUT_DIR"], "failure").write_text("E" * 1000 + "TAIL" * 100)
    raise SystemExit(3)
"""


@pytest.fixture
def ok_code(tmp_path: Path) -> Path:
    return write_code(tmp_path / "code-ok", OK_SCRIPT)


def test_create_is_asynchronous_and_the_waiter_sees_completed(local_env: LocalEnv,
                                                              ok_code: Path) -> None:
    name = job_name()
    response = local_env.client.create_training_job(
        **request(name, ok_code, local_env.output_uri))
    assert response["TrainingJobArn"].endswith(f"training-job/{name}")
    first = local_env.client.describe_training_job(TrainingJobName=name)
    assert first["TrainingJobStatus"] == "InProgress"

    local_env.client.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 2400})
    done = local_env.wait(name)
    assert done["TrainingJobStatus"] == "Completed"
    assert done["SecondaryStatus"] == "Completed"
    statuses = [t["Status"] for t in done["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    transitions = done["SecondaryStatusTransitions"]
    for earlier, later in zip(transitions, transitions[1:]):
        assert earlier["StartTime"] <= earlier["EndTime"] == later["StartTime"]
    assert "EndTime" in transitions[-1]
    assert done["CreationTime"] <= transitions[0]["StartTime"]
    assert done["TrainingEndTime"] >= transitions[-2]["StartTime"]
    assert done["ModelArtifacts"]["S3ModelArtifacts"] == \
        f"{local_env.output_uri}/{name}/output/model.tar.gz"
    assert local_env.artifacts(name) == {"model.txt": b"127.0.0.1"}
    assert local_env.artifacts(name, "output.tar.gz") == {"out.txt": b"data"}
    assert "Backend" not in done
    assert_nothing_left(local_env.state_dir)

    # any other client, in this process or another, sees the same job
    other = SageMakerClient(local_env.client.settings, state_dir=local_env.state_dir)
    assert other.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Completed"
    script = ("import sys; from local_mode.sagemaker import SageMakerClient as C; "
              "print(C(state_dir=sys.argv[1]).describe_training_job("
              "TrainingJobName=sys.argv[2])['TrainingJobStatus'])")
    seen = subprocess.run([sys.executable, "-c", script, str(local_env.state_dir), name],
                          capture_output=True, text=True, check=True)
    assert seen.stdout.strip() == "Completed"


def test_a_failed_job_is_described_with_its_failure_file_and_keeps_its_outputs(
        local_env: LocalEnv, tmp_path: Path) -> None:
    code = write_code(tmp_path / "code-fail", FAIL_SCRIPT)
    name = job_name("fail")
    local_env.client.create_training_job(**request(name, code, local_env.output_uri))
    waiter = local_env.client.get_waiter("training_job_completed_or_stopped")
    with pytest.raises(Exception, match="Failed"):
        waiter.wait(TrainingJobName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 2400})
    done = local_env.wait(name)
    assert done["TrainingJobStatus"] == "Failed"
    assert done["FailureReason"] == ("E" * 1000 + "TAIL" * 100)[:1024]
    assert local_env.artifacts(name) == {"partial.bin": b"half a model"}
    assert local_env.artifacts(name, "output.tar.gz") == {"debug.txt": b"why it failed"}
    assert [t["Status"] for t in done["SecondaryStatusTransitions"]][-2:] == \
        ["Uploading", "Failed"]
    assert_nothing_left(local_env.state_dir)


def test_a_script_that_raises_gets_its_traceback_as_failure_reason(local_env: LocalEnv,
                                                                   tmp_path: Path) -> None:
    code = write_code(tmp_path / "code-raise", "raise ValueError('bad learning rate')\n")
    name = job_name("raise")
    local_env.client.create_training_job(**request(name, code, local_env.output_uri))
    done = local_env.wait(name)
    assert done["TrainingJobStatus"] == "Failed"
    assert "ValueError: bad learning rate" in done["FailureReason"]
    assert len(done["FailureReason"]) <= 1024


def test_several_jobs_at_once_then_list_filter_and_paginate(local_env: LocalEnv, ok_code: Path,
                                                             tmp_path: Path) -> None:
    bad = write_code(tmp_path / "code-bad", "raise SystemExit(1)\n")
    names = [job_name("many-a"), job_name("many-b"), job_name("other")]
    for name in names:
        local_env.client.create_training_job(**request(
            name, bad if name.startswith("other") else ok_code, local_env.output_uri))
    results = {name: local_env.wait(name)["TrainingJobStatus"] for name in names}
    assert results == {names[0]: "Completed", names[1]: "Completed", names[2]: "Failed"}

    client = local_env.client
    listed = client.list_training_jobs()["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in listed] == names  # CreationTime, ascending
    assert all({"TrainingJobArn", "CreationTime", "TrainingJobStatus", "LastModifiedTime",
                "TrainingEndTime"} <= set(s) for s in listed)
    descending = client.list_training_jobs(SortOrder="Descending")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in descending] == names[::-1]
    failed = client.list_training_jobs(StatusEquals="Failed")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in failed] == [names[2]]
    contains = client.list_training_jobs(NameContains="many-")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in contains] == names[:2]
    by_name = client.list_training_jobs(SortBy="Name")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in by_name] == sorted(names)

    page1 = client.list_training_jobs(MaxResults=2)
    assert len(page1["TrainingJobSummaries"]) == 2 and page1["NextToken"]
    page2 = client.list_training_jobs(MaxResults=2, NextToken=page1["NextToken"])
    assert "NextToken" not in page2
    assert [s["TrainingJobName"] for s in
            page1["TrainingJobSummaries"] + page2["TrainingJobSummaries"]] == names
    assert_nothing_left(local_env.state_dir)


def test_two_hosts_share_one_job_and_their_outputs_are_merged(local_env: LocalEnv,
                                                              tmp_path: Path) -> None:
    code = write_code(tmp_path / "code-two", """
        import json, os
        from pathlib import Path
        host = os.environ["SM_CURRENT_HOST"]
        model = Path(os.environ["SM_MODEL_DIR"])
        (model / f"{host}.txt").write_text(host)
        (model / "shared.txt").write_text(host)
        config = json.loads(Path(os.environ["SM_INPUT_CONFIG_DIR"], "resourceconfig.json").read_text())
        (model / f"{host}.resourceconfig.json").write_text(json.dumps(config))
        (model / f"{host}.env.json").write_text(json.dumps(
            {"hosts": json.loads(os.environ["SM_HOSTS"]),
             "master": json.loads(os.environ["SM_TRAINING_ENV"])["master_hostname"],
             "job": os.environ["TRAINING_JOB_NAME"]}))
        Path(os.environ["SM_OUTPUT_DATA_DIR"], f"{host}.out").write_text("x")
        print("hello from", host, flush=True)
    """)
    name = job_name("two")
    local_env.client.create_training_job(**request(name, code, local_env.output_uri,
                                                   instance_count=2))
    done = local_env.wait(name)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    files = local_env.artifacts(name)
    hosts = ["127.0.0.1", "127.0.0.2"]
    assert {f"{h}.txt" for h in hosts} <= set(files)
    assert files["shared.txt"] == b"127.0.0.1"  # the master's copy wins a clash
    for host in hosts:
        config = json.loads(files[f"{host}.resourceconfig.json"])
        assert config["current_host"] == host and config["hosts"] == hosts
        assert config["network_interface_name"] == "lo"
        env = json.loads(files[f"{host}.env.json"])
        assert env == {"hosts": hosts, "master": "127.0.0.1", "job": name}
    assert set(local_env.artifacts(name, "output.tar.gz")) == {f"{h}.out" for h in hosts}
    log = local_env.log(name)
    assert "127.0.0.1 | hello from 127.0.0.1" in log
    assert "127.0.0.2 | hello from 127.0.0.2" in log
    assert_nothing_left(local_env.state_dir)


def test_metric_definitions_give_final_values_and_the_full_series(local_env: LocalEnv,
                                                                  tmp_path: Path) -> None:
    code = write_code(tmp_path / "code-metrics", """
        for epoch, loss in enumerate([0.9, 0.5, 0.25]):
            print(f"epoch={epoch} loss={loss} acc={1 - loss}", flush=True)
        print("loss=nan is ignored", flush=True)
    """)
    name = job_name("metrics")
    body = request(name, code, local_env.output_uri)
    body["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "train:loss", "Regex": r"loss=([0-9.]+)"},
        {"Name": "train:acc", "Regex": r"acc=([0-9.]+)"},
        {"Name": "never", "Regex": r"zzz=([0-9.]+)"}]
    local_env.client.create_training_job(**body)
    done = local_env.wait(name)
    assert done["TrainingJobStatus"] == "Completed"
    final = {m["MetricName"]: m["Value"] for m in done["FinalMetricDataList"]}
    assert final == {"train:loss": 0.25, "train:acc": 0.75}
    from local_mode.training.metrics import read_series

    series = read_series(local_env.state_dir / "training-jobs" / name / "metrics.jsonl")
    assert [p["Value"] for p in series if p["MetricName"] == "train:loss"] == [0.9, 0.5, 0.25]


def test_the_process_backend_refuses_what_it_cannot_run(local_env: LocalEnv,
                                                        ok_code: Path) -> None:
    """Refused at create (a ValidationException naming the problem), so no job is left."""
    image_only = job_name("image-only")
    body = request(image_only, ok_code, local_env.output_uri)
    body["HyperParameters"] = {"learning_rate": "0.1"}
    with pytest.raises(local_env.client.exceptions.ValidationException) as caught:
        local_env.client.create_training_job(**body)
    message = caught.value.response["Error"]["Message"]
    assert "sagemaker_program" in message
    assert "optml/local-test:latest" in message
    assert "Docker backend" in message
    entrypoint = job_name("entrypoint")
    body = request(entrypoint, ok_code, local_env.output_uri)
    body["AlgorithmSpecification"]["ContainerEntrypoint"] = ["/usr/bin/my-trainer"]
    with pytest.raises(local_env.client.exceptions.ValidationException) as caught:
        local_env.client.create_training_job(**body)
    assert "ContainerEntrypoint" in caught.value.response["Error"]["Message"]
    assert local_env.client.list_training_jobs()["TrainingJobSummaries"] == []
    assert_nothing_left(local_env.state_dir)


def test_stop_of_a_finished_job_is_a_validation_error(local_env: LocalEnv, ok_code: Path) -> None:
    name = job_name()
    local_env.client.create_training_job(**request(name, ok_code, local_env.output_uri))
    local_env.wait(name)
    with pytest.raises(ClientError) as caught:
        local_env.client.stop_training_job(TrainingJobName=name)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(local_env.client.exceptions.ResourceInUse):
        local_env.client.create_training_job(**request(name, ok_code, local_env.output_uri))


def test_a_channel_without_data_is_refused_at_create(local_env: LocalEnv, ok_code: Path,
                                                    tmp_path: Path) -> None:
    """As the service: "No S3 objects found under S3 URL ..." from CreateTrainingJob."""
    name = job_name("nodata")
    empty = tmp_path / "empty"
    empty.mkdir()
    for uri in (f"file://{tmp_path / 'nowhere' / 'data'}", empty.as_uri(),
                f"file://{tmp_path / 'empty' / 'part-'}"):
        with pytest.raises(local_env.client.exceptions.ValidationException) as caught:
            local_env.client.create_training_job(**request(
                name, ok_code, local_env.output_uri,
                channels=[channel("train", f"file://{tmp_path}"), channel("more", uri)]))
        message = str(caught.value)
        assert "when calling the CreateTrainingJob operation" in message
        assert f"InputDataConfig[1].DataSource.S3DataSource.S3Uri: No S3 objects found under " \
               f"S3 URL \"{uri}\"" in message
    assert local_env.client.list_training_jobs()["TrainingJobSummaries"] == []
    assert_nothing_left(local_env.state_dir)
