"""Directories and files local mode makes in a host's tree, with the modes a container needs.

An image's ``USER`` need not be root, nor the runner's user: what the program reads must be
readable by anyone, and what it writes (model, output, checkpoints) writable by anyone. Modes
are set with chmod, because mkdir's and open's are cut by the runner's umask. (The job's work
directory itself is private, so this opens nothing to other local users.)
"""

from __future__ import annotations

from pathlib import Path

READABLE_DIR_MODE = 0o755
READABLE_FILE_MODE = 0o644
"""Config files, staged channel files and their directories."""
WRITABLE_DIR_MODE = 0o777
WRITABLE_FILE_MODE = 0o666
"""The directories the program writes, and files it resumes from and overwrites (restored
checkpoints)."""


def make_dir(directory: Path, mode: int) -> None:
    """mkdir -p, then chmod ``directory`` itself to ``mode``."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(mode)


def place(top: Path, key: str, dir_mode: int) -> Path:
    """Where object ``key`` goes below ``top`` (which exists), with the directories between
    made with ``dir_mode``; ValueError when the key would land outside ``top``."""
    top = top.resolve()
    target = (top / key).resolve()
    if top not in target.parents:
        raise ValueError(f"object key {key!r} escapes {top}")
    for directory in reversed(target.parents):
        if top in directory.parents and not directory.exists():
            directory.mkdir()
            directory.chmod(dir_mode)
    return target
