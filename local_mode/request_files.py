"""Request files: a service request (CreateTrainingJob, CreateTransformJob, ...) kept as JSON or
YAML, as ``optml local train``, ``optml local transform`` and ``optml check --job`` read them.

Reading one is where user input first meets the code, so every way it can be wrong (missing,
unreadable, not text, not JSON/YAML, not one object) is one :class:`RequestFileError` whose
message names the file and says what is wrong (with the line and column of a syntax error). What
the request *says* is checked later, by the client, against the service's model.

A request file names local data and code relative to *itself*: every member of
:data:`PATH_MEMBERS` that holds a relative ``file://`` URI (``file://./data``, ``file://data``,
``file:data``) -- or, where local mode takes a bare path, a relative path (``./code``) -- is made
absolute against the directory of the file when it is loaded, so the request the client gets (and
the job keeps) names the same files whichever directory the command was run from. Programmatic
client calls are not rewritten: there a ``file://`` URI must be absolute and a bare relative code
path is passed on as it is (the toolkit reads it in the host's working directory).
"""

from __future__ import annotations

import copy
import json
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

YAML_SUFFIXES = frozenset({".yaml", ".yml"})
"""A file with one of these suffixes is YAML; any other is JSON."""


class RequestFileError(ValueError):
    """A request file that cannot be used; ``str()`` is ``"<path>: <what is wrong>"``."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class PathMember:
    """A request member that names data or code on this machine when it is local.

    ``path`` is the member's place in the request: names joined by dots, ``[]`` after a list
    (``InputDataConfig[].DataSource.S3DataSource.S3Uri``). ``bare``: a path without a scheme
    names a local file here (the toolkit's code source); elsewhere only ``file://`` does.
    ``encoded``: the value may be JSON-encoded, as SDKs send hyperparameters (``"\"./code\""``).
    """

    path: str
    bare: bool = False
    encoded: bool = False


PATH_MEMBERS: tuple[PathMember, ...] = (
    # CreateTrainingJob (and optml check --job)
    PathMember("InputDataConfig[].DataSource.S3DataSource.S3Uri"),
    PathMember("OutputDataConfig.S3OutputPath"),
    PathMember("CheckpointConfig.S3Uri"),
    PathMember("HyperParameters.sagemaker_submit_directory", bare=True, encoded=True),
    PathMember("Environment.SAGEMAKER_SUBMIT_DIRECTORY", bare=True),
    # CreateProcessingJob
    PathMember("ProcessingInputs[].S3Input.S3Uri"),
    PathMember("ProcessingOutputConfig.Outputs[].S3Output.S3Uri"),
    # CreateTransformJob
    PathMember("TransformInput.DataSource.S3DataSource.S3Uri"),
    PathMember("TransformOutput.S3OutputPath"),
    # CreateModel
    PathMember("PrimaryContainer.ModelDataUrl"),
    PathMember("PrimaryContainer.ModelDataSource.S3DataSource.S3Uri"),
    PathMember("PrimaryContainer.Environment.SAGEMAKER_SUBMIT_DIRECTORY", bare=True),
    PathMember("Containers[].ModelDataUrl"),
    PathMember("Containers[].ModelDataSource.S3DataSource.S3Uri"),
    PathMember("Containers[].Environment.SAGEMAKER_SUBMIT_DIRECTORY", bare=True),
)
"""Every request member whose local value :func:`load_request` resolves against the request
file's directory: the one list of which members are paths. A member of another kind of request
is simply absent, so one table serves every request file."""


def load_request(path: Path) -> dict[str, Any]:
    """The request in ``path`` (YAML for ``.yaml``/``.yml``, else JSON) as a dict, with the
    relative local paths of :data:`PATH_MEMBERS` resolved against the file's directory (the
    directory as the path names it: a symlinked file's own directory, not its target's).

    Raises :class:`RequestFileError` for any file that does not hold one request object.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise RequestFileError(path, "no such file") from None
    except IsADirectoryError:
        raise RequestFileError(path, "is a directory, not a request file") from None
    except UnicodeDecodeError as exc:
        raise RequestFileError(path, f"not UTF-8 text (byte offset {exc.start})") from None
    except OSError as exc:  # PermissionError and the like: the OS says why
        raise RequestFileError(path, exc.strerror or str(exc)) from None
    data = _parse_yaml(path, text) if path.suffix.lower() in YAML_SUFFIXES \
        else _parse_json(path, text)
    if data is None:
        raise RequestFileError(path, "is empty; a request file must hold one request object")
    if not isinstance(data, dict):
        raise RequestFileError(path, f"a request file must hold one request object, not a "
                                     f"{_kind(data)}")
    for key in data:
        if not isinstance(key, str):
            raise RequestFileError(path, f"request fields are names; found {key!r} "
                                         f"({_kind(key)})")
    return resolve_paths(data, Path(os.path.abspath(path)).parent)


