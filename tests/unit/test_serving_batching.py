"""MicroBatcher: outputs go back to their own callers, errors reach the whole batch."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from toolkit.serving.batching import MicroBatcher
from toolkit.serving.errors import UserCodeFailed


def test_outputs_return_to_their_callers_under_concurrency() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def predict(inputs: list[int]) -> list[int]:
        gate.wait(timeout=5)  # hold the first batch so the rest queue up
        sizes.append(len(inputs))
        return [i * 10 for i in inputs]

    batcher = MicroBatcher(predict, max_size=8, max_wait_ms=50)
    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = [pool.submit(batcher.predict, i) for i in range(64)]
        gate.set()
        assert [f.result() for f in futures] == [i * 10 for i in range(64)]
    assert sum(sizes) == 64 and max(sizes) <= 8 and max(sizes) > 1
    assert batcher.batches == len(sizes)


def test_length_mismatch_fails_the_batch() -> None:
    batcher = MicroBatcher(lambda inputs: inputs + [0], max_size=4, max_wait_ms=1)
    with pytest.raises(UserCodeFailed, match="returned 2 outputs for 1 inputs"):
        batcher.predict(1)


def test_non_list_result_and_exceptions_reach_the_caller() -> None:
    with pytest.raises(UserCodeFailed, match="must return a list"):
        MicroBatcher(lambda inputs: 5, max_size=2, max_wait_ms=1).predict(1)

    def boom(inputs: list[int]) -> list[int]:
        raise KeyError("model broke")

    with pytest.raises(KeyError):
        MicroBatcher(boom, max_size=2, max_wait_ms=1).predict(1)
    with pytest.raises(ValueError):
        MicroBatcher(boom, max_size=0, max_wait_ms=1)
