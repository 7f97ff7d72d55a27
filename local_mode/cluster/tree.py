"""Directories and files local mode makes in a host's tree, with the modes a container needs.

An image's ``USER`` need not be root, nor the runner's user: what the program reads must be
readable by anyone, and what it writes (model, output, checkpoints) writable by anyone. Modes
are set with chmod, because mkdir's and open's are cut by the runner's umask. (The job's work
directory itself is private, so this opens nothing to other local users.)
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

READABLE_DIR_MODE = 0o755
READABLE_FILE_MODE = 0o644
"""Config files, staged channel files and their directories."""
WRITABLE_DIR_MODE = 0o777
WRITABLE_FILE_MODE = 0o666
"""The directories the program writes, and files it resumes from and overwrites (restored
checkpoints)."""
GROUP_NAME = "homogeneousCluster"
"""The one instance group of a job that names none (heterogeneous clusters are not emulated)."""


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


def write_readable_json(path: Path, data: Any) -> None:
    """A config file the program reads, readable by whatever user the image runs as."""
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    path.chmod(READABLE_FILE_MODE)


def resource_config(current: str, hosts: Sequence[str], instance_type: str,
                    interface: str) -> dict[str, Any]:
    """``resourceconfig.json`` of one host: who it is and who its peers are. Training and
    processing containers read the same members."""
    return {"current_host": current, "current_instance_type": instance_type,
            "current_group_name": GROUP_NAME, "hosts": list(hosts),
            "network_interface_name": interface,
            "instance_groups": [{"instance_group_name": GROUP_NAME,
                                 "instance_type": instance_type, "hosts": list(hosts)}]}


def make_read_only(root: Path) -> None:
    """Files and directories below ``root`` readable (and the directories listable) by anyone,
    writable by no one (FastFile input)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.chmod(dirpath, 0o555)  # noqa: S103 - read-only input: readable by the image's user, whoever it is


def make_removable(root: Path) -> None:
    """Undo read-only modes (FastFile, files a container wrote) so the tree can be deleted."""
    if not root.exists():
        return
    for dirpath, _, _ in os.walk(root):
        with contextlib.suppress(OSError):  # what we cannot change, rmtree reports
            os.chmod(dirpath, 0o755)  # noqa: S103 - only so that it can be deleted
