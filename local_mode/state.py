"""Where local jobs live, so that any process (the creator, the runner, the CLI) sees the same job.

Layout under the state directory::

    training-jobs/<name>/description.json   what describe_training_job returns (+ private keys)
    training-jobs/<name>/request.json       the validated CreateTrainingJob request
    training-jobs/<name>/logs/<host>.log    each host's output, line by line
    training-jobs/<name>/metrics.jsonl      every metric point parsed from the logs
    training-jobs/<name>/runner.pid         the runner process while it runs
    training-jobs/<name>/work/              per-host /opt/ml trees (removed when the job ends)

Writes are atomic (temp file + rename) and read-modify-write updates hold an exclusive lock, so a
describe never sees half a file and a stop request never races a status change.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from local_mode.errors import ResourceInUse, ResourceNotFound
from toolkit.pids import pid_alive

KINDS = ("training-jobs", "processing-jobs", "models", "endpoint-configs", "endpoints",
         "transform-jobs")
RUNNER_START_GRACE = 60.0
"""Seconds a new resource's runner has to write its pid file before it counts as lost."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    raise TypeError(f"cannot store {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "__datetime__" in obj:
        return datetime.fromisoformat(obj["__datetime__"])
    return obj


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, default=_encode, indent=1)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle, object_hook=_decode)


@dataclass(frozen=True)
class ResourceDir:
    """The folder of one named resource (a training job, an endpoint, ...)."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def description_file(self) -> Path:
        return self.path / "description.json"

    @property
    def request_file(self) -> Path:
        return self.path / "request.json"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def pid_file(self) -> Path:
        return self.path / "runner.pid"

    @property
    def work_dir(self) -> Path:
        return self.path / "work"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    def describe(self) -> dict[str, Any]:
        return read_json(self.description_file)

    def request(self) -> dict[str, Any]:
        return read_json(self.request_file)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self.lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def update(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``change`` to the description under the lock; returns the new description."""
        with self.locked():
            description = self.describe()
            change(description)
            description["LastModifiedTime"] = now()
            write_json_atomic(self.description_file, description)
            return description

    def runner_lost(self, created: datetime) -> bool:
        """The resource's runner died without finishing (kill -9, reboot), or never wrote its
        pid file within :data:`RUNNER_START_GRACE` of ``created``: describe must say so rather
        than report the resource in progress forever."""
        pid = self.runner_pid()
        if pid is None:
            return (now() - created).total_seconds() > RUNNER_START_GRACE
        return not pid_alive(pid)

    def runner_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None


class StateStore:
    """All local resources under one directory."""

    def __init__(self, root: Path) -> None:
        # absolute: the runner and every host process run with other working directories
        self.root = Path(root).absolute()

    def _kind_dir(self, kind: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"unknown resource kind {kind!r}")
        return self.root / kind

    def create(self, kind: str, name: str, description: dict[str, Any],
               request: dict[str, Any]) -> ResourceDir:
        """Create a resource; ResourceInUse when the name is taken (as the service says)."""
        parent = self._kind_dir(kind)
        parent.mkdir(parents=True, exist_ok=True)
        path = parent / name
        try:
            path.mkdir()
        except FileExistsError:
            raise ResourceInUse(f"{kind[:-1].replace('-', ' ')} {name!r} already exists",
                                "Create") from None
        resource = ResourceDir(path)
        write_json_atomic(resource.request_file, request)
        write_json_atomic(resource.description_file, description)
        return resource

    def get(self, kind: str, name: str) -> ResourceDir:
        path = self._kind_dir(kind) / name
        if not (path / "description.json").is_file():
            raise ResourceNotFound(f"{kind[:-1].replace('-', ' ')} {name!r} does not exist",
                                   "Describe")
        return ResourceDir(path)

    def list(self, kind: str) -> list[ResourceDir]:
        parent = self._kind_dir(kind)
        if not parent.is_dir():
            return []
        return [ResourceDir(p) for p in sorted(parent.iterdir())
                if (p / "description.json").is_file()]

    def delete(self, kind: str, name: str) -> None:
        resource = self.get(kind, name)
        shutil.rmtree(resource.path, ignore_errors=True)
