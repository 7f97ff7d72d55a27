"""What a serving container keeps on this side, whichever backend runs it: its log file and the
Unix socket an optml-built server also listens on (``OPTML_UNIX_SOCKET``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from toolkit.settings import MAX_UNIX_SOCKET_PATH


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a container's log file ("" before it exists)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def instance_socket_path(workdir: Path) -> tuple[str | None, str | None]:
    """``(socket, private_dir)`` for an instance's Unix socket: in its work directory (removed
    with the endpoint), or, when that path is too long for a socket, in a private temporary
    directory it also returns; ``(None, None)`` when even that is too long (then the router
    simply uses the port)."""
    inside = str(workdir.resolve() / "serve.sock")
    if len(os.fsencode(inside)) <= MAX_UNIX_SOCKET_PATH:
        return inside, None
    for parent in (None, "/tmp"):  # noqa: S108 - mkdtemp: a private directory, not a fixed name
        directory = tempfile.mkdtemp(prefix="optml-", dir=parent)
        path = os.path.join(directory, "serve.sock")
        if len(os.fsencode(path)) <= MAX_UNIX_SOCKET_PATH:
            return path, directory
        os.rmdir(directory)
    return None, None


def remove_instance_socket(path: str, private_dir: str | None) -> None:
    """gunicorn removes the socket when it stops; this covers a server that was killed, and
    the private directory made for it."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    if private_dir is not None:
        shutil.rmtree(private_dir, ignore_errors=True)
