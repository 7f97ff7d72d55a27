"""local_mode.processing.workload and .hosts: what a processing container runs and sees, and
the config files written into a host's tree."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from local_mode.cluster import Host
from local_mode.cluster.process import ProcessBackend
from local_mode.processing import hosts as hostlib
from local_mode.processing.spec import ProcessingJobSpec
from local_mode.processing.workload import ProcessingWorkload, map_argument
from toolkit.layout import Layout


def _spec(app: dict[str, Any] | None = None, inputs: list[str] = (),
          outputs: list[str] = ()) -> ProcessingJobSpec:
    return ProcessingJobSpec.from_request({
        "ProcessingJobName": "p", "RoleArn": "r",
        "AppSpecification": {"ImageUri": "img", **(app or {})},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1,
                                                  "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 1}},
        "ProcessingInputs": [{"InputName": f"i{n}", "S3Input": {
            "S3Uri": "s3://b/x", "LocalPath": path, "S3DataType": "S3Prefix"}}
            for n, path in enumerate(inputs)],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": f"o{n}", "S3Output": {
            "S3Uri": "s3://b/y", "LocalPath": path, "S3UploadMode": "EndOfJob"}}
            for n, path in enumerate(outputs)]}})


def _host(tmp_path: Path) -> Host:
    return Host("algo-1", 0, 1, Layout(tmp_path / "algo-1"))


def test_the_command_is_the_images_unless_the_job_overrides_it() -> None:
    assert ProcessingWorkload(_spec()).container_command() == (None, None)
    assert ProcessingWorkload(_spec({"ContainerArguments": ["a"]})).container_command() == \
        (None, ["a"])
    # an entrypoint drops the image's CMD, as docker run --entrypoint does
    assert ProcessingWorkload(_spec({"ContainerEntrypoint": ["sh"]})).container_command() == \
        (["sh"], [])
    assert ProcessingWorkload(_spec({"ContainerEntrypoint": ["sh"],
                                     "ContainerArguments": ["-c", "x"]})
                              ).container_command() == (["sh"], ["-c", "x"])


def test_mounts_cover_config_output_and_each_path_once(tmp_path: Path) -> None:
    host = _host(tmp_path)
    workload = ProcessingWorkload(_spec(
        inputs=["/opt/ml/processing/input", "/opt/ml/processing/input/code",
                "/opt/ml/processing/lookup"],
        outputs=["/opt/ml/processing/output"]))
    mounts = {m.target: m for m in workload.mounts(host)}
    assert sorted(mounts) == ["/opt/ml/config", "/opt/ml/output", "/opt/ml/processing/input",
                              "/opt/ml/processing/lookup", "/opt/ml/processing/output"]
    assert mounts["/opt/ml/config"].read_only
    assert mounts["/opt/ml/processing/input"].source == \
        (tmp_path / "algo-1" / "processing" / "input").resolve()
    # never the whole /opt/ml or /opt/ml/processing: the image's own files stay visible
    assert "/opt/ml" not in mounts and "/opt/ml/processing" not in mounts


def test_the_process_backend_needs_an_entrypoint_and_maps_paths(tmp_path: Path) -> None:
    host = _host(tmp_path)
    assert "ContainerEntrypoint" in (ProcessingWorkload(_spec()).process_refusal() or "")
    workload = ProcessingWorkload(_spec({
        "ContainerEntrypoint": [sys.executable, "/opt/ml/processing/input/code/run.py"],
        "ContainerArguments": ["--data=/opt/ml/processing/input", "/opt/ml", "-n", "/tmp/x"]}))
    assert workload.process_refusal() is None
    root = tmp_path / "algo-1"
    assert workload.process_argv(host) == [
        sys.executable, str(root / "processing/input/code/run.py"),
        f"--data={root / 'processing/input'}", str(root), "-n", "/tmp/x"]


def test_the_process_backend_refuses_paths_only_an_image_has() -> None:
    """``python3 /opt/ml/code/x.py`` works on Docker (the image's code) and would fail minutes
    later on the process backend: it is refused at create, naming the path."""
    reason = ProcessingWorkload(_spec({"ContainerEntrypoint": [
        "python3", "/opt/ml/code/preprocess.py"]})).process_refusal()
    assert reason is not None and "/opt/ml/code/preprocess.py" in reason
    assert "ProcessingInput" in reason
    assert ProcessingWorkload(_spec({"ContainerEntrypoint": ["python3", "x.py"],
                                     "ContainerArguments": ["--model=/opt/ml/model"]})
                              ).process_refusal() is not None
    for fine in ("/opt/ml/processing/input/code/x.py", "/opt/ml/config/resourceconfig.json",
                 "/opt/ml/output/message", "/opt/ml", "--out=/opt/ml/processing/out"):
        assert ProcessingWorkload(_spec({"ContainerEntrypoint": ["python3", "x.py"],
                                         "ContainerArguments": [fine]})
                                  ).process_refusal() is None, fine


def test_a_bare_python_entrypoint_is_local_modes_interpreter(tmp_path: Path) -> None:
    for name in ("python", "python3", "python3.11"):
        workload = ProcessingWorkload(_spec({"ContainerEntrypoint": [name, "-c", "pass"]}))
        assert workload.process_argv(_host(tmp_path))[0] == sys.executable
    workload = ProcessingWorkload(_spec({"ContainerEntrypoint": ["/usr/bin/python3", "x"]}))
    assert workload.process_argv(_host(tmp_path))[0] == "/usr/bin/python3"


@given(st.text(alphabet="/=-abmlopt.", max_size=30))
def test_map_argument_only_touches_opt_ml_paths(argument: str) -> None:
    host = Host("h", 0, 1, Layout(Path("/work/h")))
    mapped = map_argument(argument, host)
    if "/opt/ml" not in argument:
        assert mapped == argument
    if mapped != argument:
        assert "/work/h" in mapped


def test_config_files_name_paths_as_the_program_sees_them(tmp_path: Path) -> None:
    host = _host(tmp_path)
    spec = _spec({"ContainerEntrypoint": ["sh"]}, inputs=["/opt/ml/processing/in"],
                 outputs=["/opt/ml/processing/out"])
    description = {"ProcessingJobName": "p", "ProcessingJobArn": "arn:p",
                   "ProcessingJobStatus": "InProgress", "AppSpecification": {"ImageUri": "img"},
                   "ProcessingInputs": [{"InputName": "i0", "S3Input": {
                       "S3Uri": "s3://b/x", "LocalPath": "/opt/ml/processing/in"}}],
                   "ProcessingOutputConfig": {"Outputs": [{"OutputName": "o0", "S3Output": {
                       "S3Uri": "s3://b/y", "LocalPath": "/opt/ml/processing/out",
                       "S3UploadMode": "EndOfJob"}}]}}
    hostlib.write_config(spec, description, host, ["algo-1"], ProcessBackend({}, 5.0))
    config = json.loads(host.layout.processing_job_config_file.read_text())
    assert "ProcessingJobStatus" not in config and config["ProcessingJobArn"] == "arn:p"
    assert config["ProcessingInputs"][0]["S3Input"]["LocalPath"] == \
        str(host.layout.root / "processing" / "in")
    assert description["ProcessingInputs"][0]["S3Input"]["LocalPath"] == \
        "/opt/ml/processing/in"  # the description itself is left alone
    resources = json.loads(host.layout.processing_resource_config_file.read_text())
    assert resources["current_host"] == "algo-1" and resources["hosts"] == ["algo-1"]
    assert (host.layout.root / "processing" / "out").is_dir()
    assert host.layout.output_dir.stat().st_mode & 0o777 == 0o777  # any image user writes


def test_a_staged_input_stays_writable_by_any_user(tmp_path: Path) -> None:
    """A non-root image may write scratch files next to its input, as the config promised."""
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "a.csv").write_text("1\n")
    spec = ProcessingJobSpec.from_request({
        "ProcessingJobName": "p", "RoleArn": "r", "AppSpecification": {"ImageUri": "img"},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1,
                                                  "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 1}},
        "ProcessingInputs": [{"InputName": "d", "S3Input": {
            "S3Uri": data.as_uri(), "LocalPath": "/opt/ml/processing/d",
            "S3DataType": "S3Prefix"}}]})
    host = _host(tmp_path)
    assert hostlib.stage_input(spec.inputs[0], host, {}) == 2
    target = host.layout.root / "processing" / "d"
    assert (target / "sub" / "a.csv").read_text() == "1\n"
    assert target.stat().st_mode & 0o777 == 0o777
    assert (target / "sub").stat().st_mode & 0o777 == 0o777
