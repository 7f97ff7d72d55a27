"""local_mode.docker_engine without an engine: "no engine" is one clear answer everywhere, and the
``auto`` backend falls back to processes. (With an engine, tests/docker/ cover require_image.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from local_mode.backend_choice import choose_backend
from local_mode.docker_engine import DockerUnavailable, docker_reachable, reachable_client


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
