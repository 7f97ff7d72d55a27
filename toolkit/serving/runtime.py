"""Per-process serving state: the handlers, the model(s), readiness, and the batcher.

One :class:`ServingRuntime` is built in the gunicorn master; forked workers inherit it. With
``OPTML_PRELOAD_MODEL`` (the default) the model is loaded in the master before fork and shared
copy-on-write; otherwise each worker loads its own copy right after fork and accepts no
connection until it is ready, so a /ping 200 from one worker never invites a request that
another, still loading, would answer 503.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.serving.batching import MicroBatcher
from toolkit.serving.codecs import CodecRegistry
from toolkit.serving.context import LoadContext
from toolkit.serving.errors import ServiceUnavailable, UserCodeFailed
from toolkit.serving.handlers import HandlerSet
from toolkit.serving.multimodel import ModelRegistry, WorkerModels
from toolkit.serving.negotiation import Negotiator
from toolkit.serving.pipeline import Pipeline

log = logging.getLogger("optml.serving")

LOAD_HEARTBEAT_SECONDS = 1.0
"""How often a worker loading its model tells the gunicorn master it is alive."""


def describe_failure(exc: BaseException) -> str:
    cause = exc.cause if isinstance(exc, UserCodeFailed) else exc
    where = f"{exc.handler} raised " if isinstance(exc, UserCodeFailed) else ""
    return f"{where}{type(cause).__name__}: {cause}"


@dataclass(frozen=True)
class ExecutionDefaults:
    """What ``GET /execution-parameters`` answers when the user has no hook."""

    max_concurrent_transforms: int
    batch_strategy: str
    max_payload_mb: int

    def as_json(self) -> dict[str, Any]:
        return {"MaxConcurrentTransforms": self.max_concurrent_transforms,
                "BatchStrategy": self.batch_strategy, "MaxPayloadInMB": self.max_payload_mb}


class ServingRuntime:
    """Everything a request needs, shared by the Flask routes of one process."""

    def __init__(self, *, handlers: HandlerSet, codecs: CodecRegistry, model_dir: Path,
                 default_accept: str | None, max_payload_mb: int, debug_errors: bool,
                 execution: ExecutionDefaults, registry: ModelRegistry | None = None) -> None:
        self.handlers = handlers
        self.codecs = codecs
        self.model_dir = model_dir
        self.default_accept = default_accept
        self.max_payload_mb = max_payload_mb
        self.debug_errors = debug_errors
        self.execution = execution
        self.model: Any = None
        self.ready = threading.Event()
        self.failure: str | None = None
        self.models = WorkerModels(registry, self._load_named) if registry is not None else None
        self.pipeline = Pipeline(handlers)
        """The handler chain with its calls prepared once (see :class:`Pipeline`)."""
        self._batcher: MicroBatcher | None = None
        self._batcher_lock = threading.Lock()
        self._negotiator: Negotiator | None = None
        self._negotiator_version = -1
        if self.models is not None:
            self.ready.set()  # multi-model: serving needs no model, only handlers

    # -- loading -----------------------------------------------------------------------------
    def load_model(self) -> None:
        """Run ``model_fn(model_dir)`` here, now; raises what it raises (wrapped)."""
        self.model = self.handlers.model_fn(str(self.model_dir),
                                            context=LoadContext(self.model_dir))
        self.ready.set()

    def _load_named(self, name: str, path: Path) -> Any:
        return self.handlers.model_fn(str(path), context=LoadContext(path, name))

    def fail(self, exc: BaseException) -> None:
        """Record a fatal load error: logged once, clearly, and /ping answers 503 forever."""
        self.failure = describe_failure(exc)
        log.error("model failed to load in process %d: %s; /ping answers 503 until the "
                  "server is stopped", os.getpid(), self.failure,
                  exc_info=exc.cause if isinstance(exc, UserCodeFailed) else exc)
        sys.stderr.flush()

    def after_fork(self, heartbeat: Callable[[], None] = lambda: None) -> None:
        """Called in each worker after fork, before it accepts: start what cannot cross a fork
        (threads) and, without preload, load this worker's model.

        The worker accepts nothing until its model is loaded (or has failed, which /ping then
        reports): workers share one listening socket, so a worker that accepted while loading
        would answer 503 to requests that a loaded worker's /ping 200 had invited. Meanwhile
        ``heartbeat`` (gunicorn's) keeps the master from taking a long load for a hung worker.
        """
        if self.models is not None:
            self.models.start()
        elif not self.ready.is_set() and self.failure is None:
            loader = threading.Thread(target=self._load_in_background, name="optml-model-load",
                                      daemon=True)
            loader.start()
            while loader.is_alive():
                heartbeat()
                loader.join(LOAD_HEARTBEAT_SECONDS)

    def _load_in_background(self) -> None:
        try:
            self.load_model()
        except BaseException as exc:  # noqa: BLE001 - reported through /ping, never raised
            self.fail(exc)
        else:
            log.info("worker %d loaded the model", os.getpid())

    # -- serving -----------------------------------------------------------------------------
    def current_model(self) -> Any:
        if self.failure is not None:
            raise ServiceUnavailable(f"the model failed to load: {self.failure}")
        if not self.ready.is_set():
            raise ServiceUnavailable("the model is still loading")
        return self.model

    @property
    def negotiator(self) -> Negotiator:
        """Content-Type check and Accept negotiation, cached per header pair; rebuilt when a
        codec is registered after start-up (the cache would otherwise answer from old types)."""
        negotiator = self._negotiator
        if negotiator is None or self._negotiator_version != self.codecs.version:
            handlers = self.handlers
            toolkit_input = handlers.input_fn is not None and handlers.input_fn.origin == "toolkit"
            negotiator = Negotiator(None if handlers.custom_output else self.codecs.encodable,
                                    default=self.default_accept,
                                    decodable=self.codecs.decodable if toolkit_input else None)
            self._negotiator, self._negotiator_version = negotiator, self.codecs.version
        return negotiator

    def batcher(self, model: Any) -> MicroBatcher | None:
        """This process's micro-batcher (single-model mode with ``batch_predict_fn`` only)."""
        if self._batcher is not None:
            return self._batcher  # the common case: no lock once it exists
        handler = self.handlers.batch_predict_fn
        if handler is None or self.models is not None:
            return None
        with self._batcher_lock:
            if self._batcher is None:
                call = handler.bind()  # specialised once, as the pipeline's handlers are
                self._batcher = MicroBatcher(lambda inputs: call(inputs, model, None),
                                             max_size=self.handlers.batch_max_size,
                                             max_wait_ms=self.handlers.batch_max_wait_ms)
            return self._batcher
