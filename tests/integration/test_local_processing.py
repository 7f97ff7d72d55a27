"""Processing jobs on the process backend, for real: runner, hosts, staging, uploads, stop.

Each job runs a Python script as its ContainerEntrypoint with the code staged as an input (what
the SDK's ScriptProcessor does); its paths come from its arguments and from the config files the
platform writes, as on the service.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.local_training_support import LocalEnv, job_name, make_env, stop_everything
from tests.integration.processing_support import (
    files_below,
    job_log,
    processing_request,
    s3_input,
    s3_output,
    stop_processing_jobs,
    wait_ended,
    write_script,
)

SHARD_REPORT = """
    import json, os, sys
    from pathlib import Path

    base = Path(os.environ["SAGEMAKER_BASE_DIR"])
    config = json.loads((base / "config" / "processingjobconfig.json").read_text())
    resources = json.loads((base / "config" / "resourceconfig.json").read_text())
    raw, out = Path(sys.argv[1]), Path(sys.argv[2])
    seen = sorted(p.name for p in raw.iterdir())
    rows = sum(len(p.read_text().splitlines()) for p in raw.iterdir())
    me = resources["current_host"]
    (out / f"{me}.json").write_text(json.dumps({
        "seen": seen, "rows": rows, "hosts": resources["hosts"],
        "job": config["ProcessingJobName"], "arn": config["ProcessingJobArn"],
        "local_paths": [i["S3Input"]["LocalPath"] for i in config["ProcessingInputs"]],
        "env": os.environ.get("GREETING")}))
    print(f"{me} processed {seen}", flush=True)
    (base / "output" / "message").write_text(f"{me}: {rows} rows")
