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

The directory is private: a stored request's ``Environment`` may carry secrets, so every
directory the store creates is 0700 and every file it writes 0600, whatever the process umask
(:func:`make_private_dir`, :func:`open_private`). Opening an existing state directory (one
that holds a kind directory) tightens its root and kind directories to 0700; any other existing
directory is left as it is (:meth:`StateStore._tighten`).

Names come from users (CLI arguments, request members, URL paths), so the store only ever builds
``<root>/<kind>/<name>`` for a name the service would accept for that kind (:data:`NAME_RULES`):
nothing such as ``../models/x`` can reach outside ``<root>/<kind>/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from local_mode.errors import ResourceInUse, ResourceNotFound, ValidationException
from toolkit.pids import pid_alive

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

KINDS = ("training-jobs", "processing-jobs", "models", "endpoint-configs", "endpoints",
         "transform-jobs")


@dataclass(frozen=True)
class NameRule:
    """What the service accepts as the name of one kind of resource: botocore's shape for the
    member (``member``), its pattern (matched whole, as the service does) and maximum length."""

    member: str
    pattern: str
    max_length: int

    def accepts(self, name: str) -> bool:
        return len(name) <= self.max_length and re.fullmatch(self.pattern, name) is not None


_JOB_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
NAME_RULES: dict[str, NameRule] = {
    "training-jobs": NameRule("TrainingJobName", _JOB_NAME, 63),
    "processing-jobs": NameRule("ProcessingJobName", _JOB_NAME, 63),
    "transform-jobs": NameRule("TransformJobName", _JOB_NAME, 63),
    "endpoints": NameRule("EndpointName", _JOB_NAME, 63),
    "endpoint-configs": NameRule("EndpointConfigName", _JOB_NAME, 63),
    "models": NameRule("ModelName", r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?", 63),
}
"""Each kind's names, as botocore's sagemaker model gives them for the Create, Describe and
Delete operations (the same shape for all three; ``tests/unit/test_state_names.py`` holds this
table to the model). Written out rather than read from botocore: runners open a store too, and
loading the service model costs them a noticeable fraction of a second."""
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


def make_private_dir(path: Path) -> None:
    """``mkdir -p`` in which every directory created here is 0700, whatever the umask.

    ``Path.mkdir(parents=True)`` gives the parents it creates the umask's default mode, and the
    umask cuts ``mode`` too, hence one mkdir per missing level and a chmod of each one made here.
    Directories that already exist are left as they are."""
    missing = []
    current = Path(path)
    while not current.is_dir() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # made by a concurrent process, with this same function
        directory.chmod(PRIVATE_DIR_MODE)


def open_private(path: Path, flags: int) -> int:
    """``os.open`` with ``O_CREAT``: a file created here is 0600, whatever the umask, and an
    existing file with looser permissions is tightened to 0600."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o777 != PRIVATE_FILE_MODE:
            os.fchmod(fd, PRIVATE_FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def append_private(path: Path) -> BinaryIO:
    """``path`` opened for binary appending, created 0600 (log files under the state directory)."""
    return os.fdopen(open_private(path, os.O_WRONLY | os.O_APPEND), "ab")


def write_json_atomic(path: Path, data: Any) -> None:
    make_private_dir(path.parent)
    # mkstemp creates the file 0600 (owner only) and os.replace keeps that mode
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
    def capacity_request_file(self) -> Path:
        """UpdateEndpointWeightsAndCapacities' request, until the endpoint's runner applies it
        (:mod:`local_mode.endpoints.weights`)."""
        return self.path / "capacity-request.json"

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
        with os.fdopen(open_private(self.lock_file, os.O_WRONLY | os.O_APPEND), "ab") as handle:
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


Described = list[tuple[ResourceDir, dict[str, Any]]]
"""Resources with their descriptions (:meth:`StateStore.descriptions`)."""


class StateStore:
    """All local resources under one directory."""

    def __init__(self, root: Path) -> None:
        # absolute: the runner and every host process run with other working directories
        self.root = Path(root).absolute()
        self._tighten()

    def _tighten(self) -> None:
        """A state directory made before it was private (or by hand) gets its root and kind
        directories set to 0700; that closes everything below them to other users.

        Only a directory that is evidently a state directory (it holds at least one kind
        directory) is touched: ``--state-dir`` may name any directory, shell completion and
        read-only commands open it too, and an unrelated directory must keep its mode. Only
        directories this user owns are changed, and nothing is created here (a store that is
        only read, such as ``optml local list`` on a new machine, leaves no directory behind);
        what the store creates later is made 0700 by :func:`make_private_dir`."""
        kinds = [self.root / kind for kind in KINDS]
        if not any(directory.is_dir() for directory in kinds):
            return  # not (yet) a state directory: whatever it is, it is not ours to change
        # the root as named (it may be a symlink to where the state lives); a kind directory
        # only when it is one, not a symlink to somewhere else
        for directory, follow in ((self.root, True), *((kind, False) for kind in kinds)):
            info = _own_dir(directory, follow=follow)
            if info is not None and info.st_mode & 0o777 != PRIVATE_DIR_MODE:
                directory.chmod(PRIVATE_DIR_MODE)

    def _kind_dir(self, kind: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"unknown resource kind {kind!r}")
        return self.root / kind

    def _path(self, kind: str, name: str) -> Path | None:
        """``<root>/<kind>/<name>``, or None when ``name`` is not a name the service accepts
        for ``kind``: such a resource cannot exist, and its path might lie anywhere (``..``,
        ``/``, NUL). The one place the store turns a name into a path."""
        parent = self._kind_dir(kind)
        if not isinstance(name, str) or not NAME_RULES[kind].accepts(name):
            return None
        return parent / name

    def _not_found(self, kind: str, name: str) -> ResourceNotFound:
        return ResourceNotFound(f"{_noun(kind)} {name!r} does not exist", "Describe")

    def create(self, kind: str, name: str, description: dict[str, Any],
               request: dict[str, Any]) -> ResourceDir:
        """Create a resource; ResourceInUse when the name is taken (as the service says),
        ValidationException when the service would refuse the name."""
        path = self._path(kind, name)
        if path is None:
            rule = NAME_RULES[kind]
            raise ValidationException(f"Value {name!r} at '{rule.member}' must match pattern "
                                      f"{rule.pattern} (at most {rule.max_length} characters)",
                                      "Create")
        make_private_dir(path.parent)
        try:
            path.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            raise ResourceInUse(f"{_noun(kind)} {name!r} already exists", "Create") from None
        path.chmod(PRIVATE_DIR_MODE)
        resource = ResourceDir(path)
        write_json_atomic(resource.request_file, request)
        write_json_atomic(resource.description_file, description)
        return resource

    def get(self, kind: str, name: str) -> ResourceDir:
        """The resource; ResourceNotFound when it does not exist (or its name could not be)."""
        path = self._path(kind, name)
        if path is None or not (path / "description.json").is_file():
            raise self._not_found(kind, name)
        return ResourceDir(path)

    def list(self, kind: str) -> list[ResourceDir]:
        """Every resource of ``kind``, by name. One may be deleted at any moment after this
        returns: to read descriptions, use :meth:`descriptions`."""
        parent = self._kind_dir(kind)
        try:
            entries = sorted(parent.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        rule = NAME_RULES[kind]
        return [ResourceDir(p) for p in entries
                if rule.accepts(p.name) and (p / "description.json").is_file()]

    def descriptions(self, kind: str) -> Described:
        """Every resource of ``kind`` with its description, by name, leaving out any deleted
        between listing and reading (a concurrent ``rm``, ``prune`` or Delete operation): what
        every List operation reads, so that none fails because something else deleted."""
        found = []
        for resource in self.list(kind):
            try:
                description = resource.describe()
            except (FileNotFoundError, NotADirectoryError):
                continue  # deleted since it was listed
            found.append((resource, description))
        return found

    def delete(self, kind: str, name: str) -> None:
        """Forget a resource; ResourceNotFound when it does not exist."""
        resource = self.get(kind, name)
        shutil.rmtree(resource.path, ignore_errors=True)


def _noun(kind: str) -> str:
    return kind[:-1].replace("-", " ")


def _own_dir(path: Path, *, follow: bool) -> os.stat_result | None:
    """``path``'s status when it is a directory this user owns (a symlink counts only when
    ``follow``), else None."""
    try:
        info = path.stat() if follow else path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return info if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() else None
