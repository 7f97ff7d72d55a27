"""The error a channel raises when it cannot deliver data (missing FIFO, stalled writer, ...).

Config problems stay :class:`~toolkit.errors.ConfigError` and malformed data stays
:class:`~toolkit.formats.errors.FormatError`; this one covers the plumbing in between, and always
names the path so the failure reason in ``/opt/ml/output/failure`` points at the cause.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.errors import OptmlError


class ChannelError(OptmlError):
    """A channel's file or FIFO could not be found, opened, read or fed in time."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)
