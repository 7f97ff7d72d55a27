"""MicroBatcher: outputs go back to their own callers, errors reach the whole batch, and the
adaptive window waits only when waiting can pay.

No assertion here depends on how fast the machine is: batches are shaped with gates and an
injected clock, and the window is tested as the pure arithmetic it is.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.serving.batching import MIN_WAIT_S, BatchWindow, MicroBatcher
from toolkit.serving.errors import UserCodeFailed


def _crowd(window: BatchWindow, arrivals: int = 30, gap: float = 0.0) -> None:
    """Record arrivals that all found a batch in progress, ``gap`` seconds apart."""
    for i in range(arrivals):
        window.observe_arrival(i * gap, busy=True)


def _until(condition: object, what: str, timeout: float = 10.0) -> None:
    """Poll a condition that other threads make true (fails the test, never sleeps long)."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


# -- correctness -------------------------------------------------------------------------------
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


def test_length_mismatch_fails_every_request_of_the_batch() -> None:
    gate = threading.Event()

    def predict(inputs: list[int]) -> list[int]:
        gate.wait(timeout=5)
        return inputs[:1]  # one output, whatever the batch size

    batcher = MicroBatcher(predict, max_size=8, max_wait_ms=1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(batcher.predict, 0)
        _until(lambda: batcher.batches == 1, "the first batch to start")
        rest = [pool.submit(batcher.predict, i) for i in (1, 2, 3)]
        _until(lambda: len(batcher._pending) == 3, "three followers to queue")
        gate.set()
        assert first.result() == 0  # a batch of one is answered
        for future in rest:  # the batch of three fails as a whole
            with pytest.raises(UserCodeFailed, match="returned 1 outputs for 3 inputs"):
                future.result()


def test_non_list_result_and_exceptions_reach_the_caller() -> None:
    with pytest.raises(UserCodeFailed, match="must return a list"):
        MicroBatcher(lambda inputs: 5, max_size=2, max_wait_ms=1).predict(1)

    def boom(inputs: list[int]) -> list[int]:
        raise KeyError("model broke")

    with pytest.raises(KeyError):
        MicroBatcher(boom, max_size=2, max_wait_ms=1).predict(1)
    with pytest.raises(ValueError):
        MicroBatcher(boom, max_size=0, max_wait_ms=1)


def test_batcher_keeps_serving_after_a_failed_batch() -> None:
    calls = iter([RuntimeError("first call fails"), None])

    def predict(inputs: list[int]) -> list[int]:
        failure = next(calls)
        if failure is not None:
            raise failure
        return inputs

    batcher = MicroBatcher(predict, max_size=2, max_wait_ms=1)
    with pytest.raises(RuntimeError, match="first call fails"):
        batcher.predict(1)
    assert batcher.predict(2) == 2


# -- who runs the batch, and when --------------------------------------------------------------
def test_a_lone_request_runs_on_its_own_thread_without_waiting() -> None:
    threads: list[int] = []

    def predict(inputs: list[int]) -> list[int]:
        threads.append(threading.get_ident())
        return inputs

    # a wait of a minute would show: the window must not open for a lone request
    batcher = MicroBatcher(predict, max_size=8, max_wait_ms=60_000)
    for i in range(5):  # sequential callers: nothing else is ever in flight
        assert batcher.predict(i) == i
    assert threads == [threading.get_ident()] * 5
    assert batcher.batches == 5 and batcher.waited_batches == 0


def test_followers_queued_behind_a_running_batch_form_the_next_one() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def predict(inputs: list[int]) -> list[int]:
        gate.wait(timeout=5)
        sizes.append(len(inputs))
        return inputs

    batcher = MicroBatcher(predict, max_size=8, max_wait_ms=20)
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(batcher.predict, 0)
        _until(lambda: batcher.batches == 1, "the first batch to start")
        rest = [pool.submit(batcher.predict, i) for i in range(1, 8)]
        _until(lambda: len(batcher._pending) == 7, "seven followers to queue")
        gate.set()
        assert [first.result()] + [f.result() for f in rest] == list(range(8))
    assert sizes == [1, 7]


def test_the_leader_waits_for_arrivals_when_the_window_says_so_and_runs_when_full() -> None:
    sizes: list[int] = []

    def predict(inputs: list[int]) -> list[int]:
        sizes.append(len(inputs))
        return inputs

    # a frozen clock: every arrival gap is 0 and a wait never uses up the budget, so only a
    # full batch (or a minute without arrivals) ends the window
    batcher = MicroBatcher(predict, max_size=3, max_wait_ms=60_000, clock=lambda: 0.0)
    batcher.window.observe_batch(1, 10.0)  # as if a call had cost 10 s, all of it fixed
    _crowd(batcher.window)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(batcher.predict, i) for i in range(3)]
        assert sorted(f.result(timeout=30) for f in futures) == [0, 1, 2]
    assert sizes == [3] and batcher.waited_batches == 1


def test_a_window_that_sees_no_arrival_runs_what_it_has() -> None:
    batcher = MicroBatcher(lambda inputs: inputs, max_size=8, max_wait_ms=5, clock=lambda: 0.0)
    batcher.window.observe_batch(1, 1.0)
    _crowd(batcher.window)
    assert batcher.predict("alone") == "alone"
    assert batcher.batches == 1 and batcher.waited_batches == 1


def test_requests_that_come_one_at_a_time_never_wait_even_for_a_slow_model() -> None:
    # a slow model (1 s per call, all fixed) and arrivals 0 s apart, but every request finds the
    # batcher idle: nothing else is in flight, so there is nobody to wait for
    batcher = MicroBatcher(lambda inputs: inputs, max_size=8, max_wait_ms=60_000,
                           clock=lambda: 0.0)
    for i in range(30):
        batcher.window.observe_batch(1, 1.0)  # keep the cost estimate slow
        assert batcher.predict(i) == i
    assert batcher.window.arrival_gap == 0.0 and batcher.window.fixed_cost is not None
    assert batcher.window.fixed_cost > 0.1  # cost and rate alone would open the window
    assert batcher.window.overlap == 0.0
    assert batcher.batches == 30 and batcher.waited_batches == 0


