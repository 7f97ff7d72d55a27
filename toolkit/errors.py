"""Typed errors shared by every part of the toolkit.

Each error knows *where* the problem is (a file and a field, a source and an offset) so that the
message a user finally sees in ``/opt/ml/output/failure`` or an HTTP body points at the cause.
"""

from __future__ import annotations


class OptmlError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class ConfigError(OptmlError):
    """A configuration file (or environment variable) is missing, malformed or has a bad field."""

    def __init__(self, source: str, message: str, field: str | None = None) -> None:
        self.source = source
        self.field = field
        self.message = message
        where = f"{source}: field '{field}'" if field else source
        super().__init__(f"{where}: {message}")


class UserCodeError(OptmlError):
    """The user's code could not be located, fetched, installed or started."""
