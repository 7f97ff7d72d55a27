"""Multi-model endpoints, consistent across every gunicorn worker.

Workers are separate processes, so "which models are loaded" lives on disk, in a run-time
directory the master creates before forking::

    <run_dir>/models/<quoted name>.json   {"model_name", "url", "load_id"}, one per loaded model
    <run_dir>/generation                  an integer, bumped (atomically) on every load/unload
    <run_dir>/lock                        flock'd around each change
    <run_dir>/acks/<pid>                  the generation each worker has applied

A worker compares ``generation`` with the one it last applied before serving any model request
(one small read) and in a background thread every 100 ms; on a change it drops the models that
are gone (freeing their memory) and records its ack. A model loaded through one worker is loaded
lazily by the others on their first request for it. ``DELETE`` returns once every live worker has
acknowledged the unload (bounded wait), so memory is free in all of them when the platform sees
200. No master-side manager is needed, which keeps gunicorn's master free of user code.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from toolkit.pids import pid_alive
from toolkit.serving.errors import BadRequest, Conflict, NotFound

log = logging.getLogger("optml.serving")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+=-]{0,255}")
SYNC_INTERVAL = 0.1
ACK_TIMEOUT = 10.0


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name.split("/"):
        raise BadRequest(f"model_name {name!r} is invalid: use letters, digits and . _ - / + = "
                         "(at most 256 characters, no '..' segments)")
    return name


@dataclass(frozen=True)
class Entry:
    model_name: str
    url: str
    load_id: str


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class ModelRegistry:
    """The shared, on-disk record of loaded models (see the module docstring)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._models = run_dir / "models"
        self._acks = run_dir / "acks"
        self._generation = run_dir / "generation"
        self._lock = run_dir / "lock"

    def create(self) -> ModelRegistry:
        self._models.mkdir(parents=True, exist_ok=True)
        self._acks.mkdir(parents=True, exist_ok=True)
        self._lock.touch()
        if not self._generation.exists():
            _atomic_write(self._generation, "0")
        return self

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with open(self._lock, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def generation(self) -> int:
        try:
            return int(self._generation.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def _bump(self) -> int:
        generation = self.generation() + 1
        _atomic_write(self._generation, str(generation))
        return generation

    def _path(self, name: str) -> Path:
        return self._models / f"{quote(name, safe='')}.json"

    def entries(self) -> dict[str, Entry]:
        found = {}
        for path in self._models.glob("*.json"):
            try:
                data = json.loads(path.read_text())
                entry = Entry(data["model_name"], data["url"], data["load_id"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # removed meanwhile, or a partial file of a crashed writer
            found[entry.model_name] = entry
        return dict(sorted(found.items()))

    def get(self, name: str) -> Entry | None:
        try:
            data = json.loads(self._path(name).read_text())
        except (OSError, ValueError):
            return None
        return Entry(data["model_name"], data["url"], data["load_id"])

    def add(self, entry: Entry) -> int:
        with self.locked():
            if self._path(entry.model_name).exists():
                raise Conflict(f"model {entry.model_name!r} is already loaded")
            _atomic_write(self._path(entry.model_name), json.dumps(asdict(entry)))
            return self._bump()

    def remove(self, name: str) -> int:
        with self.locked():
            try:
                self._path(name).unlink()
            except FileNotFoundError:
                raise NotFound(f"model {name!r} is not loaded") from None
            return self._bump()

    def ack(self, pid: int, generation: int) -> None:
        _atomic_write(self._acks / str(pid), str(generation))

    def forget_worker(self, pid: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self._acks / str(pid)).unlink()

    def pending_workers(self, generation: int) -> list[int]:
        """Live workers that have not yet applied ``generation``."""
        pending = []
        for path in self._acks.iterdir():
            if not path.name.isdigit():
                continue
            pid = int(path.name)
            try:
                applied = int(path.read_text() or 0)
            except (OSError, ValueError):
                continue
            if applied < generation and pid_alive(pid):
                pending.append(pid)
        return pending


Loader = Callable[[str, Path], Any]


class WorkerModels:
    """This worker's copies of the registry's models, kept in step with the registry."""

    def __init__(self, registry: ModelRegistry, loader: Loader) -> None:
        self.registry = registry
        self._loader = loader
        self._models: dict[str, tuple[str, Any]] = {}
        self._lock = threading.RLock()
        self._name_locks: dict[str, threading.Lock] = {}
        self._applied = -1
        self._thread: threading.Thread | None = None

    # -- keeping in step ---------------------------------------------------------------------
    def sync(self) -> None:
        """Apply the registry's current generation: drop models that were unloaded or replaced."""
        generation = self.registry.generation()
        if generation == self._applied:
            return
        entries = self.registry.entries()
        with self._lock:
            dropped = [name for name, (load_id, _) in self._models.items()
                       if name not in entries or entries[name].load_id != load_id]
            for name in dropped:
                del self._models[name]
            self._applied = max(self._applied, generation)
        if dropped:
            gc.collect()
            log.info("worker %d unloaded %s", os.getpid(), ", ".join(dropped))
        self.registry.ack(os.getpid(), generation)

    def start(self) -> None:
        """Register this worker and poll the registry (call after fork)."""
        self.sync()
        self._thread = threading.Thread(target=self._poll, name="optml-models", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while True:
            time.sleep(SYNC_INTERVAL)
            try:
                self.sync()
            except OSError:
                log.exception("model registry sync failed")

    # -- the /models operations --------------------------------------------------------------
    def load(self, name: str, url: str) -> Entry:
        check_model_name(name)
        path = Path(url)
        if not path.is_dir():
            raise NotFound(f"model {name!r}: url {url!r} is not a directory")
        if self.registry.get(name) is not None:
            raise Conflict(f"model {name!r} is already loaded")
        model = self._loader(name, path)
        entry = Entry(name, url, uuid.uuid4().hex)
        self.registry.add(entry)  # 409 if another worker won a race meanwhile
        with self._lock:
            self._models[name] = (entry.load_id, model)
        self.sync()
        return entry

    def unload(self, name: str) -> None:
        generation = self.registry.remove(name)
        self.sync()
        deadline = time.monotonic() + ACK_TIMEOUT
        while self.registry.pending_workers(generation):
            if time.monotonic() > deadline:
                log.warning("unload of %s: workers %s did not acknowledge within %.0f s", name,
                            self.registry.pending_workers(generation), ACK_TIMEOUT)
                break
            time.sleep(SYNC_INTERVAL / 4)

    def get(self, name: str) -> Any:
        """The model for ``name`` in this worker, loading it here on first use (404 if unknown)."""
        self.sync()
        entry = self.registry.get(name)
        if entry is None:
            raise NotFound(f"model {name!r} is not loaded")
        with self._lock:
            local = self._models.get(name)
            if local is not None and local[0] == entry.load_id:
                return local[1]
            name_lock = self._name_locks.setdefault(name, threading.Lock())
        with name_lock:
            with self._lock:
                local = self._models.get(name)
                if local is not None and local[0] == entry.load_id:
                    return local[1]
            model = self._loader(name, Path(entry.url))
            with self._lock:
                self._models[name] = (entry.load_id, model)
            return model

    def local_names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)
