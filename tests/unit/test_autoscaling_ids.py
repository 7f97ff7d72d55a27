"""Resource ids of endpoint variants: every pair of valid names round-trips, and any other text is
one ValidationException saying what local mode scales (never another error)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode.autoscaling import ids
from local_mode.errors import ValidationException

NAMES = st.from_regex(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(NAMES, NAMES)
def test_valid_names_round_trip(endpoint: str, variant: str) -> None:
    assert ids.parse_resource_id(ids.resource_id(endpoint, variant)) == (endpoint, variant)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.builds(lambda a, b: f"endpoint/{a}/variant/{b}", st.text(),
                                      st.text())))
def test_anything_else_is_one_validation_error(text: str) -> None:
    try:
        endpoint, variant = ids.parse_resource_id(text)
    except ValidationException as exc:
        assert "local mode scales SageMaker endpoint variants only" in exc.message
        return
    assert text == f"endpoint/{endpoint}/variant/{variant}"


@pytest.mark.parametrize("text", [
    "endpoint/ep/variant/", "endpoint//variant/v", "endpoint/ep/variant/v/extra",
    "endpoint/-ep/variant/v", "endpoint/ep/variant/v-", "inference-component/ic",
    "endpoint/ep/variant/v\n", "endpoint/" + "e" * 64 + "/variant/v", "endpoint/ep/variant/a_b"])
def test_malformed_ids_are_refused(text: str) -> None:
    with pytest.raises(ValidationException, match="Unsupported resource id"):
        ids.parse_resource_id(text)


def test_arns_are_shaped_as_the_services() -> None:
    assert re.fullmatch(r"arn:aws:application-autoscaling:eu-west-1:111122223333:"
                        r"scalable-target/[0-9a-f]{36}", ids.target_arn("eu-west-1", "111122223333"))
    arn = ids.policy_arn("eu-west-1", "111122223333", "endpoint/e/variant/v", "my policy")
    assert re.fullmatch(r"arn:aws:autoscaling:eu-west-1:111122223333:scalingPolicy:"
                        r"[0-9a-f-]{36}:resource/sagemaker/endpoint/e/variant/v:"
                        r"policyName/my policy", arn)
    assert ids.role_arn("1") == ("arn:aws:iam::1:role/aws-service-role/sagemaker.application-"
                                 "autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling"
                                 "_SageMakerEndpoint")
