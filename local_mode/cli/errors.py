"""How every ``optml local`` / ``optml check`` command ends badly: one exit-code table, one
error prefix, one :func:`fail`, and :func:`request_errors` for input it cannot use.

Bad input is one line on stderr naming the file and field, and exit status 2, never a
traceback. The errors meant are the ones a request can be refused with -- a request file that
cannot be read (:class:`local_mode.request_files.RequestFileError`), what boto3 itself rejects
(:class:`botocore.exceptions.ParamValidationError`), what the service rejects (a
:class:`botocore.exceptions.ClientError`, local mode's :class:`local_mode.errors.LocalModeError`
included) -- plus whatever a command names in ``also``. Anything else is a bug and keeps its
traceback.

What no single command can foresee is :func:`cli_errors`' business, applied once around every
command by :class:`OneLineGroup` (``optml local``) and :class:`OneLineCommand` (``optml check``):
a malformed environment variable, a missing optional extra, a path given on the command line
that cannot be used, and a bad option value. Each is one line and exit status 2 as well.

This module is imported by every ``optml local`` / ``optml check`` invocation, so it imports only
click up front; botocore is already loaded whenever one of its errors is raised.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from local_mode.error_text import message_of
from toolkit.errors import ConfigError

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


def report(message: str, *, label: str = PREFIX) -> None:
    """``<label>: <message>`` as one line on stderr, for a command that goes on (``rm A B``
    after A could not be removed) and sets its exit status at the end."""
    click.echo(f"{label}: {one_line(message)}", err=True)


def fail(message: str, status: int = EXIT_FAILED, *, label: str = PREFIX) -> NoReturn:
    """End the command: ``<label>: <message>`` as one line on stderr, and exit ``status``."""
    report(message, label=label)
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
    service failing is not the input's fault, such as ``invoke``; always 1 for a name in use,
    ResourceInUse, which no change to the input's content fixes).

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

        status = EXIT_INVALID
        if isinstance(exc, ClientError):
            code = (exc.response.get("Error") or {}).get("Code")
            status = EXIT_FAILED if code == "ResourceInUse" else service_error_status
        fail(message, status, label=label)


EXTRAS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "parquet": {"pyarrow": ("pyarrow",)},
    "sparse": {"scipy": ("scipy",)},
    "s3": {"boto3": ("boto3", "botocore")},
    "onnx": {"onnxruntime": ("onnxruntime",)},
    "local": {"docker": ("docker",), "boto3": ("boto3", "botocore"), "pyyaml": ("yaml",),
              "jsonpath-ng": ("jsonpath_ng",), "httptools": ("httptools",),
              "uvloop": ("uvloop",), "moto": ("moto",), "flask-cors": ("flask_cors",),
              "cheroot": ("cheroot",), "cbor2": ("cbor2",),
              "rich": ("rich",)},
    "plot": {"matplotlib": ("matplotlib",)},
}
"""Each optional extra of pyproject.toml's ``[project.optional-dependencies]`` (``dev`` aside: it
is for working on optml, not for running it): its distributions, and the top-level modules each
one is imported as (``pyyaml`` is ``yaml``; ``boto3`` brings ``botocore``). The one place that
maps a missing module to the extra that installs it; tests/unit/test_cli_errors.py holds it to
pyproject.toml."""


def extras_providing(module: str) -> tuple[str, ...]:
    """The extras that install ``module`` (a dotted name counts as its top-level package)."""
    top = module.partition(".")[0]
    return tuple(extra for extra, distributions in EXTRAS.items()
                 if any(top in modules for modules in distributions.values()))


def missing_extra(exc: ModuleNotFoundError, command: str, extra: str,
                  subcommand: str | None = None) -> str | None:
    """What to say when ``command`` (whose own extra is ``extra``) could not import a module an
    extra installs; None for any other module (a broken install or a bug: its traceback stays).

    A module of ``extra`` is named against ``command`` itself (all of ``optml local`` needs
    ``local``); a module of another extra against ``subcommand`` (only ``metrics --plot`` needs
    ``plot``)."""
    name = exc.name or ""
    extras = extras_providing(name) if name else ()
    if not extras:
        return None
    chosen = extra if extra in extras else extras[0]
    who = command if chosen == extra or not subcommand else f"{command} {subcommand}"
    top = name.partition(".")[0]
    what = f"{top} is not installed" if name == top else f"no module named {name!r}"
    return f"{who} needs the {chosen!r} extra ({what}): pip install 'optml[{chosen}]'".strip()


def environment_error(exc: ConfigError) -> str | None:
    """What a malformed environment variable says (``exc`` raised reading the environment,
    :mod:`toolkit.settings`), naming the variable; None for a bad file or anything else."""
    from toolkit.settings import ENVIRONMENT_SOURCE

    if exc.source != ENVIRONMENT_SOURCE:
        return None
    if exc.field is None:
        return one_line(str(exc))
    return one_line(f"environment variable {exc.field}: {exc.message}")


UNUSABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR,
                      errno.EEXIST, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG, errno.ELOOP})
"""Errors that say a path cannot be used as it is (not writable, a file where a directory must
be, ...), whoever's code met them: on a path inside (or on the way to) one the user gave, they
are the user's to fix, not a bug."""


