"""How an error is worded for people: in a FailureReason, or on one line of the CLI.

Kept apart from :mod:`local_mode.errors` (which builds on botocore) so the CLI can word an error
without loading botocore first.
"""

from __future__ import annotations


def message_of(exc: BaseException) -> str:
    """What an error says, without botocore's "An error occurred (...)" rendering: botocore's
    and local mode's errors carry it in ``message``; others are their ``str``."""
    return str(getattr(exc, "message", None) or exc)
