"""``optml check`` (local_mode.check) against the conformance images.

The check runs the contract's rules on an image by itself, outside any job or endpoint; the
images here were written for the service, by the reference toolkits' recipes or by hand. Each
applicable check must pass -- except where the reference toolkits themselves break a rule: the
training toolkit ignores SIGTERM (PID 1 without a handler), and the inference stack
(sagemaker-inference 1.10 on Multi Model Server 1.1) answers an unsupported type 500 and drops a
request in flight on SIGTERM. Those FAILs, with their reasons, are asserted: telling a user what
the service will do with such an image is what the check is for.
"""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from local_mode.check import (
    ALL_CHECKS,
    SERVE_CHECKS,
    TRAIN_CHECKS,
    CheckOptions,
    Report,
    Status,
    format_table,
    run_checks,
)
from tests.docker.conformance.local import files, tarball

FAILING_JOB = {"AlgorithmSpecification": {"TrainingImage": "replaced-by-the-image-under-test",
                                          "TrainingInputMode": "File"},
               "HyperParameters": {"fail": "on purpose"},
               "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1,
                                  "VolumeSizeInGB": 1}}


def _job_file(path: Path, request: dict[str, object]) -> Path:
    path.write_text(json.dumps(request))
    return path


def _shell_job(tmp_path: Path) -> Path:
    """The shell trainer's job: its two channels, both File mode (what the check accepts)."""
    channels = [{"ChannelName": name, "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix",
        "S3Uri": files(tmp_path / name, {f"{name}.txt": f"{name} data\n"}).as_uri() + "/"}}}
        for name in ("train", "stream")]
    return _job_file(tmp_path / "job.json", dict(FAILING_JOB, HyperParameters={},
                                                 InputDataConfig=channels))


def _assert_passed(report: Report, checks: tuple[str, ...]) -> None:
    assert [r.name for r in report.results] == list(checks), format_table(report)
    assert report.passed(), format_table(report)


@pytest.mark.docker
@pytest.mark.parametrize("image", ["plain-shell", "nonroot"])
def test_shell_images_pass_every_check(image: str, tmp_path: Path,
                                       docker_client: docker.DockerClient,
                                       conformance_images: dict[str, str]) -> None:
    (tmp_path / "text.txt").write_text("hello")
    report = run_checks(conformance_images[image], CheckOptions(
        job=_shell_job(tmp_path), failing_job=_job_file(tmp_path / "fail.json", FAILING_JOB),
        sample=tmp_path / "text.txt", content_type="text/plain"), client=docker_client)
    _assert_passed(report, ALL_CHECKS)
    uid = "10001" if image == "nonroot" else "0"
    assert f"(uid {uid}) refuses" in report.result("failure-file").reason


@pytest.mark.docker
def test_the_training_toolkit_image_trains_and_fails_cleanly_but_ignores_sigterm(
        tmp_path: Path, docker_client: docker.DockerClient,
        conformance_images: dict[str, str]) -> None:
    report = run_checks(conformance_images["training-toolkit"], CheckOptions(
        failing_job=_job_file(tmp_path / "fail.json", FAILING_JOB), checks=TRAIN_CHECKS,
        hyperparameters={"seconds": "4"}, sigterm_after=1.5, grace=2.0), client=docker_client)
    table = format_table(report)  # a training-only image: no serving checks apply
    assert [r.name for r in report.results] == list(TRAIN_CHECKS), table
    assert report.result("train").status is Status.PASS, table
    failure = report.result("failure-file")
    assert failure.status is Status.PASS, table
    assert "user-failure-marker: on purpose" in failure.reason
    # the toolkit's `train` is PID 1 and installs no SIGTERM handler, so the kernel drops the
    # signal and the script never sees it: on the service StopTrainingJob waits for the grace,
    # then kills. (The job trains 4 s; SIGTERM at 1.5 s; still running 2 s later.)
    sigterm = report.result("train-sigterm")
    assert sigterm.status is Status.FAIL and "still running" in sigterm.reason, table


@pytest.mark.docker
def test_the_readmes_three_line_image_passes_every_check(
        tmp_path: Path, docker_client: docker.DockerClient,
        conformance_images: dict[str, str]) -> None:
    (tmp_path / "row.csv").write_text("0.5,-1.0,2.0\n")
    # train.py waits --seconds first: SIGTERM at 4 s reaches the script, not optml's start-up
    # (a SIGTERM while requirements.txt installs is lost: the run ends 0, and the check SKIPs)
    report = run_checks(conformance_images["three-line"], CheckOptions(
        sample=tmp_path / "row.csv", content_type="text/csv", accept="application/json",
        hyperparameters={"seconds": "6"}, sigterm_after=4.0), client=docker_client)
    _assert_passed(report, ALL_CHECKS)


@pytest.mark.docker
def test_the_inference_toolkit_image_serves_but_fails_two_rules(
        tmp_path: Path, docker_client: docker.DockerClient,
        conformance_images: dict[str, str]) -> None:
    (tmp_path / "row.csv").write_text("1,2,3\n")
    model = tarball(tmp_path / "model.tar.gz",
                    {"model.json": json.dumps({"name": "m", "scale": 2.0})})
    report = run_checks(conformance_images["inference-toolkit"], CheckOptions(
        model_data=model, sample=tmp_path / "row.csv", content_type="text/csv",
        accept="application/json", environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"},
        checks=SERVE_CHECKS), client=docker_client)
    table = format_table(report)
    for name in ("ping", "startup-time", "invocations"):
        assert report.result(name).status is Status.PASS, table
    # the toolkit maps an unsupported type to 415, but Multi Model Server answers 500 without a
    # Content-Type: a client error that looks like a server fault
    errors = report.result("errors")
    assert errors.status is Status.FAIL and "was answered 500" in errors.reason, table
    # Multi Model Server stops at once on SIGTERM: the request in flight is dropped
    drain = report.result("serve-sigterm")
    assert drain.status is Status.FAIL and "dropped" in drain.reason, table
