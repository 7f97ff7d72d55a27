"""How every ``optml local`` / ``optml check`` command ends badly: one exit-code table, one
error prefix, one :func:`fail`, and :func:`request_errors` for input it cannot use.

Bad input is one line on stderr naming the file and field, and exit status 2, never a
traceback. The errors meant are the ones a request can be refused with -- a request file that
cannot be read (:class:`local_mode.request_files.RequestFileError`), what boto3 itself rejects
(:class:`botocore.exceptions.ParamValidationError`), what the service rejects (a
:class:`botocore.exceptions.ClientError`, local mode's :class:`local_mode.errors.LocalModeError`
included) -- plus whatever a command names in ``also``. Anything else is a bug and keeps its
traceback.

This module is imported by every ``optml local`` / ``optml check`` invocation, so it imports only
click up front; botocore is already loaded whenever one of its errors is raised.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from local_mode.error_text import message_of

# Exit status of every command (docs/local-mode.md, docs/local-endpoints.md, docs/check.md):
EXIT_COMPLETED = 0
"""Success: the command did its work; a job or transform waited for Completed."""
EXIT_FAILED = 1
"""The job Failed (its FailureReason is printed), the service failed the request, or a
command-level error such as an unknown job name."""
EXIT_INVALID = 2
"""The job file, request or an option is invalid (the message names the file and field)."""
EXIT_STOPPED = 3
"""The job was Stopped (StopTrainingJob / StopTransformJob, MaxRuntimeInSeconds, ...)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C: what the command started was stopped (or deleted) on the user's request."""
EXIT_BY_STATUS = {"Completed": EXIT_COMPLETED, "Failed": EXIT_FAILED, "Stopped": EXIT_STOPPED}
"""A terminal job status as the exit status of the command that waited for it."""

PREFIX = "Error"
"""What an error line starts with (``Error: ...``), as click's own errors do."""


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) as one space."""
    return " ".join(text.split())


def fail(message: str, status: int = EXIT_FAILED, *, label: str = PREFIX) -> NoReturn:
    """End the command: ``<label>: <message>`` as one line on stderr, and exit ``status``."""
    click.echo(f"{label}: {one_line(message)}", err=True)
    sys.exit(status)


def refusal(exc: BaseException, also: tuple[type[BaseException], ...] = ()) -> str | None:
    """What ``exc`` says about the request, if it is a refusal of it (else None)."""
    from botocore.exceptions import ClientError, ParamValidationError

    from local_mode.request_files import RequestFileError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error") or {}
        return one_line(getattr(exc, "message", None) or error.get("Message") or message_of(exc))
    if isinstance(exc, (RequestFileError, ParamValidationError, *also)):
        return one_line(str(exc))
    return None


@contextmanager
def request_errors(source: Path | str | None = None, *, label: str = PREFIX,
                   service_error_status: int = EXIT_INVALID,
                   also: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn a refused request inside the block into ``<label>: <source>: <message>`` on stderr
    and exit status 2 (``service_error_status`` for a ClientError, for commands where the
    service failing is not the input's fault, such as ``invoke``).

    ``source`` is the file the request came from; messages that already name it (a
    RequestFileError's) are not prefixed twice.
    """
    try:
        yield
    except Exception as exc:
        message = refusal(exc, also)
        if message is None:
            raise
        if source is not None and not message.startswith(f"{source}:"):
            message = f"{source}: {message}"
        from botocore.exceptions import ClientError

        fail(message, service_error_status if isinstance(exc, ClientError) else EXIT_INVALID,
             label=label)


__all__ = ["EXIT_BY_STATUS", "EXIT_COMPLETED", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_INVALID",
           "EXIT_STOPPED", "PREFIX", "fail", "one_line", "refusal",
           "request_errors"]
