"""Optional micro-batching: concurrent requests in one worker predicted together.

A model that is much faster on a batch than on N single rows (most vectorised models) can define
``batch_predict_fn(inputs, model) -> outputs``. Request threads decode their own input and hand
it to the worker's :class:`MicroBatcher`, which calls the user once for many requests. Each
request gets the output at its own index: a Future per queued request makes a crossed answer
impossible by construction, and a length mismatch fails the whole batch loudly.

Batching must pay where it can and cost nothing where it cannot, so there is no batcher thread
and no fixed wait:

* **Leader and followers.** The request that arrives when no batch is being collected or run
  becomes the *leader* and runs the batch itself, on its own thread: a lone request goes straight
  to the model, with no hand-off to another thread (and, when the window is closed, without even
  a Future: a few microseconds over calling the model directly). Requests that arrive meanwhile
  queue up as *followers*; when the leader's batch is done it hands the lead to the oldest
  follower, whose batch takes everything that queued while the model was busy (at most
  ``batch_max_size``).
* **An adaptive window** (:class:`BatchWindow`). Before running a batch that is not full, the
  leader may wait for more requests, but only when waiting can pay: when the model's measured
  *fixed* cost per call (fitted from the batch sizes and times seen so far) is large, requests
  have been arriving faster than that cost, and most of them found a batch in progress. A
  trivial model's fixed cost is microseconds, so it never waits; a model whose batch of 8 costs
  little more than one row waits for the requests that are on their way. ``batch_max_wait_ms``
  is only the upper bound of that wait, and a full batch runs at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from toolkit.serving.errors import UserCodeFailed

BatchPredict = Callable[[list[Any]], Any]

SMOOTHING = 0.1
"""Weight of the newest observation in the running estimates (about the last 10-20 batches)."""

OVERLAP_TO_WAIT = 0.5
"""The window opens only when at least this share of recent arrivals found a batch already
being collected or run: if requests come one at a time, nothing else is in flight to wait for."""

MIN_WAIT_S = 50e-6
"""Windows shorter than this are not worth opening: waking a sleeping thread costs about as
much, so a model this cheap runs at once."""


class BatchWindow:
    """How long a leader may wait for one more request; pure arithmetic, no clock, no threads.

    The batch cost is modelled as ``fixed + per_item * size`` and fitted by exponentially
    weighted least squares over the observed ``(size, seconds)`` pairs. Waiting for one more
    request pays when it lets the batch absorb a request that would otherwise pay the fixed cost
    again in a later call, so a leader waits at most ``min(fixed cost, what is left of
    max_wait)`` for the next arrival, and only when requests have been arriving at least that
    often and mostly while another batch was in progress (if they come one at a time, nothing
    else is in flight and waiting only adds latency). Until sizes differ enough to separate the
    two terms, the whole cost counts as fixed: a new model gets the benefit of the doubt, and the
    first batches of other sizes correct it.
    """

    def __init__(self, max_size: int, max_wait_s: float, smoothing: float = SMOOTHING) -> None:
        if max_size < 1:
            raise ValueError("max_size must be >= 1")
        if max_wait_s < 0:
            raise ValueError("max_wait must be >= 0")
        if not 0 < smoothing <= 1:
            raise ValueError("smoothing must be in (0, 1]")
        self.max_size = max_size
        self.max_wait = max_wait_s
        self._keep = 1.0 - smoothing
        self._smoothing = smoothing
        # exponentially weighted sums: weight, size, seconds, size^2, size*seconds
        self._w = self._n = self._t = self._nn = self._nt = 0.0
        self._gap: float | None = None
        self._last_arrival: float | None = None
        self._overlap = 0.0

    # -- observations ---------------------------------------------------------------------------
    def observe_batch(self, size: int, seconds: float) -> None:
        """One call of the model: ``size`` inputs took ``seconds``."""
        if size < 1 or seconds < 0:
            return
        keep = self._keep
        self._w = self._w * keep + 1.0
        self._n = self._n * keep + size
        self._t = self._t * keep + seconds
        self._nn = self._nn * keep + size * size
        self._nt = self._nt * keep + size * seconds

    def observe_arrival(self, now: float, busy: bool = False) -> None:
        """A request reached the batcher at ``now`` (any monotonic clock, in seconds); ``busy``:
        it found a batch already being collected or run.

        Gaps longer than twice ``max_wait`` are recorded as that: beyond it the decision is the
        same (do not wait), and an idle night must not keep the estimate high for long after.
        """
        self._overlap += self._smoothing * ((1.0 if busy else 0.0) - self._overlap)
        last, self._last_arrival = self._last_arrival, now
        if last is None:
            return
        gap = min(max(now - last, 0.0), 2.0 * self.max_wait)
        self._gap = gap if self._gap is None else self._gap + self._smoothing * (gap - self._gap)

    # -- estimates ------------------------------------------------------------------------------
    @property
    def arrival_gap(self) -> float | None:
        """Smoothed seconds between arrivals; ``None`` before the second arrival."""
        return self._gap

    @property
    def overlap(self) -> float:
        """Smoothed share of arrivals that found a batch in progress (0 = always alone)."""
        return self._overlap

    @property
    def mean_batch_seconds(self) -> float | None:
        return None if self._w == 0 else self._t / self._w

    @property
    def fixed_cost(self) -> float | None:
        """The part of a call's time that does not grow with its size; ``None`` before any call.

        Always within ``[0, mean call time]``: noise never makes it negative or larger than what
        was measured.
        """
        if self._w == 0:
            return None
        mean_t = self._t / self._w
        spread = self._w * self._nn - self._n * self._n
        if spread <= 1e-9 * self._w * self._nn:
            return mean_t  # one size only: cannot tell fixed from per-item, assume fixed
        per_item = (self._w * self._nt - self._n * self._t) / spread
        fixed = (self._t - per_item * self._n) / self._w
        return min(max(fixed, 0.0), mean_t)

    # -- the decision ---------------------------------------------------------------------------
    def next_wait(self, size: int, waited: float) -> float:
        """Seconds to wait for one more request before running ``size`` inputs; 0 = run now.

        ``waited`` is how long this batch has already waited; the total never exceeds
        ``max_wait``.
        """
        if size >= self.max_size:
            return 0.0  # full: run at once
        budget = self.max_wait - waited
        gap = self._gap
        if self._overlap < OVERLAP_TO_WAIT:
            return 0.0  # requests have been coming one at a time: nothing else is in flight
        if budget <= 0 or gap is None or self._w == 0:
            return 0.0  # nothing measured yet: the first call runs at once and teaches the cost
        mean_t = self._t / self._w
        if mean_t < MIN_WAIT_S or gap >= mean_t:
            return 0.0  # the cheap exit (a trivial model's every request): fixed <= mean_t
        fixed = self.fixed_cost
        assert fixed is not None
        limit = min(fixed, budget)
        if limit < MIN_WAIT_S or gap >= limit:
            return 0.0  # the next request is not expected while waiting would still pay
        return limit


class _Request:
    """One caller's input, its own Future, and the lock it sleeps on while it follows."""

    __slots__ = ("future", "item", "wake")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.future: Future[Any] = Future()
        self.wake = threading.Lock()
        self.wake.acquire()  # released once: when its output is set, or when it is made leader


