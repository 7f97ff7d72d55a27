"""Request files: a service request (CreateTrainingJob, CreateTransformJob, ...) kept as JSON or
YAML, as ``optml local train``, ``optml local transform`` and ``optml check --job`` read them.

Reading one is where user input first meets the code, so every way it can be wrong (missing,
unreadable, not text, not JSON/YAML, not one object) is one :class:`RequestFileError` whose
message names the file and says what is wrong (with the line and column of a syntax error). What
the request *says* is checked later, by the client, against the service's model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

YAML_SUFFIXES = frozenset({".yaml", ".yml"})
"""A file with one of these suffixes is YAML; any other is JSON."""


class RequestFileError(ValueError):
    """A request file that cannot be used; ``str()`` is ``"<path>: <what is wrong>"``."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def load_request(path: Path) -> dict[str, Any]:
    """The request in ``path`` (YAML for ``.yaml``/``.yml``, else JSON) as a dict.

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
    return data


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


__all__ = ["RequestFileError", "load_request"]
