"""A file this test process cannot read, for real (no mock of ``open``).

``chmod 000`` stops every user but root, and CI runs as root; there the code under test runs in
a forked child that has become ``nobody``, so the kernel itself answers EACCES.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

NOBODY = 65534
T = TypeVar("T")


@contextmanager
def unreadable_file(name: str, content: bytes = b"{}") -> Iterator[Path]:
    """A file with mode 000 in a directory anyone may enter (pytest's tmp_path is private to
    its user, which would make the file look missing rather than unreadable to ``nobody``)."""
    with tempfile.TemporaryDirectory(prefix="optml-unreadable-") as scratch:
        os.chmod(scratch, 0o755)
        path = Path(scratch) / name
        path.write_bytes(content)
        path.chmod(0)
        yield path


def without_read_permission(call: Callable[[], T]) -> T:
    """``call()`` as a user the file permissions apply to: this process unless it is root, else a
    forked child running as ``nobody`` whose result (picklable) comes back through a pipe.

    The child may be unable to import anything the parent has not imported yet (the interpreter
    can live in root's home), so callers import what ``call`` needs first."""
    if os.geteuid() != 0:
        return call()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            outcome: tuple[str, object] = ("returned", call())
        except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
            outcome = ("raised", traceback.format_exc())
        finally:
            try:
                with os.fdopen(write_end, "wb") as out:
                    out.write(pickle.dumps(outcome))
            finally:
                os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as inp:
        payload = inp.read()
    os.waitpid(pid, 0)
    assert payload, "the unprivileged child died without a result"
    kind, value = pickle.loads(payload)
    assert kind == "returned", f"the unprivileged child raised:\n{value}"
    return value  # type: ignore[no-any-return]
