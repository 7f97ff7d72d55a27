"""UpdateEndpointWeightsAndCapacities' request, kept for the endpoint's runner."""

from __future__ import annotations

import stat
from pathlib import Path

from local_mode.endpoints.weights import (
    capacity_request,
    clear_capacity_request,
    record_capacity_request,
)
from local_mode.state import StateStore


def test_a_request_is_kept_privately_until_cleared(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    resource = store.create("endpoints", "ep", {"EndpointName": "ep"}, {})
    assert capacity_request(resource) is None
    changes = [{"VariantName": "AllTraffic", "DesiredInstanceCount": 3, "DesiredWeight": 0.5}]
    record_capacity_request(resource, changes)
    assert capacity_request(resource) == changes
    assert stat.S_IMODE(resource.capacity_request_file.stat().st_mode) == 0o600
    clear_capacity_request(resource)
    assert capacity_request(resource) is None
    clear_capacity_request(resource)  # twice is fine


def test_an_unreadable_request_is_none(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    resource = store.create("endpoints", "ep", {"EndpointName": "ep"}, {})
    resource.capacity_request_file.write_text("{not json")
    assert capacity_request(resource) is None
    resource.capacity_request_file.write_text('{"a": 1}')
    assert capacity_request(resource) is None
