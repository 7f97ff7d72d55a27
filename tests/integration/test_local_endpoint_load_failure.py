"""A model that can never load fails its endpoint at once, with the container's own reason.

optml's server answers /ping with 503 ``model_load_failed`` after a fatal model_fn error; the
router takes that as final instead of waiting out the start-up health-check timeout.
"""

from __future__ import annotations

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
