"""Find the user's entry point in the code directory and say how to run it."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from toolkit.errors import UserCodeError


class EntryKind(str, Enum):
    SCRIPT = "python_script"
    """``python script.py ARGS``."""
    MODULE = "python_module"
    """An installable package (setup.py / pyproject.toml) or a package dir: ``python -m name``."""
    EXECUTABLE = "executable"
    """A shell script or binary, run directly (never through ``sh -c``)."""


@dataclass(frozen=True)
class EntryPoint:
    """The resolved user program."""

    program: str
    code_dir: Path
    kind: EntryKind
    interpreter: tuple[str, ...] = ()
    """For an executable without its exec bit: the interpreter from its shebang or ``sh``."""

    @property
    def path(self) -> Path:
        return self.code_dir / self.program

    @property
    def module_name(self) -> str:
        """SM_MODULE_NAME: the program without ``.py``, as an importable dotted name."""
        name = self.program[:-3] if self.program.endswith(".py") else self.program
        return name.replace(os.sep, ".")

    @property
    def is_python(self) -> bool:
        return self.kind is not EntryKind.EXECUTABLE

    @property
    def needs_install(self) -> bool:
        """A package with its own build file is pip-installed before it runs."""
        return self.kind is EntryKind.MODULE and _has_build_file(self.code_dir)

    def target(self) -> list[str]:
        """What follows the interpreter: the script path, ``-m module`` or the executable."""
        if self.kind is EntryKind.SCRIPT:
            return [str(self.path)]
        if self.kind is EntryKind.MODULE:
            return ["-m", self.module_name]
        return [*self.interpreter, str(self.path)]

    def command(self, args: list[str], *, python: str = sys.executable) -> list[str]:
        if self.is_python:
            return [python, *self.target(), *args]
        return [*self.target(), *args]


def _has_build_file(code_dir: Path) -> bool:
    return (code_dir / "setup.py").is_file() or (code_dir / "pyproject.toml").is_file()


def _shebang(path: Path) -> tuple[str, ...]:
    try:
        with path.open("rb") as handle:
            first = handle.readline(256)
    except OSError:
        return ()
    if not first.startswith(b"#!"):
        return ()
    return tuple(first[2:].decode("utf-8", "replace").split())


def resolve_entry_point(program: str, code_dir: Path) -> EntryPoint:
    """Classify ``program`` (relative to ``code_dir``), refusing paths that leave it."""
    if not program or program.strip() != program:
        raise UserCodeError(f"entry point {program!r} is not a valid program name")
    code_dir = code_dir.resolve()
    candidate = (code_dir / program).resolve()
    if candidate != code_dir and code_dir not in candidate.parents:
        raise UserCodeError(f"entry point {program!r} is outside the code directory {code_dir}")

    if program.endswith(".py"):
        if not candidate.is_file():
            raise UserCodeError(f"entry point {program!r} not found in {code_dir}")
        kind = EntryKind.MODULE if _has_build_file(code_dir) else EntryKind.SCRIPT
        return EntryPoint(program, code_dir, kind)
    if candidate.is_dir():
        if (candidate / "__main__.py").is_file():
            return EntryPoint(program, code_dir, EntryKind.MODULE)
        raise UserCodeError(f"entry point {program!r} is a directory without __main__.py")
    if candidate.is_file():
        if os.access(candidate, os.X_OK):
            return EntryPoint(program, code_dir, EntryKind.EXECUTABLE)
        interpreter = _shebang(candidate) or (("/bin/sh",) if program.endswith(".sh") else ())
        if interpreter:
            return EntryPoint(program, code_dir, EntryKind.EXECUTABLE, interpreter=interpreter)
        raise UserCodeError(f"entry point {program!r} is neither a .py file nor executable "
                            "(no exec bit and no #! line)")
    if _has_build_file(code_dir):
        return EntryPoint(program, code_dir, EntryKind.MODULE)
    raise UserCodeError(f"entry point {program!r} not found in {code_dir}")
