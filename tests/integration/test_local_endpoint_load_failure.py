"""A model that can never load fails its endpoint at once, with the container's own reason.

optml's server answers /ping with 503 ``model_load_failed`` after a fatal model_fn error; the
router takes that as final instead of waiting out the start-up health-check timeout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import WaiterError

from tests.integration.test_local_endpoints_support import Local, local  # noqa: F401

BROKEN = """
def model_fn(model_dir):
    raise RuntimeError("weights file is corrupt: checksum mismatch")


def transform_fn(model, body, content_type, accept):
    return body
"""


def test_failed_model_load_fails_the_endpoint_promptly(local: Local) -> None:  # noqa: F811
    local.model("broken", BROKEN)
    local.config("broken", ("v", "broken", 1, 1.0))
    local.endpoint("broken", "broken", wait=False)
    # the default start-up health-check timeout is far longer than this wait
    description = local.wait_status("broken", "Failed", timeout=60)
    reason = description["FailureReason"]
    assert "the model failed to load" in reason
    assert "weights file is corrupt: checksum mismatch" in reason


def test_failed_model_load_fails_a_transform_job_promptly(local: Local,  # noqa: F811
                                                           tmp_path: Path) -> None:
    """The same for batch transform: no file is read, and the reason is the container's."""
    local.model("broken-batch", BROKEN)
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.csv").write_text("1,2\n")
    local.sm.create_transform_job(
        TransformJobName="broken-batch", ModelName="broken-batch",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": inputs.as_uri()}}},
        TransformOutput={"S3OutputPath": (tmp_path / "out").as_uri()},
        TransformResources={"InstanceType": "local", "InstanceCount": 1})
    # the start-up health-check timeout (600 s) is far longer than this wait
    with pytest.raises(WaiterError, match="Failed"):  # the waiter's failure state
        local.sm.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName="broken-batch", WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    described = local.sm.describe_transform_job(TransformJobName="broken-batch")
    assert described["TransformJobStatus"] == "Failed"
    reason = described["FailureReason"]
    assert reason.startswith("ContainersNotReady: instance 1: the model failed to load")
    assert "weights file is corrupt: checksum mismatch" in reason
    assert not (tmp_path / "out" / "a.csv.out").exists()