def resolve_paths(request: dict[str, Any], base: Path) -> dict[str, Any]:
    """A copy of ``request`` whose :data:`PATH_MEMBERS` name relative local paths as absolute
    ones below ``base`` (an absolute directory). What is not a relative local path -- absolute
    paths, ``s3://`` and other URIs, values of the wrong type -- is left exactly as it was (what
    is wrong with it is the client's to say), so resolving twice changes nothing."""
    resolved = copy.deepcopy(request)
    for member in PATH_MEMBERS:
        for holder, key in _places(resolved, member.path.split(".")):
            value = holder[key]
            if isinstance(value, str):
                holder[key] = _resolve_member(value, member, base)
    return resolved


def _places(node: Any, names: list[str]) -> Iterator[tuple[dict[str, Any], str]]:
    """``(mapping, key)`` for every string-keyed place ``names`` reaches in ``node``."""
    name, rest = names[0], names[1:]
    is_list = name.endswith("[]")
    name = name.removesuffix("[]")
    if not isinstance(node, dict) or name not in node:
        return
    if not rest:
        yield node, name
        return
    children = node[name] if is_list else [node[name]]
    if isinstance(children, list):
        for child in children:
            yield from _places(child, rest)


def _resolve_member(value: str, member: PathMember, base: Path) -> str:
    if member.encoded:  # read as the toolkit reads it: JSON if it is JSON, else as it is
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return _resolve(value, member.bare, base)
        if not isinstance(decoded, str):
            return value  # a number, a list...: not a path (the toolkit refuses it)
        return json.dumps(_resolve(decoded, member.bare, base), ensure_ascii=False)
    return _resolve(value, member.bare, base)


def _resolve(value: str, bare: bool, base: Path) -> str:
    """``value`` with a relative local path made absolute below ``base``, in the same form
    (``file://`` URI or bare path).

    Where bare paths count (``bare``), a value without ``://`` is a path, as the toolkit reads
    a code source (``file:x`` included); elsewhere a ``file:`` URI is read as the storage layer
    reads one (:class:`local_mode.storage.Location`): ``file:///a``, ``file:/a`` and
    ``file://localhost/a`` are absolute, and what follows ``file:`` or ``file://`` otherwise is
    a path relative to ``base``.
    """
    if bare and "://" not in value:
        if not value or value.startswith("/"):
            return value
        return _below(str(base), value)
    if value[:5].lower() != "file:":
        return value
    rest = value[5:]
    if rest.startswith("//"):
        rest = rest[2:]
        if rest == "localhost" or rest.startswith("localhost/"):
            return value  # file://localhost/a: absolute (and file://localhost: not a path)
    if not rest or rest.startswith("/"):
        return value
    # the relative part stays as written (its %-escapes mean what they meant); the base is
    # escaped, so a directory named "a b#c" still parses back to itself
    return "file://" + _below(quote(str(base), safe="/"), rest)


def _below(base: str, relative: str) -> str:
    """``relative`` joined to ``base``, with ``.`` and ``..`` folded; a trailing slash kept
    (``file://./data/`` is a prefix that ends with ``/``, which S3 semantics tell apart)."""
    joined = posixpath.normpath(posixpath.join(base, relative))
    if relative.endswith("/") and not joined.endswith("/"):
        joined += "/"
    return joined


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestFileError(path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: "
                                     f"{exc.msg}") from None
    except RecursionError:
        raise RequestFileError(path, "invalid JSON: nested too deeply") from None


def _parse_yaml(path: Path, text: str) -> Any:
    import yaml  # pyyaml comes with local mode's extra; only YAML files need it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise RequestFileError(path, f"invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise RequestFileError(path, "invalid YAML: nested too deeply") from None


def _kind(value: Any) -> str:
    names = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "number",
             float: "number"}
    return names.get(type(value), type(value).__name__)


__all__ = ["PATH_MEMBERS", "PathMember", "RequestFileError", "load_request", "resolve_paths"]
