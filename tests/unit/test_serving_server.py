"""``optml serve`` start-up decisions that need no running server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from toolkit.layout import Layout
from toolkit.serving.server import code_search_path, main
from toolkit.settings import ServingSettings


def test_code_search_path_order() -> None:
    layout = Layout(Path("/r"))
    assert code_search_path(ServingSettings(), layout) == [Path("/r/model/code"),
                                                           Path("/r/code")]
    local = ServingSettings(submit_directory="/src")
    assert code_search_path(local, layout)[1] == Path("/src")
    remote = ServingSettings(submit_directory="s3://bucket/src.tar.gz")
    assert Path("s3://bucket/src.tar.gz") not in code_search_path(remote, layout)


def test_bad_setting_exits_2_naming_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "many")
    assert main([]) == 2
    assert "SAGEMAKER_MODEL_SERVER_WORKERS" in capsys.readouterr().err


def test_port_in_use_exits_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", str(taken.getsockname()[1]))
        monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
        assert main([]) == 1


def test_gunicorn_log_level_names() -> None:
    from toolkit.serving.gunicorn_app import gunicorn_log_level

    assert [gunicorn_log_level(n) for n in (0, 10, 15, 20, 25, 30, 40, 50, 60)] == [
        "debug", "debug", "debug", "info", "info", "warning", "error", "critical", "critical"]


def test_request_threads_let_batches_fill() -> None:
    from toolkit.serving.gunicorn_app import DEFAULT_THREADS, request_threads

    assert request_threads(None, batch_max_size=None) == DEFAULT_THREADS
    assert request_threads(None, batch_max_size=8) == 8
    assert request_threads(None, batch_max_size=32) == 32
    assert request_threads(None, batch_max_size=1) == DEFAULT_THREADS
    assert request_threads(3, batch_max_size=8) == 3  # an explicit setting wins
