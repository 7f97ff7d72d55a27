"""``optml check`` against real containers: it passes on conforming images (every optml image,
and a plain-Python image with no optml inside) and fails with the right reason on images
that each break one rule, one case per check.

The broken cases run only the check they target (``CheckOptions.checks``) with small timeouts
and grace, so the whole module costs a few tens of seconds of Docker time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from local_mode.check import CheckOptions, Report, Status, format_table, run_checks
from tests.docker import check_images, harness
from tests.docker.frameworks import SKLEARN_TRAIN, TRAINED, dataset, export_onnx_linear

pytestmark = pytest.mark.docker

SAMPLE = b"0.1,0.5,0.3\n0.9,0.2,0.1\n"


@pytest.fixture()
def check_client(docker_client: docker.DockerClient) -> Iterator[docker.DockerClient]:
    """The session client; after each test no container of the test images may remain (a
    global :func:`local_mode.check.sweep` would also hit other check runs going on)."""
    yield docker_client
    tags = (check_images.TAG, check_images.BASE_TAG,
            *map(check_images.framework_tag, check_images.FRAMEWORKS))
    left = [c.name for tag in tags
            for c in docker_client.containers.list(all=True, filters={"ancestor": tag})]
    assert not left, f"check runs left containers behind: {left}"


@pytest.fixture(scope="module")
def broken_image(docker_client: docker.DockerClient) -> str:
    """Needs only the stand-in base (no optml image), so these tests never wait for a build."""
    harness.ensure_images(docker_client, ())
    return check_images.build_broken(docker_client)


@pytest.fixture()
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "sample.csv"
    path.write_bytes(SAMPLE)
    return path


def _assert_all_pass(report: Report) -> None:
    table = format_table(report)
    assert [r.name for r in report.results] == list(check_names()), table
    assert report.passed(), table
    assert report.exit_status() == 0


def check_names() -> tuple[str, ...]:
    from local_mode.check import ALL_CHECKS

    return ALL_CHECKS


LONGER = """
import time
time.sleep(2)
"""
JOB_YAML = """
AlgorithmSpecification: {{TrainingImage: replaced-by-the-image-under-test,
                          TrainingInputMode: File}}
HyperParameters: {{max_depth: "3"}}
InputDataConfig:
  - ChannelName: train
    ContentType: text/csv
    DataSource: {{S3DataSource: {{S3DataType: S3Prefix, S3Uri: "{uri}"}}}}