def bad_path(exc: OSError, given: Iterable[tuple[str, Path]]) -> str | None:
    """What to say about ``exc`` if it is about a path the command line gave: ``given`` are
    (option or argument, path) pairs. None for any other path (a bug: its traceback stays).

    The path itself counts for any error; a path inside it (a file the command writes there) or
    on the way to it (a parent it creates) only for the :data:`UNUSABLE` errors."""
    if exc.filename is None or isinstance(exc.filename, int):
        return None
    failed = Path(os.path.abspath(os.fsdecode(exc.filename)))
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EEXIST and not os.path.isdir(failed):  # mkdir met a file on the way
        reason = os.strerror(errno.ENOTDIR)
    for label, path in given:
        absolute = Path(os.path.abspath(path))
        if failed == absolute:
            return one_line(f"{label} {path}: {reason}")
        if exc.errno in UNUSABLE and (absolute in failed.parents or failed in absolute.parents):
            return one_line(f"{label} {path}: {failed}: {reason}")
    return None


def given_paths(ctx: click.Context) -> list[tuple[str, Path]]:
    """The paths ``ctx``'s command line gave its command (values of its :class:`click.Path`
    parameters), each with the option or argument that gave it, plus the state directory a
    command with ``--state-dir`` works on when that option is not given."""
    found: list[tuple[str, Path]] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name) if param.name else None
        if value is None or not isinstance(param.type, click.Path):
            continue
        label = max(param.opts, key=len) if isinstance(param, click.Option) \
            else param.human_readable_name
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if item is not None and os.fsdecode(item) != "-":
                found.append((label, Path(os.fsdecode(item))))
    if "state_dir" in ctx.params and ctx.params["state_dir"] is None:
        found.extend(_default_state_dir())
    return found


def _default_state_dir() -> list[tuple[str, Path]]:
    from toolkit.settings import Settings

    try:
        state = Settings.from_environ().local.state_dir
    except ConfigError:
        return []
    label = "OPTML_LOCAL_STATE_DIR" if os.environ.get("OPTML_LOCAL_STATE_DIR") \
        else "state directory"
    return [(label, state)]


