"""local_mode.cli.kinds against botocore's model: every kind's members, operations and result
keys are the service's, and the local client has every method the verbs call."""

from __future__ import annotations

import botocore.session
import pytest

from local_mode.cli.kinds import KINDS, ResourceKind, healthy_instances, router_url
from local_mode.sagemaker import SageMakerClient

MODEL = botocore.session.get_session().get_service_model("sagemaker")


def _output(operation: str) -> dict[str, object]:
    return dict(MODEL.operation_model(operation).output_shape.members)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.command)
def test_members_and_operations_are_the_services(kind: ResourceKind) -> None:
    listing = _output(f"List{kind.member}s")
    assert kind.list_key in listing
    described = _output(f"Describe{kind.member}")
    assert kind.name_member in described
    if kind.status_member:
        assert kind.status_member in described
        accepted = MODEL.operation_model(f"List{kind.member}s").input_shape \
            .members["StatusEquals"].enum
        assert list(kind.statuses) == list(accepted)  # --status takes what the filter takes
    if kind.end_time:
        assert kind.end_time in described
    for verb in ("describe", "list"):
        assert callable(getattr(SageMakerClient, f"{verb}_{kind.operation}"
                                + ("s" if verb == "list" else "")))
    if kind.stoppable:
        assert f"Stop{kind.member}" in MODEL.operation_names
        assert callable(getattr(SageMakerClient, f"stop_{kind.operation}"))


def test_every_store_kind_has_a_cli_kind() -> None:
    from local_mode.state import KINDS as STORE_KINDS

    assert {kind.command for kind in KINDS} == set(STORE_KINDS)


def test_an_endpoint_url_only_while_it_takes_invocations() -> None:
    serving = {"EndpointStatus": "InService", "RouterPort": 8123}
    assert router_url(serving) == "http://127.0.0.1:8123/invocations"
    assert router_url({**serving, "EndpointStatus": "Failed"}) == "-"
    assert router_url({"EndpointStatus": "Creating"}) == "-"
    assert healthy_instances({"Instances": [{"Healthy": True}, {"Healthy": False}]}) == "1/2"


@pytest.mark.parametrize("kind", [k for k in KINDS if k.lifecycle_name], ids=lambda k: k.command)
def test_a_kind_and_its_runner_lifecycle_agree(kind: ResourceKind) -> None:
    lifecycle = kind.lifecycle
    assert (lifecycle.kind, lifecycle.name_field, lifecycle.end_field, lifecycle.noun,
            lifecycle.status_field) == (kind.command, kind.name_member, kind.end_time,
                                        kind.what, kind.status_member)
