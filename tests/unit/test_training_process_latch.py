"""toolkit.training.process: a stop that arrives before the program starts is never lost."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from toolkit.training.process import StopLatch, StopRequested, Supervisor


@pytest.fixture
def restore_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_a_latched_stop_means_the_program_never_starts(tmp_path: Path, restore_signals) -> None:
    latch = StopLatch().install()
    os.kill(os.getpid(), signal.SIGTERM)  # outside interrupting(): only remembered
    assert latch.signum == signal.SIGTERM
    marker = tmp_path / "ran"
    result = Supervisor([sys.executable, "-c", f"open({str(marker)!r}, 'w')"], env=os.environ,
                        latch=latch).run()
    assert result.returncode == 128 + signal.SIGTERM
    assert result.stop_signal == signal.SIGTERM
    assert not marker.exists()


def test_interrupting_ends_a_blocking_step_at_once(restore_signals) -> None:
    latch = StopLatch().install()
    with pytest.raises(StopRequested) as caught, latch.interrupting():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)  # the handler raises out of the sleep
    assert caught.value.signum == signal.SIGINT
    assert "SIGINT received before the program started" in str(caught.value)


def test_only_the_first_stop_counts_and_a_later_step_raises_at_once(restore_signals) -> None:
    latch = StopLatch().install()
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGTERM)
    assert latch.signum == signal.SIGINT
    with pytest.raises(StopRequested), latch.interrupting():
        pytest.fail("a step after a stop must not run")


def test_without_a_stop_the_program_runs(tmp_path: Path, restore_signals) -> None:
    latch = StopLatch().install()
    marker = tmp_path / "ran"
    result = Supervisor([sys.executable, "-c", f"open({str(marker)!r}, 'w')"], env=os.environ,
                        latch=latch).run()
    assert result.returncode == 0 and result.stop_signal is None and marker.exists()