class MicroBatcher:
    """Collects inputs from many threads into batches for one ``predict(list) -> list`` call.

    No thread of its own (nothing to restart after fork): the callers run the batches, one batch
    at a time, in arrival order (see the module docstring).
    """

    def __init__(self, predict: BatchPredict, *, max_size: int, max_wait_ms: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_size < 1:
            raise ValueError("max_size must be >= 1")
        self._predict = predict
        self._max_size = max_size
        self._clock = clock
        self.window = BatchWindow(max_size, max_wait_ms / 1000.0)
        """The adaptive window (its estimates are readable for logs and tests)."""
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._pending: deque[_Request] = deque()
        self._busy = False  # a leader is collecting or running a batch; nobody queues otherwise
        self._leader_waiting = False
        self.batches = 0
        """How many batches ran (for logs and tests)."""
        self.waited_batches = 0
        """How many of them waited for more requests before running."""

    def predict(self, item: Any) -> Any:
        """Predict one input as part of a batch; blocks until its own output is ready."""
        with self._lock:
            self.window.observe_arrival(self._clock(), self._busy)
            if not self._busy and self.window.next_wait(1, 0.0) <= 0:
                # Nobody leads, so nobody queues, and the window is closed: this request is a
                # batch of one, run now on this thread (no Future, no hand-off: nothing to cross).
                self._busy = True
                request = None
            else:
                request = _Request(item)
                self._pending.append(request)
                lead = not self._busy
                if lead:
                    self._busy = True
                elif self._leader_waiting:
                    self._arrived.notify()
        if request is None:
            return self._run_alone(item)
        if not lead:
            request.wake.acquire()  # until our output is set, or the lead passes to us
            lead = not request.future.done()
        if lead:
            self._lead()
        return request.future.result()

    def _run_alone(self, item: Any) -> Any:
        observed: tuple[int, float] | None = None
        try:
            outputs, elapsed = self._call([item])
            observed = (1, elapsed)
            return outputs[0]
        finally:
            self._pass_lead(observed)

    def _lead(self) -> None:
        """Run one batch, which holds the leader's own request (it is the oldest pending one),
        then pass the lead on."""
        observed: tuple[int, float] | None = None
        try:
            batch = self._collect()
            try:
                outputs, elapsed = self._call([request.item for request in batch])
            except BaseException as exc:  # noqa: BLE001 - delivered to every waiting request
                self._fail(batch, exc)
                return
            observed = (len(batch), elapsed)
            for request, output in zip(batch, outputs):
                request.future.set_result(output)
                request.wake.release()
        finally:
            self._pass_lead(observed)

    def _pass_lead(self, observed: tuple[int, float] | None) -> None:
        """Record the batch's cost; wake the oldest follower to lead, or end the lead."""
        with self._lock:
            if observed is not None:
                self.window.observe_batch(*observed)
            successor = self._pending[0] if self._pending else None
            if successor is None:
                self._busy = False
        if successor is not None:
            successor.wake.release()

    def _take(self, count: int, batch: list[_Request]) -> None:
        pending = self._pending
        while pending and count > 0:
            batch.append(pending.popleft())
            count -= 1

    def _collect(self) -> list[_Request]:
        """The oldest pending requests, after the window's wait (if any); never empty."""
        batch: list[_Request] = []
        with self._lock:
            self._take(self._max_size, batch)
            started: float | None = None
            waited = 0.0
            try:
                while (wait := self.window.next_wait(len(batch), waited)) > 0:
                    if started is None:
                        started = self._clock()
                        self.waited_batches += 1
                    self._leader_waiting = True
                    try:
                        self._arrived.wait(wait)
                    finally:
                        self._leader_waiting = False
                    before = len(batch)
                    self._take(self._max_size - len(batch), batch)
                    if len(batch) == before:
                        break  # nothing came within the window: run what we have
                    waited = self._clock() - started
            except BaseException as exc:  # taken requests must not hang: fail them, re-raise
                self._fail(batch, exc)
                raise
        return batch

    @staticmethod
    def _fail(batch: list[_Request], exc: BaseException) -> None:
        for request in batch:
            if not request.future.done():
                request.future.set_exception(exc)
            request.wake.release()

    def _call(self, inputs: list[Any]) -> tuple[list[Any], float]:
        """The user's batch call, checked: one output per input, or a loud failure."""
        self.batches += 1
        started = time.perf_counter()
        result = self._predict(inputs)
        elapsed = time.perf_counter() - started
        try:
            outputs = list(result)
        except TypeError as exc:
            raise UserCodeFailed("batch_predict_fn", TypeError(
                f"must return a list, returned {type(result).__name__}")) from exc
        if len(outputs) != len(inputs):
            raise UserCodeFailed("batch_predict_fn", ValueError(
                f"returned {len(outputs)} outputs for {len(inputs)} inputs"))
        return outputs, elapsed
