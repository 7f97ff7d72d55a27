"""Install the user's ``requirements.txt`` with pip before the run.

pip runs as an argv list in a child process with exactly the environment it is given, so the
standard ``PIP_INDEX_URL`` / ``PIP_EXTRA_INDEX_URL`` / ``PIP_FIND_LINKS`` / ``PIP_NO_INDEX``
variables choose a private index or an offline wheelhouse. Its output is streamed line-exactly to
the log; only a bounded tail is kept, from which a failure names the requirement that broke the
install instead of a bare "pip failed".
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from toolkit.errors import UserCodeError

__all__ = [
    "PipFailure",
    "RequirementInstallError",
    "find_requirements_file",
    "install_package",
    "install_requirements",
    "parse_pip_failure",
]

REQUIREMENTS_FILE_NAME = "requirements.txt"
TAIL_BYTES = 64 * 1024
"""How much of pip's output is kept for the error (the cause is always in the last lines)."""
_READ_CHUNK = 64 * 1024
_SUMMARY_LINES = 5


class RequirementInstallError(UserCodeError):
    """pip could not install the requirements; names the failing requirement when pip did."""

    def __init__(self, requirement: str | None, output_tail: str, returncode: int, *,
                 reason: str | None = None, requirements_file: Path | None = None) -> None:
        self.requirement = requirement
        self.output_tail = output_tail
        self.returncode = returncode
        self.reason = reason
        self.requirements_file = requirements_file
        where = f" from {requirements_file}" if requirements_file else ""
        if requirement is not None:
            message = f"pip could not install requirement {requirement!r}{where}"
            if reason:
                message += f": {reason}"
        else:
            message = f"pip install{where} failed"
            last = [line for line in output_tail.splitlines() if line.strip()][-_SUMMARY_LINES:]
            if last:
                message += "; last output:\n" + "\n".join(last)
        super().__init__(f"{message} (pip exit code {returncode})")


@dataclass(frozen=True)
class PipFailure:
    """What pip's output says went wrong."""

    requirement: str
    reason: str


def find_requirements_file(code_dir: Path) -> Path | None:
    """Return ``code_dir/requirements.txt`` when it exists, else ``None``.

    A ``requirements.txt`` that is not a regular file (a directory, a dangling link) is an error
    rather than "no requirements": silently skipping it would start the job without its packages.
    """
    path = code_dir / REQUIREMENTS_FILE_NAME
    if path.is_file():
        return path
    if path.exists() or path.is_symlink():
        raise UserCodeError(f"{path} exists but is not a readable regular file")
    return None


def install_requirements(requirements_file: Path, *, python: str, environ: Mapping[str, str],
                         log: BinaryIO | None = None) -> None:
    """Run ``python -m pip install -r requirements_file`` and raise if it fails.

    pip runs in the file's directory, because pip resolves relative local paths written in a
    requirements file (``./vendored-pkg``, ``-e .``) against its working directory and the user
    wrote them relative to their code. ``log`` (default: this process's stderr) receives pip's
    output byte for byte as it arrives.
    """
    cwd = requirements_file.parent if requirements_file.parent.is_dir() else None
    returncode, text = _run_pip(["-r", str(requirements_file)], python=python, environ=environ,
                                log=log, cwd=cwd)
    if returncode == 0:
        return
    failure = parse_pip_failure(text)
    raise RequirementInstallError(
        failure.requirement if failure else None, text, returncode,
        reason=failure.reason if failure else None, requirements_file=requirements_file)


def install_package(package_dir: Path, *, python: str, environ: Mapping[str, str],
                    log: BinaryIO | None = None) -> None:
    """Run ``python -m pip install package_dir`` for user code that is itself a package.

    Same streaming and errors as :func:`install_requirements`; when pip names nothing more
    specific, the package directory is the requirement that failed.
    """
    returncode, text = _run_pip([str(package_dir)], python=python, environ=environ, log=log,
                                cwd=package_dir if package_dir.is_dir() else None)
    if returncode == 0:
        return
    failure = parse_pip_failure(text)
    raise RequirementInstallError(
        failure.requirement if failure else str(package_dir), text, returncode,
        reason=failure.reason if failure else None)


def _run_pip(args: list[str], *, python: str, environ: Mapping[str, str],
             log: BinaryIO | None, cwd: Path | None) -> tuple[int, str]:
    """Run ``pip install ARGS``, streaming its output to ``log``; return (status, output tail)."""
    out = log if log is not None else sys.stderr.buffer
    argv = [python, "-m", "pip", "install", *args, "--disable-pip-version-check", "--no-input"]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,  # noqa: S603 - argv list
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=dict(environ), cwd=cwd)
    except OSError as exc:
        return 127, f"cannot start {python!r}: {exc}"
    tail = bytearray()
    try:
        assert proc.stdout is not None
        while chunk := proc.stdout.readline(_READ_CHUNK):
            out.write(chunk)
            out.flush()
            tail += chunk
            if len(tail) > 2 * TAIL_BYTES:
                del tail[:-TAIL_BYTES]
        returncode = proc.wait()
    finally:
        if proc.poll() is None:  # interrupted while streaming: never leave pip running
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return returncode, _tail_text(tail)