ResourceConfig: {{InstanceType: local, InstanceCount: 1, VolumeSizeInGB: 1}}
"""


def test_optml_sklearn_image_passes_every_check_on_a_job_file(
        check_client: docker.DockerClient, images: dict[str, str], sample: Path,
        tmp_path: Path) -> None:
    # two more seconds of "training", so SIGTERM (at 2 s) lands while train.py runs and not while
    # the toolkit starts up
    image = check_images.build_framework(check_client, "sklearn", SKLEARN_TRAIN + LONGER)
    data = tmp_path / "data"
    data.mkdir()
    (data / "part-0.csv").write_text(harness.csv_text(dataset()))
    job = tmp_path / "job.yaml"
    job.write_text(JOB_YAML.format(uri=data.as_uri() + "/"))
    report = run_checks(image, CheckOptions(job=job, sample=sample, content_type="text/csv",
                                            accept="application/json"),
                        client=check_client)
    _assert_all_pass(report)
    assert "job.yaml exited 0" in report.result("train").reason
    assert "model.joblib" in report.result("train").reason
    assert "415" in report.result("errors").reason


@dataclass(frozen=True)
class DefaultServing:
    """One framework image served by its default handlers (no inference.py): what its train.py
    runs and writes, and the model the check serves when training does not write one."""

    framework: str
    train_script: str
    model_file: str
    hyperparameters: dict[str, str] = field(default_factory=dict)
    host_model: str | None = None


_TRAINED = {trained.name: trained for trained in TRAINED}
DEFAULT_SERVING = [
    *(DefaultServing(name, _TRAINED[name].train_script, _TRAINED[name].model_file,
                     _TRAINED[name].hyperparameters) for name in ("xgboost", "pytorch")),
    # nothing in optml/onnx writes ONNX: the model is exported on the host, as models served
    # there are exported where they are made, and staged with --model-data
    DefaultServing("onnx", check_images.ONNX_TRAIN, "weights.npy", host_model="model.onnx"),
]


@pytest.mark.parametrize("case", DEFAULT_SERVING, ids=[case.framework for case in DEFAULT_SERVING])
def test_optml_framework_image_with_default_handlers_passes_every_check(
        check_client: docker.DockerClient, images: dict[str, str], sample: Path, tmp_path: Path,
        case: DefaultServing) -> None:
    # LONGER: as for sklearn, SIGTERM (at 2 s) lands while train.py runs
    image = check_images.build_framework(check_client, case.framework,
                                         case.train_script + LONGER)
    model_data = None
    if case.host_model is not None:
        model_data = tmp_path / "model"
        model_data.mkdir()
        export_onnx_linear(model_data / case.host_model)
    report = run_checks(image, CheckOptions(sample=sample, content_type="text/csv",
                                            hyperparameters=case.hyperparameters,
                                            model_data=model_data),
                        client=check_client)
    _assert_all_pass(report)
    assert case.model_file in report.result("train").reason
    assert "415" in report.result("errors").reason


def test_optml_base_image_with_an_inference_module_passes_every_check(
        check_client: docker.DockerClient, images: dict[str, str], sample: Path) -> None:
    image = check_images.build_base(check_client)
    report = run_checks(image, CheckOptions(sample=sample, content_type="text/csv"),
                        client=check_client)
    _assert_all_pass(report)
    assert "exit status 143" in report.result("train-sigterm").reason


def test_plain_image_without_optml_passes_every_check(check_client: docker.DockerClient,
                                                      broken_image: str, sample: Path) -> None:
    report = run_checks(broken_image, CheckOptions(sample=sample, content_type="text/csv",
                                                   grace=10), client=check_client)
    _assert_all_pass(report)
    assert "exit status 143" in report.result("train-sigterm").reason


# One deliberately broken behaviour per check: (check, BROKEN, extra options, reason text).
BROKEN_CASES = [
    ("train", "no-model", {}, "/opt/ml/model is empty"),
    ("failure-file", "no-failure-file", {},
     "the job with BROKEN=no-failure-file exited 3 without writing /opt/ml/output/failure"),
    # the unsignalled run it is judged against is cut short by train_timeout
    ("train-sigterm", "ignore-sigterm", {"sigterm_after": 0.5, "grace": 2.0, "train_timeout": 2.0},
     "still running 2.0 s after SIGTERM"),
    ("ping", "ping-never", {"ready_timeout": 3.0, "startup_timeout": 3.0},
     "/ping did not answer 200 within 3.0 s (last: answered 503"),
    ("startup-time", "slow-start", {"startup_timeout": 1.0}, "over the 1.0 s budget"),
    ("invocations", "invocations-500", {}, "was answered 500"),
    ("errors", "unsupported-200", {},
     "an unsupported Content-Type (application/x-optml-check-unsupported) was answered 200"),
    ("serve-sigterm", "drop-on-sigterm", {"grace": 5.0},
     "the request in flight when SIGTERM arrived was dropped"),
]


@pytest.mark.parametrize(("check", "broken", "extra", "reason"), BROKEN_CASES,
                         ids=[case[0] for case in BROKEN_CASES])
def test_broken_image_fails_the_check_it_breaks(check_client: docker.DockerClient,
                                                broken_image: str, sample: Path, tmp_path: Path,
                                                check: str, broken: str, extra: dict[str, float],
                                                reason: str) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text("{}")
    # the failure-file case names its trigger: the generated job plus the breaking variable
    where = "failing_environment" if check == "failure-file" else "environment"
    options = CheckOptions(sample=sample, content_type="text/csv", model_data=model,
                           checks=[check], **{where: {"BROKEN": broken}}, **extra)
    report = run_checks(broken_image, options, client=check_client)
    table = format_table(report)
    assert [r.name for r in report.results] == [check], table
    result = report.result(check)
    assert result.status is Status.FAIL, table
    assert reason in result.reason, table
    assert report.exit_status() == 1


def test_cli_prints_the_table_and_exits_by_the_verdict(check_client: docker.DockerClient,
                                                       broken_image: str) -> None:
    command = [sys.executable, "-c", "from toolkit.cli import main; main()", "check",
               broken_image]
    passed = subprocess.run([*command, "--only", "failure-file"], capture_output=True,
                            text=True, timeout=300, check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"^failure-file +PASS ", passed.stdout, re.MULTILINE), passed.stdout
    assert "1 passed, 0 failed, 0 skipped" in passed.stdout

    failed = subprocess.run([*command, "--only", "train", "-e", "BROKEN=no-model", "--json"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    (result,) = json.loads(failed.stdout)["results"]
    assert (result["name"], result["status"]) == ("train", "FAIL")
    assert "/opt/ml/model is empty" in result["reason"]


def test_cli_names_a_missing_image_in_one_line(check_client: docker.DockerClient) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from toolkit.cli import main; main()", "check",
         "optml-test/no-such-image:never"], capture_output=True, text=True, timeout=120,
        check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "optml check: IMAGE: Requested image optml-test/no-such-image:never not found in the "
        "local Docker engine; local mode never pulls images (no registry is reachable from "
        "here): build it (docker build -t ...) or load it (docker load -i ...) first"]
