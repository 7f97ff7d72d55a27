"""Optional micro-batching: concurrent requests in one worker predicted together.

A model that is much faster on a batch than on N single rows (most vectorised models) can define
``batch_predict_fn(inputs, model) -> outputs``. Request threads decode their own input, hand it to
the worker's batcher and wait for their own output; one batcher thread collects up to
``batch_max_size`` inputs, waiting at most ``batch_max_wait_ms`` after the first, and calls the
user once. Each request gets the output at its own index: a Future per request makes a crossed
answer impossible by construction, and a length mismatch fails the whole batch loudly.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from toolkit.serving.errors import UserCodeFailed

BatchPredict = Callable[[list[Any]], Any]


class MicroBatcher:
    """Collects inputs from many threads into batches for one ``predict(list) -> list`` call."""

    def __init__(self, predict: BatchPredict, *, max_size: int, max_wait_ms: float) -> None:
        if max_size < 1:
            raise ValueError("max_size must be >= 1")
        self._predict = predict
        self._max_size = max_size
        self._max_wait = max_wait_ms / 1000.0
        self._queue: queue.SimpleQueue[tuple[Any, Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        """How many batches ran (for logs and tests)."""

    def _ensure_thread(self) -> None:
        # Started on first use, never at construction: the batcher may be built in the gunicorn
        # master, and a thread does not survive fork.
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="optml-batcher",
                                                daemon=True)
                self._thread.start()

    def predict(self, item: Any) -> Any:
        """Predict one input as part of a batch; blocks until its own output is ready."""
        future: Future[Any] = Future()
        self._ensure_thread()
        self._queue.put((item, future))
        return future.result()

    def _collect(self) -> list[tuple[Any, Future[Any]]]:
        batch = [self._queue.get()]
        deadline = time.monotonic() + self._max_wait
        while len(batch) < self._max_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=remaining) if remaining > 0
                             else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            self._execute(self._collect())

    def _execute(self, batch: list[tuple[Any, Future[Any]]]) -> None:
        self.batches += 1
        inputs = [item for item, _ in batch]
        try:
            result = self._predict(inputs)
            try:
                outputs = list(result)
            except TypeError as exc:
                raise UserCodeFailed("batch_predict_fn", TypeError(
                    f"must return a list, returned {type(result).__name__}")) from exc
            if len(outputs) != len(inputs):
                raise UserCodeFailed("batch_predict_fn", ValueError(
                    f"returned {len(outputs)} outputs for {len(inputs)} inputs"))
        except BaseException as exc:  # noqa: BLE001 - delivered to every waiting request
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), output in zip(batch, outputs):
            future.set_result(output)