def _tail_text(tail: bytearray) -> str:
    data = bytes(tail[-TAIL_BYTES:])
    if len(tail) > TAIL_BYTES:
        data = data.partition(b"\n")[2]  # drop the partial first line
    return data.decode("utf-8", errors="replace")


# -- parsing pip's output ------------------------------------------------------------------------

_ERR = r"^(?:ERROR:\s+)?"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(_ERR + r"No matching distribution found for (?P<req>.+?)\s*$"),
     "no matching distribution found"),
    (re.compile(_ERR + r"Could not find a (?:[\w-]+ )*?version that satisfies the requirement "
                r"(?P<req>.+?)(?: \(from versions:.*)?\s*$"),
     "no version satisfies it"),
    (re.compile(_ERR + r"Could not open requirements file: .*?"
                r"(?:No such file or directory|Is a directory|Permission denied): "
                r"(?P<quoted>(?P<q>['\"]).*(?P=q))\s*$"),
     "requirements file cannot be opened"),
    (re.compile(_ERR + r"Invalid requirement: (?P<quoted>(?P<q>['\"]).*?(?P=q))(?=:\s|\s*$)"),
     "invalid requirement"),
    (re.compile(_ERR + r"Invalid requirement: (?P<req>[^'\"\s].*?)\s*$"), "invalid requirement"),
    (re.compile(_ERR + r"Failed to build (?P<quoted>(?P<q>['\"]).*?(?P=q)) when (?P<step>.+?)\s*$"),
     "build failed"),
    (re.compile(_ERR + r"Failed building wheel for (?P<req>\S+)\s*$"), "build failed"),
    (re.compile(_ERR + r"Failed to build (?!installable wheels)(?P<req>\S+)\s*$"), "build failed"),
    (re.compile(_ERR + r"Could not build wheels for (?P<req>\S+?),? which"), "build failed"),
    (re.compile(_ERR + r"Failed to build installable wheels for some pyproject\.toml based "
                r"projects \((?P<req>[^)]+)\)\s*$"), "build failed"),
    (re.compile(_ERR + r"Directory (?P<quoted>(?P<q>['\"]).*?(?P=q)) is not installable"),
     "not an installable directory"),
    (re.compile(_ERR + r"Cannot install (?P<req>.+?) because these package versions have "
                r"conflicting dependencies"), "conflicting dependencies"),
]
_WHEELS_HEADER = re.compile(_ERR + r"Failed to build installable wheels for some pyproject\.toml "
                            r"based projects\s*$")
_CONTEXT_LINE = re.compile(r"^\s*╰─>\s*(?P<req>\S.*?)\s*$")
_SUBPROCESS_START = re.compile(r"\[\d+ lines? of output\]\s*$")
_SUBPROCESS_END = re.compile(r"^\s*\[end of output\]\s*$")


def parse_pip_failure(output: str) -> PipFailure | None:
    """Find the requirement pip names as the cause of a failed install, or ``None``.

    pip's own lines are preferred over the output of build subprocesses it quotes between
    ``[N lines of output]`` and ``[end of output]`` (a failing build backend often reports *its*
    missing dependency, which is not what the user wrote); among pip's lines the last match wins,
    since pip prints the decisive error last.
    """
    own: list[PipFailure] = []
    quoted: list[PipFailure] = []
    in_subprocess = False
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if in_subprocess and _SUBPROCESS_END.match(line):
            in_subprocess = False
            continue
        if not in_subprocess and _SUBPROCESS_START.search(line):
            in_subprocess = True
            continue
        found = _match_line(line.strip(), lines[index + 1:index + 2])
        if found is not None:
            (quoted if in_subprocess else own).append(found)
    if own:
        return own[-1]
    return quoted[-1] if quoted else None


def _match_line(line: str, following: Iterable[str]) -> PipFailure | None:
    if _WHEELS_HEADER.match(line):
        for next_line in following:
            context = _CONTEXT_LINE.match(next_line)
            if context:
                return PipFailure(context.group("req"), "build failed")
        return None
    for pattern, reason in _PATTERNS:
        match = pattern.match(line)
        if match is None:
            continue
        groups = match.groupdict()
        requirement = _unquote(groups["quoted"]) if groups.get("quoted") else groups["req"]
        if not requirement:
            continue
        if groups.get("step"):
            reason = f"build failed when {groups['step']}"
        return PipFailure(requirement, reason)
    return None


def _unquote(text: str) -> str:
    """Undo the ``repr()`` pip applies to names in some messages; keep the text if it is not one."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text[1:-1]
    return value if isinstance(value, str) else text[1:-1]
