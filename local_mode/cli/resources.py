"""The same verbs for every kind of local resource: ``optml local <kind> ls | describe | logs |
stop | wait | rm``, built once from :mod:`local_mode.cli.kinds`.

=====================  ======================================================================
``ls``                 the kind's List response (``-o json``) or a table, oldest first; also
                       what ``optml local <kind>`` alone does
``describe NAME``      its Describe response (``-o json``, the default) or a MEMBER/VALUE table
``logs NAME``          its log (``-f``, ``--tail N``, ``--since``, ``--timestamps``); jobs and
                       endpoints
``stop NAME``          Stop<Kind> (``--wait``); jobs
``wait NAME``          until a job has ended (exit status as ``train --wait``) or an endpoint is
                       InService (exit 0) or Failed (exit 1); jobs and endpoints
``rm NAME...``         forget an ended job (``--force`` stops a running one first), delete an
                       endpoint with the model and config ``deploy`` made for it, a model, a
                       config
=====================  ======================================================================

Exit statuses are :mod:`local_mode.cli.errors`'s; Ctrl-C while following or waiting is 130 and
leaves the resource as it is (``train --wait`` is the command whose Ctrl-C stops its job).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from local_mode.cli.errors import (
    EXIT_BY_STATUS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    fail,
    refusal,
    report,
)
from local_mode.cli.kinds import KINDS, ResourceKind
from local_mode.cli.logs import FOLLOW_INTERVAL
from local_mode.cli.options import (
    GIVEN,
    complete_names,
    from_group,
    sagemaker_client,
    state_dir_option,
)
from local_mode.cli.output import output_option, print_description, print_json, short_time
from local_mode.cli.table import print_table


# -- shared pieces -------------------------------------------------------------------------------
def table_rows(kind: ResourceKind, client: Any,
               summaries: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of ``kind``'s table: NAME, STATUS, CREATED, ENDED, then its own
    columns, from each resource's stored description (local mode's members too)."""
    header = ["NAME", *(["STATUS"] if kind.statuses else []), "CREATED",
              *(["ENDED"] if kind.end_time else []), *(title for title, _ in kind.columns)]
    rows = []
    for summary in summaries:
        row = {**kind.stored(client, summary[kind.name_member]), **summary}
        rows.append([row[kind.name_member],
                     *([row[kind.status_member or ""]] if kind.statuses else []),
                     short_time(row["CreationTime"]),
                     *([short_time(row.get(kind.end_time)) or "-"] if kind.end_time else []),
                     *(cell(row) for _, cell in kind.columns)])
    return header, rows


def list_resources(kind: ResourceKind, state_dir: Path | None, status: str | None,
                   name_contains: str | None, output: str) -> None:
    client = sagemaker_client(state_dir)
    filters: dict[str, Any] = {}
    if status:
        filters["StatusEquals"] = status
    if name_contains:
        filters["NameContains"] = name_contains
    summaries = kind.summaries(client, **filters)
    if output == "json":
        print_json({kind.list_key: summaries})
        return
    if not summaries:
        wanted = [f"status {status}" if status else "", f"names containing {name_contains!r}"
                  if name_contains else ""]
        click.echo(f"no {kind.what}s" + (f" with {' and '.join(w for w in wanted if w)}"
                                         if any(wanted) else ""), err=True)
        return
    print_table(*table_rows(kind, client, summaries))