@contextmanager
def cli_errors(command: str, *, label: str = PREFIX, extra: str = "local",
               subcommand: Callable[[], str | None] = lambda: None,
               paths: Callable[[], Iterable[tuple[str, Path]]] = tuple) -> Iterator[None]:
    """End ``command`` with ``<label>: <message>`` on one line and exit status 2 on a usage
    error (a bad or missing option or argument, an unknown command; naming ``--help`` where it
    helps), a malformed environment variable, a module
    of an extra that is not installed, or an unusable path of those ``paths()`` names. Anything
    else propagates, traceback and all: it is a bug.

    ``subcommand()`` names what ran, for an extra only it needs (:func:`missing_extra`);
    both are called only once an error is met."""
    try:
        yield
    except click.UsageError as exc:
        # one line too for a missing argument, an unknown option or command: where help is
        hint = "" if isinstance(exc, click.BadParameter) and \
            not isinstance(exc, click.MissingParameter) or exc.ctx is None \
            else f" (see '{exc.ctx.command_path} --help')"
        fail(exc.format_message() + hint, EXIT_INVALID, label=label)
    except ModuleNotFoundError as exc:
        # `optml check: needs ...`, not `optml check: optml check needs ...`
        message = missing_extra(exc, "" if label == command else command, extra, subcommand())
        if message is None:
            raise
        fail(message, EXIT_INVALID, label=label)
    except OSError as exc:
        message = bad_path(exc, paths())
        if message is None:
            raise
        fail(message, EXIT_INVALID, label=label)
    except ConfigError as exc:
        message = environment_error(exc)
        if message is None:
            raise
        fail(message, EXIT_INVALID, label=label)


_INVOKED = f"{__name__}.invoked"
"""Where :class:`OneLineGroup` keeps the subcommand it resolved (in the click context's ``meta``),
for the paths its command line gave when an error needs them."""


class OneLineGroup(click.Group):
    """A group all of whose commands end on the errors :func:`cli_errors` knows with one line
    and exit status 2: one wrapper for every command, rather than the same ``try`` in each.

    The subcommand's options are parsed inside :meth:`invoke` (so a bad value is caught too);
    the paths they name are parsed again, leniently, only when an OSError needs them."""

    def __init__(self, *args: Any, label: str = PREFIX, extra: str = "local",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label = label
        self.extra = extra

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[_INVOKED] = (name, command, list(rest))  # a copy: parsing consumes the list
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        with cli_errors(f"optml {self.name}", label=self.label, extra=self.extra,
                        subcommand=lambda: ctx.invoked_subcommand,
                        paths=lambda: self._given_paths(ctx)):
            return super().invoke(ctx)

    @staticmethod
    def _given_paths(ctx: click.Context) -> list[tuple[str, Path]]:
        """The paths the command line gave, at every level (``optml local KIND --state-dir D``
        and ``optml local KIND ls --state-dir D`` alike), parsed again without failing."""
        name, command, args = ctx.meta.get(_INVOKED, (None, None, []))
        found: list[tuple[str, Path]] = []
        parent = ctx
        while command is not None:
            try:
                parsed = command.make_context(name, list(args), parent=parent,
                                              resilient_parsing=True)
                found += given_paths(parsed)
                # A group stops parsing at its subcommand: what follows is left in .args,
                # right after the subcommand's name (with nothing left, no path was given).
                if not isinstance(command, click.Group) or not parsed.args:
                    break
                name, command, args = command.resolve_command(
                    parsed, list(args[-len(parsed.args) - 1:]))
            except click.ClickException:
                break
            parent = parsed
        return list(dict.fromkeys(found))


class OneLineCommand(click.Command):
    """One command (``optml check``) ending on the errors :func:`cli_errors` knows with one
    line and exit status 2, as :class:`OneLineGroup` does for a group's commands."""

    def __init__(self, *args: Any, label: str = PREFIX, extra: str = "local",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label = label
        self.extra = extra

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with cli_errors(f"optml {self.name}", label=self.label, extra=self.extra):
            return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        with cli_errors(f"optml {self.name}", label=self.label, extra=self.extra,
                        paths=lambda: given_paths(ctx)):
            return super().invoke(ctx)


__all__ = ["EXIT_BY_STATUS", "EXIT_COMPLETED", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_INVALID",
           "EXIT_STOPPED", "EXTRAS", "PREFIX", "OneLineCommand", "OneLineGroup", "bad_path",
           "cli_errors", "environment_error", "extras_providing", "fail", "given_paths",
           "missing_extra", "one_line", "refusal", "report", "request_errors"]
