"""UpdateEndpointWeightsAndCapacities' request, handed from the API to the endpoint's runner.

The API checks the request, records the variants' new weights and counts here and signals the
runner (SIGUSR1), which applies them -- new instances join once healthy, removed ones drain --
and then clears the request and puts the endpoint back InService.
"""

from __future__ import annotations

import contextlib
from typing import Any

from local_mode.state import ResourceDir, read_json, write_json_atomic


def record_capacity_request(resource: ResourceDir, changes: list[dict[str, Any]]) -> None:
    """Keep ``changes`` (the request's DesiredWeightsAndCapacities) for the runner."""
    write_json_atomic(resource.capacity_request_file, changes)


def capacity_request(resource: ResourceDir) -> list[dict[str, Any]] | None:
    """The recorded changes, or None when there are none (or they cannot be read)."""
    try:
        changes = read_json(resource.capacity_request_file)
    except (FileNotFoundError, ValueError):
        return None
    return changes if isinstance(changes, list) else None


def clear_capacity_request(resource: ResourceDir) -> None:
    with contextlib.suppress(FileNotFoundError):
        resource.capacity_request_file.unlink()