"""


@pytest.fixture
def env(tmp_path: Path) -> Iterator[LocalEnv]:
    local = make_env(tmp_path)
    try:
        yield local
    finally:
        stop_processing_jobs(local.client)
        stop_everything(local)


def _raw(root: Path, files: int = 4) -> Path:
    raw = root / "raw"
    raw.mkdir()
    for index in range(files):
        (raw / f"part-{index}.csv").write_text("".join(f"{index},{r}\n" for r in range(index + 1)))
    return raw


def test_two_instances_each_process_their_own_shard(env: LocalEnv, tmp_path: Path) -> None:
    code = write_script(tmp_path / "code", SHARD_REPORT)
    raw = _raw(tmp_path)
    out = tmp_path / "out"
    name = job_name("shard")
    env.client.create_processing_job(**processing_request(
        name, code, arguments=["/opt/ml/processing/input/raw", "/opt/ml/processing/output"],
        inputs=[s3_input("raw", f"file://{raw}", "/opt/ml/processing/input/raw",
                         S3DataDistributionType="ShardedByS3Key")],
        outputs=[s3_output("out", f"file://{out}", "/opt/ml/processing/output")],
        instance_count=2, environment={"GREETING": "hello"}))
    env.client.get_waiter("processing_job_completed_or_stopped").wait(
        ProcessingJobName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 1200})
    d = wait_ended(env.client, name)
    assert d["ProcessingJobStatus"] == "Completed", d
    reports = {path: json.loads(text) for path, text in files_below(out).items()}
    assert len(reports) == 2
    seen = [r["seen"] for r in reports.values()]
    assert sorted(sum(seen, [])) == sorted(p.name for p in raw.iterdir())  # each file once
    assert all(s for s in seen)  # both instances got a share
    assert not set(seen[0]) & set(seen[1])
    assert sum(r["rows"] for r in reports.values()) == 1 + 2 + 3 + 4
    for report in reports.values():
        assert report["job"] == name and report["arn"] == d["ProcessingJobArn"]
        assert report["env"] == "hello"
        assert len(report["hosts"]) == 2
        # on the process backend the config names the paths as the host's program sees them
        assert all(Path(p).is_absolute() and "/opt/ml/" not in p[:8]
                   for p in report["local_paths"])
    assert d["ExitMessage"].endswith("rows")
    assert d["ProcessingStartTime"] <= d["ProcessingEndTime"]
    log = job_log(env.client, name)
    assert "processed" in log and "Completed" in log


def test_continuous_output_is_uploaded_while_the_job_runs(tmp_path: Path) -> None:
    local = make_env(tmp_path, {"OPTML_LOCAL_CONTINUOUS_UPLOAD_SECONDS": "0.2"})
    release = tmp_path / "release"
    code = write_script(tmp_path / "code", f"""
        import sys, time
        from pathlib import Path
        live, final = Path(sys.argv[1]), Path(sys.argv[2])
        (live / "progress.txt").write_text("half done")
        (final / "result.txt").write_text("final")
        while not Path({str(release)!r}).exists():
            time.sleep(0.05)
        (live / "progress.txt").write_text("all done")
    """)
    live_out, final_out = tmp_path / "live", tmp_path / "final"
    name = job_name("continuous")
    try:
        local.client.create_processing_job(**processing_request(
            name, code, arguments=["/opt/ml/processing/live", "/opt/ml/processing/final"],
            outputs=[s3_output("live", f"file://{live_out}", "/opt/ml/processing/live",
                               "Continuous"),
                     s3_output("final", f"file://{final_out}", "/opt/ml/processing/final")]))
        deadline = time.monotonic() + 60
        while not (live_out / "progress.txt").exists():
            assert time.monotonic() < deadline, "the Continuous output was never uploaded"
            time.sleep(0.05)
        running = local.client.describe_processing_job(ProcessingJobName=name)
        assert running["ProcessingJobStatus"] == "InProgress"
        assert (live_out / "progress.txt").read_text() == "half done"
        assert not final_out.exists()  # EndOfJob: nothing before the end
        release.touch()
        d = wait_ended(local.client, name)
        assert d["ProcessingJobStatus"] == "Completed"
        assert (live_out / "progress.txt").read_text() == "all done"  # the last change too
        assert (final_out / "result.txt").read_text() == "final"
    finally:
        release.touch()
        wait_ended(local.client, name)
        stop_everything(local)


def test_files_removed_from_a_continuous_output_never_fail_the_job(tmp_path: Path) -> None:
    """A program that writes and removes scratch files in a Continuous output while uploads run:
    a file gone before its upload is skipped, the job completes with what was left."""
    local = make_env(tmp_path, {"OPTML_LOCAL_CONTINUOUS_UPLOAD_SECONDS": "0.1"})
    code = write_script(tmp_path / "code", """
        import sys, time
        from pathlib import Path
        out = Path(sys.argv[1])
        for index in range(300):
            scratch = out / f"scratch{index}.tmp"
            scratch.write_bytes(b"x" * 65536)
            time.sleep(0.002)
            scratch.unlink()
        (out / "result.txt").write_text("done")
    """)
    out = tmp_path / "out"
    name = job_name("vanish")
    try:
        local.client.create_processing_job(**processing_request(
            name, code, arguments=["/opt/ml/processing/out"],
            outputs=[s3_output("out", f"file://{out}", "/opt/ml/processing/out", "Continuous")]))
        d = wait_ended(local.client, name)
        assert d["ProcessingJobStatus"] == "Completed", d.get("FailureReason")
        assert (out / "result.txt").read_text() == "done"
    finally:
        stop_everything(local)


def test_an_entrypoint_that_is_not_there_fails_naming_it(env: LocalEnv, tmp_path: Path) -> None:
    code = write_script(tmp_path / "code", "print('never runs')\n")
    body = processing_request(job_name("noprogram"), code)
    body["AppSpecification"]["ContainerEntrypoint"] = ["optml-no-such-program", "x"]
    env.client.create_processing_job(**body)
    d = wait_ended(env.client, body["ProcessingJobName"])
    assert d["ProcessingJobStatus"] == "Failed"
    assert "cannot start 'optml-no-such-program'" in d["FailureReason"]


def test_stop_ends_the_job_stopped_and_leaves_nothing(env: LocalEnv, tmp_path: Path) -> None:
    code = write_script(tmp_path / "code", """
        import time
        print("sleeping", flush=True)
        time.sleep(300)
    """)
    out = tmp_path / "out"
    name = job_name("stop")
    env.client.create_processing_job(**processing_request(
        name, code, instance_count=2,
        outputs=[s3_output("out", f"file://{out}", "/opt/ml/processing/output")]))
    deadline = time.monotonic() + 60
    while job_log(env.client, name).count("sleeping") < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    env.client.stop_processing_job(ProcessingJobName=name)
    d = wait_ended(env.client, name)
    assert d["ProcessingJobStatus"] == "Stopped"
    assert "FailureReason" not in d
    assert not out.exists()  # EndOfJob outputs belong to a completed job
    with pytest.raises(env.client.exceptions.ValidationException, match="already stopped"):
        env.client.stop_processing_job(ProcessingJobName=name)


def test_a_failing_instance_fails_the_job_with_its_exit_message(env: LocalEnv,
                                                                tmp_path: Path) -> None:
    code = write_script(tmp_path / "code", """
        import json, os, sys, time
        from pathlib import Path
        base = Path(os.environ["SAGEMAKER_BASE_DIR"])
        me = json.loads((base / "config" / "resourceconfig.json").read_text())["current_host"]
        hosts = json.loads((base / "config" / "resourceconfig.json").read_text())["hosts"]
        if me == hosts[1]:
            (base / "output" / "message").write_text("bad row 17: not a number")
            sys.exit(3)
        time.sleep(300)  # the failing peer ends the job: this one is stopped
    """)
    name = job_name("fail")
    env.client.create_processing_job(**processing_request(name, code, instance_count=2))
    d = wait_ended(env.client, name)
    assert d["ProcessingJobStatus"] == "Failed"
    assert d["FailureReason"].startswith("AlgorithmError: See job logs for more information")
    assert "exited with code 3" in d["FailureReason"]
    assert d["ExitMessage"] == "bad row 17: not a number"
    summary = env.client.list_processing_jobs(StatusEquals="Failed")["ProcessingJobSummaries"]
    assert [s["ProcessingJobName"] for s in summary] == [name]
    assert summary[0]["ExitMessage"] == "bad row 17: not a number"


def test_max_runtime_stops_the_job(env: LocalEnv, tmp_path: Path) -> None:
    code = write_script(tmp_path / "code", "import time\ntime.sleep(300)\n")
    name = job_name("maxrt")
    env.client.create_processing_job(**processing_request(name, code, max_runtime=1))
    d = wait_ended(env.client, name)
    assert d["ProcessingJobStatus"] == "Stopped"
    assert d["FailureReason"].startswith("MaxRuntimeExceeded")


def test_pipe_input_streams_gzip_objects_into_a_fifo(env: LocalEnv, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv.gz").write_bytes(gzip.compress(b"1,2\n3,4\n"))
    (data / "b.csv.gz").write_bytes(gzip.compress(b"5,6\n"))
    code = write_script(tmp_path / "code", """
        import stat, sys
        from pathlib import Path
        fifo = Path(sys.argv[1]) / "rows_0"
        assert stat.S_ISFIFO(fifo.stat().st_mode), fifo
        Path(sys.argv[2], "rows.txt").write_bytes(fifo.read_bytes())
    """)
    out = tmp_path / "out"
    name = job_name("pipe")
    env.client.create_processing_job(**processing_request(
        name, code, arguments=["/opt/ml/processing/rows", "/opt/ml/processing/output"],
        inputs=[s3_input("rows", f"file://{data}", "/opt/ml/processing/rows",
                         S3InputMode="Pipe", S3CompressionType="Gzip")],
        outputs=[s3_output("out", f"file://{out}", "/opt/ml/processing/output")]))
    d = wait_ended(env.client, name)
    assert d["ProcessingJobStatus"] == "Completed", d.get("FailureReason")
    assert sorted((out / "rows.txt").read_text().splitlines()) == ["1,2", "3,4", "5,6"]


def test_paginator_lists_every_job(env: LocalEnv, tmp_path: Path) -> None:
    code = write_script(tmp_path / "code", "print('ok')\n")
    names = [job_name("page") for _ in range(3)]
    for name in names:
        env.client.create_processing_job(**processing_request(name, code))
    for name in names:
        assert wait_ended(env.client, name)["ProcessingJobStatus"] == "Completed"
    pages = env.client.get_paginator("list_processing_jobs").paginate(
        PaginationConfig={"PageSize": 2})
    listed = [s["ProcessingJobName"] for page in pages for s in page["ProcessingJobSummaries"]]
    assert sorted(listed) == sorted(names)


BAD_REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    ("outside the processing root", {"ProcessingInputs": [s3_input(
        "raw", "file:///tmp", "/opt/ml/input/raw")]},
     r"ProcessingInputs\[1\]\.S3Input\.LocalPath must be an absolute path that begins with "
     "/opt/ml/processing/"),
    ("output outside", {"ProcessingOutputConfig": {"Outputs": [s3_output(
        "o", "file:///tmp/o", "/opt/ml/processing/../model")]}},
     r"Outputs\[0\]\.S3Output\.LocalPath must be an absolute path"),
    ("gzip in file mode", {"ProcessingInputs": [s3_input(
        "raw", "file:///tmp", "/opt/ml/processing/raw", S3CompressionType="Gzip")]},
     "Gzip can only be used with S3InputMode Pipe"),
    ("dataset", {"ProcessingInputs": [{"InputName": "q", "DatasetDefinition": {
        "AthenaDatasetDefinition": {"Catalog": "c", "Database": "d", "QueryString": "q",
                                    "OutputS3Uri": "s3://b/q", "OutputFormat": "PARQUET"}}}]},
     r"ProcessingInputs\[1\]\.DatasetDefinition .* cannot run locally"),
    ("duplicate names", {"ProcessingInputs": [
        s3_input("raw", "file:///tmp", "/opt/ml/processing/a"),
        s3_input("raw", "file:///tmp", "/opt/ml/processing/b")]},
     "InputName must be unique"),
    ("no data", {"ProcessingInputs": [s3_input(
        "raw", "file:///nonexistent-optml", "/opt/ml/processing/raw")]},
     r"ProcessingInputs\[1\]\.S3Input\.S3Uri"),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD_REQUESTS,
                         ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_are_refused_naming_the_member(env: LocalEnv, tmp_path: Path, case: str,
                                                    change: dict[str, Any],
                                                    message: str) -> None:
    code = write_script(tmp_path / "code", "print('never runs')\n")
    body = processing_request(job_name("bad"), code)
    for key, value in change.items():
        if key == "ProcessingInputs":
            body[key] = body[key] + value
        else:
            body[key] = value
    with pytest.raises(env.client.exceptions.ValidationException, match=message):
        env.client.create_processing_job(**body)
    assert env.client.list_processing_jobs()["ProcessingJobSummaries"] == []


def test_botocore_model_checks_come_first(env: LocalEnv, tmp_path: Path) -> None:
    """What botocore's client refuses before sending (ParamValidationError), then the model's
    enums and patterns as the service checks them (ValidationException)."""
    from botocore.exceptions import ParamValidationError

    code = write_script(tmp_path / "code", "print('never runs')\n")
    body = processing_request(job_name("model"), code)
    body["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 0
    with pytest.raises(ParamValidationError, match="ClusterConfig.InstanceCount"):
        env.client.create_processing_job(**body)
    body = processing_request(job_name("model"), code)
    body["ProcessingInputs"][0]["S3Input"]["S3InputMode"] = "Sometimes"
    with pytest.raises(env.client.exceptions.ValidationException,
                       match=r"ProcessingInputs\[0\]\.S3Input\.S3InputMode"):
        env.client.create_processing_job(**body)


def test_the_process_backend_needs_an_entrypoint(env: LocalEnv, tmp_path: Path) -> None:
    code = write_script(tmp_path / "code", "print('never runs')\n")
    body = processing_request(job_name("noentry"), code)
    del body["AppSpecification"]["ContainerEntrypoint"]
    with pytest.raises(env.client.exceptions.ValidationException,
                       match="ContainerEntrypoint .* or use the Docker backend"):
        env.client.create_processing_job(**body)


def test_unknown_job_is_the_services_error(env: LocalEnv) -> None:
    with pytest.raises(env.client.exceptions.ValidationException,
                       match="Could not find requested job with name nope"):
        env.client.describe_processing_job(ProcessingJobName="nope")