# -- the window's arithmetic -------------------------------------------------------------------
def test_window_is_closed_until_something_was_measured() -> None:
    window = BatchWindow(max_size=8, max_wait_s=0.005)
    assert window.next_wait(1, 0.0) == 0.0
    window.observe_batch(1, 0.004)
    assert window.next_wait(1, 0.0) == 0.0  # no arrival rate yet
    _crowd(window, gap=0.0005)
    assert window.next_wait(1, 0.0) == pytest.approx(0.004)
    assert window.next_wait(8, 0.0) == 0.0  # full: run now
    assert window.next_wait(1, 0.003) == pytest.approx(0.002)  # the rest of max_wait
    assert window.next_wait(1, 0.005) == 0.0


def test_trivial_model_never_opens_the_window() -> None:
    window = BatchWindow(max_size=8, max_wait_s=0.005)
    now = 0.0
    for size in [1, 2, 1, 3, 1, 1, 2] * 5:
        window.observe_batch(size, 5e-6 * size)  # microseconds per call
        now += 1e-4
        window.observe_arrival(now, busy=True)
    assert window.next_wait(1, 0.0) == 0.0


def test_slow_arrivals_do_not_open_the_window() -> None:
    window = BatchWindow(max_size=8, max_wait_s=0.005)
    window.observe_batch(1, 0.004)
    _crowd(window, gap=0.010)  # one request every 10 ms, even if each found another in flight
    assert window.next_wait(1, 0.0) == 0.0


def test_long_idle_gap_is_forgotten_quickly() -> None:
    window = BatchWindow(max_size=8, max_wait_s=0.005)
    window.observe_batch(1, 0.004)
    window.observe_arrival(0.0, busy=True)
    window.observe_arrival(3600.0, busy=True)  # an hour of silence counts as 2 x max_wait
    assert window.arrival_gap == pytest.approx(0.010)
    now = 3600.0
    for _ in range(20):
        now += 0.0002
        window.observe_arrival(now, busy=True)
    assert window.next_wait(1, 0.0) > 0.0


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 64), min_size=2, max_size=40),
       per_item=st.floats(1e-6, 1e-2), max_wait=st.floats(0.0, 0.05))
def test_linear_cost_is_not_worth_waiting_for(sizes: list[int], per_item: float,
                                              max_wait: float) -> None:
    """A model whose time is proportional to the batch size gains nothing from a bigger batch."""
    window = BatchWindow(max_size=64, max_wait_s=max_wait)
    for size in sizes:
        window.observe_batch(size, per_item * size)
    _crowd(window, gap=1e-6)  # requests arriving very fast, all while a batch runs
    fixed = window.fixed_cost
    assert fixed is not None
    if len(set(sizes)) > 1:
        assert fixed == pytest.approx(0.0, abs=1e-9 + per_item * 1e-6)
        assert window.next_wait(1, 0.0) == 0.0


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 64), min_size=1, max_size=40),
       fixed=st.floats(1e-3, 1.0), max_wait=st.floats(1e-3, 0.05))
def test_fixed_cost_is_found_and_bounds_the_wait(sizes: list[int], fixed: float,
                                                  max_wait: float) -> None:
    """A model whose call costs the same at any size: waiting for company pays, up to max_wait."""
    window = BatchWindow(max_size=64, max_wait_s=max_wait)
    for size in sizes:
        window.observe_batch(size, fixed)
    _crowd(window, gap=1e-6)
    assert window.fixed_cost == pytest.approx(fixed, rel=1e-6)
    assert window.next_wait(1, 0.0) == pytest.approx(min(fixed, max_wait))


@settings(max_examples=300, deadline=None)
@given(events=st.lists(st.one_of(
           st.tuples(st.just("batch"), st.integers(-2, 100), st.floats(-1.0, 10.0)),
           st.tuples(st.just("arrival"), st.integers(0, 1), st.floats(0.0, 1e4))),
           max_size=60),
       max_size=st.integers(1, 64), max_wait=st.floats(0.0, 1.0),
       size=st.integers(1, 100), waited=st.floats(0.0, 2.0))
def test_window_bounds_hold_for_any_history(events: list[tuple[str, int, float]],
                                            max_size: int, max_wait: float, size: int,
                                            waited: float) -> None:
    window = BatchWindow(max_size=max_size, max_wait_s=max_wait)
    times: list[float] = []
    for kind, count, value in events:
        if kind == "batch":
            window.observe_batch(count, value)
            if count >= 1 and value >= 0:
                times.append(value)
        else:
            window.observe_arrival(value, busy=bool(count))
    wait = window.next_wait(size, waited)
    assert 0.0 <= wait <= max(0.0, max_wait - waited) + 1e-12
    if size >= max_size or not times:
        assert wait == 0.0
    assert wait == 0.0 or (wait >= MIN_WAIT_S and window.overlap >= 0.5)
    assert 0.0 <= window.overlap <= 1.0
    fixed = window.fixed_cost
    if times:
        assert fixed is not None and 0.0 <= fixed <= max(times) + 1e-9
    else:
        assert fixed is None


def test_window_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        BatchWindow(max_size=0, max_wait_s=0.005)
    with pytest.raises(ValueError):
        BatchWindow(max_size=1, max_wait_s=-1.0)
    with pytest.raises(ValueError):
        BatchWindow(max_size=1, max_wait_s=0.005, smoothing=0.0)