def status_of(kind: ResourceKind) -> Callable[[click.Context, click.Parameter, str | None],
                                              str | None]:
    """``--status``: one of the kind's statuses in any case (``failed``), as the service spells
    it; the group's when the listing was not given one."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        value = from_group(ctx, param, value)
        if value is None:
            return None
        for status in kind.statuses:
            if status.lower() == value.lower():
                return status
        raise click.BadParameter(f"{value!r} is not one of {', '.join(kind.statuses)}",
                                 ctx=ctx, param=param)

    return check


def list_options(kind: ResourceKind) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--status``, ``--name-contains``, ``-o`` and ``--state-dir`` of a listing."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = state_dir_option(command)
        command = output_option("table")(command)
        command = click.option("--name-contains", default=None, callback=from_group,
                               help=f"Only {kind.what}s whose name contains this.")(command)
        if kind.statuses:
            command = click.option(
                "--status", "status", default=None, metavar="STATUS", callback=status_of(kind),
                help=f"Only {kind.what}s with this status, in any case: "
                     f"{', '.join(kind.statuses)}.")(command)
        return command

    return decorate


def name_argument(kind: ResourceKind, *, many: bool = False) -> Callable[[Any], Any]:
    return click.argument("names" if many else "name", nargs=-1 if many else 1,
                          required=True, shell_complete=complete_names(kind.command))


def wait_until_ended(client: Any, kind: ResourceKind, name: str,
                     timeout: float | None = None) -> Mapping[str, Any]:
    """Poll until ``name`` has ended (a job) or is InService / Failed (an endpoint); its
    description. A rich spinner says what is awaited while stderr is a terminal."""
    from local_mode import runners
    from local_mode.cli.progress import waiting

    job = kind.resource(client, name)
    deadline = None if timeout is None else time.monotonic() + timeout
    with waiting(f"waiting for {kind.what} {name}") as show:
        while True:
            described = kind.describe(client, name)
            status = described[kind.status_member or ""]
            show(status)
            if kind.end_time is None:  # an endpoint
                if status in ("InService", "Failed"):
                    return described
            elif runners.ended(job, kind.lifecycle):
                return kind.describe(client, name)
            if deadline is not None and time.monotonic() > deadline:
                fail(f"{kind.what} {name} is still {status} after {timeout:g} s")
            time.sleep(FOLLOW_INTERVAL)


def report_outcome(kind: ResourceKind, described: Mapping[str, Any],
                   interrupted: bool = False) -> int:
    """Print how ``described`` ended (on stderr, with its FailureReason, if it Failed); return
    the exit status it maps to."""
    status = described[kind.status_member or ""]
    failed = status == "Failed"
    headline, details = kind.outcome(described) if kind.outcome else (status, [])
    click.echo(headline, err=failed)
    if failed:
        click.echo(f"FailureReason: {described.get('FailureReason', '(none)')}", err=True)
    for line in details:
        click.echo(line, err=failed)
    if interrupted and status == "Stopped":
        return EXIT_INTERRUPTED
    if kind.end_time is None:
        return EXIT_FAILED if failed else 0
    return EXIT_BY_STATUS.get(status, EXIT_FAILED)


# -- the verbs -----------------------------------------------------------------------------------
def ls_command(kind: ResourceKind, command: str = "ls", *,
               hidden: bool = False) -> click.Command:
    @click.command(command, help=f"List local {kind.what}s, oldest first.", hidden=hidden)
    @list_options(kind)
    def ls(name_contains: str | None, output: str, state_dir: Path | None,
           status: str | None = None) -> None:
        list_resources(kind, state_dir, status, name_contains, output)

    return ls


def describe_command(kind: ResourceKind, command: str = "describe", *,
                     hidden: bool = False) -> click.Command:
    @click.command(command, help=f"Print Describe{kind.member} of NAME (JSON by default, as the "
                                 "AWS CLI prints it).", hidden=hidden)
    @name_argument(kind)
    @output_option("json")
    @state_dir_option
    def describe(name: str, output: str, state_dir: Path | None) -> None:
        client = sagemaker_client(state_dir)
        kind.resource(client, name)
        print_description(kind.describe(client, name), output)

    return describe


def logs_command(kind: ResourceKind, command: str = "logs", *,
                 hidden: bool = False) -> click.Command:
    @click.command(command, help=f"Print the {kind.what}'s log"
                   + (" (every host's lines, prefixed with the host name)." if kind.end_time
                      else " (every instance's lines, prefixed with the instance)."),
                   hidden=hidden)
    @name_argument(kind)
    @click.option("-f", "--follow", "follow_log", is_flag=True,
                  help="Keep printing new lines until it ends (Ctrl-C: exit 130)"
                       + ("; exit with the job's status." if kind.end_time else "."))
    @click.option("--tail", type=click.IntRange(min=0), default=None, metavar="N",
                  help="Only the last N lines (then new ones with -f).")
    @click.option("--since", default=None, metavar="WHEN",
                  help="Only lines written since WHEN: a duration (90s, 10m, 2h, 1d) or an "
                       "ISO 8601 time.")
    @click.option("-t", "--timestamps", is_flag=True, help="Prefix each line with its time.")
    @state_dir_option
    def logs(name: str, follow_log: bool, tail: int | None, since: str | None,
             timestamps: bool, state_dir: Path | None) -> None:
        from local_mode import runners
        from local_mode.cli.logs import LogOptions, LogSet, parse_since, print_logs

        options = LogOptions(tail, parse_since(since) if since else None, timestamps)
        client = sagemaker_client(state_dir)
        resource = kind.resource(client, name)
        logs = LogSet(resource.logs_dir, job_log=kind.host_log)
        if not follow_log:
            print_logs(logs, options)
            return

        def ended() -> bool:
            if not resource.path.exists():
                return True
            return runners.ended(resource, kind.lifecycle)

        try:
            print_logs(logs, options, follow_until=ended)
        except KeyboardInterrupt:
            sys.exit(EXIT_INTERRUPTED)
        if not resource.path.exists():  # removed while followed (rm, prune, DeleteEndpoint)
            if kind.end_time is not None:
                fail(f"{kind.what} {name} was removed while its log was followed")
            return
        if kind.end_time is not None:
            sys.exit(EXIT_BY_STATUS.get(kind.describe(client, name)[kind.status_member or ""],
                                        EXIT_FAILED))

    return logs


def stop_command(kind: ResourceKind, command: str = "stop", *,
                 hidden: bool = False) -> click.Command:
    @click.command(command, help=f"Stop{kind.member}: SIGTERM to every host, SIGKILL after "
                                 "OPTML_LOCAL_STOP_GRACE_SECONDS.", hidden=hidden)
    @name_argument(kind)
    @click.option("--wait", is_flag=True, help="Wait until it has stopped; exit as `wait`.")
    @state_dir_option
    def stop(name: str, wait: bool, state_dir: Path | None) -> None:
        from local_mode.errors import LocalModeError

        client = sagemaker_client(state_dir)
        kind.resource(client, name)
        try:
            kind.stop(client, name)
        except LocalModeError as exc:
            from local_mode.error_text import message_of

            fail(message_of(exc))
        click.echo(f"Stopping {kind.what} {name}", err=True)
        if wait:
            try:
                described = wait_until_ended(client, kind, name)
            except KeyboardInterrupt:
                sys.exit(EXIT_INTERRUPTED)
            sys.exit(report_outcome(kind, described))

    return stop


def wait_command(kind: ResourceKind, command: str = "wait") -> click.Command:
    if kind.end_time:
        text = (f"Wait until the {kind.what} has ended; print how, and exit with its status "
                "(0 Completed, 1 Failed, 3 Stopped).")
    else:
        text = (f"Wait until the {kind.what} is InService (exit 0) or Failed (exit 1, with its "
                "FailureReason).")

    @click.command(command, help=text)
    @name_argument(kind)
    @click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
                  help="Give up (exit 1) after this long.")
    @state_dir_option
    def wait(name: str, timeout: float | None, state_dir: Path | None) -> None:
        client = sagemaker_client(state_dir)
        try:
            described = wait_until_ended(client, kind, name, timeout)
        except KeyboardInterrupt:
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(report_outcome(kind, described))

    return wait


def rm_command(kind: ResourceKind, command: str = "rm", *,
               hidden: bool = False) -> click.Command:
    """``rm NAME...``: every name is tried; the exit status is 1 if any could not be removed."""
    help_text = {
        "endpoints": "Delete endpoints (their instances stop) and the model and endpoint "
                     "config `deploy` created for them, unless something else uses them.",
        "models": "DeleteModel.", "endpoint-configs": "DeleteEndpointConfig.",
    }.get(kind.command, f"Forget ended {kind.what}s: their records and logs (their outputs "
                        "stay). A running one is refused unless --force, which stops it first.")
    short = "Delete endpoints, with what deploy made for them." \
        if kind.command == "endpoints" else None

    def rm(names: tuple[str, ...], state_dir: Path | None, force: bool = False,
           keep_model: bool = False) -> None:
        from local_mode import housekeeping
        from local_mode.cli.kinds import in_words
        from local_mode.cli.progress import waiting

        client = sagemaker_client(state_dir)
        status = 0
        for name in names:
            if not kind.stored(client, name):
                report(f"no local {kind.what} named {name!r} in {client.store.root}")
                status = EXIT_FAILED
                continue
            try:
                with waiting(f"removing {kind.what} {name}") as show:
                    if kind.command == "endpoints":
                        removed = housekeeping.delete_endpoint(client, name,
                                                               keep_model=keep_model)
                    else:
                        removed = housekeeping.remove(client, kind.command, name, force=force,
                                                      on_status=show)
            except Exception as exc:  # refusal() says which are refusals: a bug keeps its trace
                message = refusal(exc)
                if message is None:
                    raise
                report(message)
                status = EXIT_FAILED
                continue
            click.echo(f"removed {', '.join(in_words(k, n) for k, n in removed)}")
        sys.exit(status)

    # only the options the kind can use: --force for jobs, --keep-model for endpoints
    decorated: Callable[..., None] = state_dir_option(rm)
    if kind.end_time is not None:
        decorated = click.option("--force", is_flag=True, help="Stop a running job first (and "
                                 "wait for it), then remove it.")(decorated)
    if kind.command == "endpoints":
        decorated = click.option("--keep-model", is_flag=True, help="Keep the model and "
                                 "endpoint config deploy created.")(decorated)
    decorated = name_argument(kind, many=True)(decorated)
    return click.command(command, help=help_text, short_help=short, hidden=hidden)(decorated)


def kind_group(kind: ResourceKind) -> click.Group:
    """``optml local <kind>``: its verbs; alone, its listing (``ls``'s options apply)."""
    commands = [ls_command(kind), describe_command(kind), rm_command(kind)]
    if kind.has_logs:
        commands += [logs_command(kind), wait_command(kind)]
    if kind.stoppable:
        commands.append(stop_command(kind))

    verbs = ", ".join(c.name or "" for c in commands)
    @click.group(kind.command, invoke_without_command=True, commands=commands,
                 short_help=f"{kind.what.capitalize()}s: {verbs}.",
                 help=f"Local {kind.what}s: {verbs}. Alone: list them (as `{kind.command} ls`; "
                      "its options apply). Options given here go to the subcommand.")
    @list_options(kind)
    @click.pass_context
    def group(ctx: click.Context, name_contains: str | None, output: str,
              state_dir: Path | None, status: str | None = None) -> None:
        if ctx.invoked_subcommand is None:
            list_resources(kind, state_dir, status, name_contains, output)
            return
        # an option given to the group goes to its subcommand (options.from_group): refuse
        # one the subcommand has no use for rather than ignore it
        sub = group.get_command(ctx, ctx.invoked_subcommand)
        takes = {param.name for param in (sub.params if sub else [])}
        for param in ctx.command.params:
            if param.name and param.name not in takes and \
                    ctx.get_parameter_source(param.name) in GIVEN:
                fail(f"{param.opts[-1]} does not apply to `{kind.command} "
                     f"{ctx.invoked_subcommand}`", EXIT_INVALID)

    return group


GROUPS = tuple(kind_group(kind) for kind in KINDS)
"""``optml local training-jobs``, ``processing-jobs``, ``transform-jobs``, ``endpoints``,
``endpoint-configs``, ``models``."""

__all__ = ["GROUPS", "describe_command", "kind_group", "list_resources", "logs_command",
           "ls_command", "report_outcome", "rm_command", "stop_command", "wait_command",
           "wait_until_ended"]
