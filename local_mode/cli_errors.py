"""How every ``optml local`` / ``optml check`` command reports input it cannot use: one line on
stderr naming the file and field, and exit status 2, never a traceback.

The errors meant are the ones a request can be refused with -- a request file that cannot be
read (:class:`local_mode.request_files.RequestFileError`), what boto3 itself rejects
(:class:`botocore.exceptions.ParamValidationError`), what the service rejects (a
:class:`botocore.exceptions.ClientError`, local mode's :class:`local_mode.errors.LocalModeError`
included) -- plus whatever a command names in ``also``. Anything else is a bug and keeps its
traceback.

This module is imported by every ``optml`` invocation (through :mod:`local_mode.cli`), so it
imports only click up front; botocore is already loaded whenever one of its errors is raised.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

EXIT_INVALID = 2


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) as one space."""
    return " ".join(text.split())


def refusal(exc: BaseException, also: tuple[type[BaseException], ...] = ()) -> str | None:
    """What ``exc`` says about the request, if it is a refusal of it (else None)."""
    from botocore.exceptions import ClientError, ParamValidationError

    from local_mode.request_files import RequestFileError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error") or {}
        return one_line(str(getattr(exc, "message", None) or error.get("Message") or exc))
    if isinstance(exc, (RequestFileError, ParamValidationError, *also)):
        return one_line(str(exc))
    return None


@contextmanager
def request_errors(source: Path | str | None = None, *, label: str = "Error",
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
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is a refusal
        message = refusal(exc, also)
        if message is None:
            raise
        if source is not None and not message.startswith(f"{source}:"):
            message = f"{source}: {message}"
        from botocore.exceptions import ClientError

        status = service_error_status if isinstance(exc, ClientError) else EXIT_INVALID
        click.echo(f"{label}: {message}", err=True)
        sys.exit(status)


__all__ = ["EXIT_INVALID", "one_line", "refusal", "request_errors"]
