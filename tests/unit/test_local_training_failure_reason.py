"""A failed training job's FailureReason: the host's failure file, and out-of-memory kills."""

from __future__ import annotations

from pathlib import Path

from local_mode.training.hosts import Host
from local_mode.training.runner import FAILURE_REASON_CHARS, _failure_reason
from toolkit.layout import Layout


def _host(tmp_path: Path, failure: str | None = None) -> Host:
    layout = Layout(tmp_path / "algo-1")
    if failure is not None:
        layout.failure_file.parent.mkdir(parents=True, exist_ok=True)
        layout.failure_file.write_text(failure)
    return Host("algo-1", 0, 1, layout)


def test_the_failure_file_is_the_reason(tmp_path: Path) -> None:
    host = _host(tmp_path, "AlgorithmError: exit code 1: ValueError: bad\n")
    assert _failure_reason(host, 1) == "AlgorithmError: exit code 1: ValueError: bad"


def test_no_failure_file_names_the_host_and_code(tmp_path: Path) -> None:
    reason = _failure_reason(_host(tmp_path), 3)
    assert reason == "AlgorithmError: host algo-1 exited with code 3 (no failure file)"


def test_an_oom_kill_comes_first_with_the_instance_type(tmp_path: Path) -> None:
    """The toolkit's failure file only knows its child got SIGKILL; the engine knows why."""
    host = _host(tmp_path, "AlgorithmError: exit code 137 (SIGKILL)")
    reason = _failure_reason(host, 137, out_of_memory=True, instance_type="ml.t3.medium")
    assert reason.startswith("OutOfMemoryError: host algo-1 went over the memory of "
                             "ml.t3.medium and was killed;")
    assert reason.endswith("AlgorithmError: exit code 137 (SIGKILL)")


def test_an_oom_kill_without_failure_file_or_ml_type(tmp_path: Path) -> None:
    reason = _failure_reason(_host(tmp_path), 137, out_of_memory=True, instance_type="local")
    assert reason == ("OutOfMemoryError: host algo-1 went over the memory and was killed; use "
                      "an instance type with more memory, or process less data per host.")


def test_the_reason_is_capped(tmp_path: Path) -> None:
    host = _host(tmp_path, "x" * 5000)
    assert len(_failure_reason(host, 1)) == FAILURE_REASON_CHARS
    assert len(_failure_reason(host, 137, True, "ml.m5.large")) == FAILURE_REASON_CHARS
