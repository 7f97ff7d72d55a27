"""local_mode.docker_engine without an engine: "no engine" is one clear answer everywhere, and the
``auto`` backend falls back to processes; the one sweep and the limits both Docker backends use.
(With an engine, tests/docker/ cover require_image and the sweeps of real jobs.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker.errors
import pytest

from local_mode.backend_choice import choose_backend
from local_mode.docker_engine import (
    ENDPOINT_LABEL,
    JOB_LABEL,
    STATE_LABEL,
    DockerUnavailable,
    docker_reachable,
    label_values,
    limits_host_config,
    reachable_client,
    sweep,
)
from local_mode.instance_types import GIB, ResourceLimits


@pytest.fixture
def no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCKER_HOST names a socket nothing listens on (a real client, a real failure)."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)


@pytest.mark.usefixtures("no_engine")
def test_no_engine_is_docker_unavailable_saying_what_to_do() -> None:
    with pytest.raises(DockerUnavailable, match="start one or use the process backend") as caught:
        reachable_client(timeout=3)
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert caught.value.http_status == 503


@pytest.mark.usefixtures("no_engine")
def test_auto_falls_back_to_processes_without_an_engine() -> None:
    assert docker_reachable() is False
    assert choose_backend("auto") == "process"
    assert choose_backend("docker") == "docker"  # asked for explicitly: not second-guessed


# -- sweep, label_values, limits: what both Docker backends share, against a recording client --

class _Object:
    """A sparse container or network as docker-py's high-level client lists it."""

    def __init__(self, labels: dict[str, str] | None, removed: list[str], gone: bool = False):
        self.attrs: dict[str, Any] = {"Labels": labels}
        self._removed = removed
        self._gone = gone

    def remove(self, **kwargs: Any) -> None:
        if self._gone:
            raise docker.errors.NotFound("removed meanwhile")
        self._removed.append(f"{self.attrs['Labels']} {sorted(kwargs.items())}")


class _Collection:
    def __init__(self, items: list[_Object]) -> None:
        self.items = items
        self.calls: list[dict[str, Any]] = []

    def list(self, **kwargs: Any) -> list[_Object]:
        self.calls.append(kwargs)
        return self.items


class _Client:
    def __init__(self, containers: list[_Object], networks: list[_Object]) -> None:
        self.containers = _Collection(containers)
        self.networks = _Collection(networks)


def test_sweep_selects_by_every_label_and_counts_what_it_removed() -> None:
    removed: list[str] = []
    client = _Client([_Object({"a": "1"}, removed), _Object({"a": "1"}, removed, gone=True)],
                     [_Object({"a": "1"}, removed)])
    assert sweep(client, {ENDPOINT_LABEL: "e", STATE_LABEL: "", JOB_LABEL: None}) == 3
    selector = {"label": ["optml.endpoint=e", "optml.state=", "optml.job"]}
    # sparse: no inspect per container, so one removed meanwhile cannot fail the listing
    assert client.containers.calls == [{"all": True, "sparse": True, "filters": selector}]
    assert client.networks.calls == [{"filters": selector}]
    # containers with their anonymous volumes; the one already gone is fine
    assert removed == ["{'a': '1'} [('force', True), ('v', True)]", "{'a': '1'} []"]


def test_sweep_never_removes_everything() -> None:
    with pytest.raises(ValueError, match="at least one label"):
        sweep(_Client([], []), {})


def test_label_values_reads_containers_and_networks() -> None:
    client = _Client([_Object({JOB_LABEL: "a"}, []), _Object(None, [])],
                     [_Object({JOB_LABEL: "b"}, [])])
    assert label_values(client, JOB_LABEL) == {"a", "b", ""}
    assert client.containers.calls[0]["filters"] == {"label": [JOB_LABEL]}


def test_limits_host_config_has_no_swap_and_half_the_memory_as_shm() -> None:
    config = limits_host_config(ResourceLimits(cpus=2.0, memory_bytes=4 * GIB))
    assert config == {"nano_cpus": 2_000_000_000, "mem_limit": 4 * GIB,
                      "memswap_limit": 4 * GIB, "shm_size": 2 * GIB}
    unlimited = limits_host_config(ResourceLimits())
    assert unlimited["nano_cpus"] is unlimited["mem_limit"] is unlimited["memswap_limit"] is None
