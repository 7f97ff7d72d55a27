"""What the job commands of ``optml local`` share whatever the kind of job: create from a job
file and wait, list, describe, print or follow the log, stop -- for training and processing jobs.

A kind is data (:class:`JobKind`): its member names, its client operations, its runner lifecycle
and how its outcome reads. Each command is built by one factory here, so ``train`` and
``process``, ``jobs`` and ``processing-jobs``, ... behave the same way by construction: the same
options, messages, Ctrl-C handling and exit-status table (:mod:`local_mode.cli.errors`):

==========  ============================================================================
0           the job Completed
1           the job Failed (its FailureReason is printed), or a command-level error
2           the job file or the request is invalid (the message names the file and field)
3           the job was Stopped (a stop request, MaxRuntimeInSeconds, MaxWaitTimeInSeconds)
130         Ctrl-C: the job was stopped on the user's request and reached Stopped
==========  ============================================================================

Like every module of the CLI, this one imports only click up front; the client, the runner
bookkeeping and botocore load inside the commands.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from local_mode.cli.errors import (
    EXIT_BY_STATUS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    fail,
    request_errors,
)
from local_mode.cli.follow import FOLLOW_INTERVAL, LinePrinter, LogTail, follow
from local_mode.cli.options import backend_option, sagemaker_client, state_dir_option
from local_mode.cli.table import print_table
from local_mode.error_text import message_of

if TYPE_CHECKING:
    from local_mode.runners import Lifecycle
    from local_mode.sagemaker import SageMakerClient
    from local_mode.state import ResourceDir

STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
"""What ``--status`` of a listing accepts (the service's job statuses)."""

Outcome = Callable[[Mapping[str, Any]], tuple[str, list[str]]]
"""A finished job's description as its status line and the lines that follow it."""
Column = tuple[str, Callable[[Mapping[str, Any]], str]]
"""A listing column beyond NAME, STATUS, CREATED, ENDED: its header and its cell."""


@dataclass(frozen=True)
class JobKind:
    """One kind of job as the CLI sees it."""

    what: str
    """How messages name one (``training job``)."""
    member: str
    """The service's prefix of its members (``TrainingJob``: ``TrainingJobName``, ...)."""
    operation: str
    """The client's suffix of its operations (``training_job``: ``describe_training_job``)."""
    lifecycle_name: str
    """Its :class:`local_mode.runners.Lifecycle` in that module (``TRAINING``)."""
    end_time: str
    """The member that says when it ended (``TrainingEndTime``)."""
    outcome: Outcome
    """The status line of a finished job and what follows it (artifacts, outputs)."""
    columns: tuple[Column, ...] = ()
    """What its listing shows besides NAME, STATUS, CREATED and ENDED."""

    @property
    def name_member(self) -> str:
        return f"{self.member}Name"

    @property
    def status_member(self) -> str:
        return f"{self.member}Status"

    @property
    def lifecycle(self) -> Lifecycle:
        from local_mode import runners  # with the state store: botocore loads only when used

        lifecycle: Lifecycle = getattr(runners, self.lifecycle_name)
        return lifecycle

    def call(self, client: SageMakerClient, verb: str, **request: Any) -> Any:
        """The client's ``<verb>_<operation>`` (``describe_training_job``) with ``request``."""
        return getattr(client, f"{verb}_{self.operation}")(**request)

    def describe(self, client: SageMakerClient, name: str) -> dict[str, Any]:
        description: dict[str, Any] = self.call(client, "describe", **{self.name_member: name})
        return description

    def stop(self, client: SageMakerClient, name: str) -> None:
        self.call(client, "stop", **{self.name_member: name})

    def summaries(self, client: SageMakerClient, **filters: Any) -> list[Mapping[str, Any]]:
        """Every page of List<Kind>s (``list_training_jobs``) with ``filters``, in order."""
        rows: list[Mapping[str, Any]] = []
        token = None
        while True:
            page = getattr(client, f"list_{self.operation}s")(
                **filters, **({"NextToken": token} if token else {}))
            rows.extend(page[f"{self.member}Summaries"])
            token = page.get("NextToken")
            if not token:
                return rows


def resource(client: SageMakerClient, kind: JobKind, name: str) -> ResourceDir:
    """The job's state directory; exit 1 naming the state directory if there is no such job."""
    from local_mode.errors import ResourceNotFound

    try:
        return client.store.get(kind.lifecycle.kind, name)
    except ResourceNotFound:
        fail(f"no local {kind.what} named {name!r} in {client.store.root}")


def final_status(client: SageMakerClient, kind: JobKind, name: str,
                 interrupted: bool = False) -> int:
    """Print the job's outcome (on stderr, with its FailureReason, if it Failed); return the exit
    status it maps to."""
    described = kind.describe(client, name)
    status = described[kind.status_member]
    headline, details = kind.outcome(described)
    failed = status == "Failed"
    click.echo(headline, err=failed)
    if failed:
        click.echo(f"FailureReason: {described.get('FailureReason', '(none)')}", err=True)
    for line in details:
        click.echo(line, err=failed)
    if interrupted and status == "Stopped":
        return EXIT_INTERRUPTED
    return EXIT_BY_STATUS.get(status, EXIT_FAILED)


def wait_following(client: SageMakerClient, kind: JobKind, name: str) -> int:
    """Follow the job's log to its end. Ctrl-C stops the job and keeps following until it is
    Stopped, so the CLI never returns while the job's processes are still running."""
    lifecycle = kind.lifecycle
    job = resource(client, kind, name)
    tail, printer = LogTail(job.logs_dir / "all.log"), LinePrinter()
    interrupted = False
    while True:
        try:
            follow(job, lifecycle, tail, printer)
            break
        except KeyboardInterrupt:
            if interrupted:
                click.echo("optml | still stopping; waiting for the job to end", err=True)
                continue
            interrupted = True
            click.echo(f"\noptml | interrupted: stopping {kind.what} {name}", err=True)
            if not lifecycle.settled(kind.describe(client, name)):
                try:
                    kind.stop(client, name)
                except Exception as exc:  # noqa: BLE001 - it may have ended meanwhile
                    click.echo(f"optml | {message_of(exc)}", err=True)
    return final_status(client, kind, name, interrupted)


def short_time(value: datetime | None) -> str:
    """A time as the listings show it: local, to the second."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


def json_default(value: Any) -> Any:
    """JSON for what a description holds beyond JSON's types (its times)."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


# -- the commands ------------------------------------------------------------------------------
def create_command(kind: JobKind, command: str) -> click.Command:
    """``<command> JOB_FILE [--wait] [--backend] [--name] [--state-dir]``: Create<Kind> from a
    request file; with --wait, :func:`wait_following`."""

    @click.command(command, help=f"Create a {kind.what} from JOB_FILE (a Create{kind.member} "
                                 "request, JSON or YAML).")
    # readable=False: a missing or unreadable file is reported by load_request, on one line
    @click.argument("job_file", type=click.Path(path_type=Path, readable=False))
    @click.option("--wait/--no-wait", default=False,
                  help="Stream the job's logs until it ends; Ctrl-C stops the job.")
    @backend_option("hosts")
    @click.option("--name", default=None,
                  help=f"{kind.name_member} to use instead of the one in JOB_FILE.")
    @state_dir_option
    def create(job_file: Path, wait: bool, backend: str | None, name: str | None,
               state_dir: Path | None) -> None:
        from local_mode.request_files import load_request

        with request_errors(job_file):
            request = load_request(job_file)
        if name is not None:
            request[kind.name_member] = name
        client = sagemaker_client(state_dir, backend)
        with request_errors(job_file):
            arn = kind.call(client, "create", **request)[f"{kind.member}Arn"]
        job = request[kind.name_member]
        click.echo(f"Created {kind.what} {job} ({arn})")
        if wait:
            sys.exit(wait_following(client, kind, job))

    return create


def list_command(kind: JobKind, command: str) -> click.Command:
    """``<command> [--status] [--name-contains]``: every job of the kind, oldest first."""

    @click.command(command, help=f"List local {kind.what}s, oldest first.")
    @click.option("--status", "status_equals", default=None, type=click.Choice(STATUSES),
                  help="Only jobs with this status.")
    @click.option("--name-contains", default=None, help="Only jobs whose name contains this.")
    @state_dir_option
    def listing(status_equals: str | None, name_contains: str | None,
                state_dir: Path | None) -> None:
        client = sagemaker_client(state_dir)
        filters: dict[str, Any] = {}
        if status_equals:
            filters["StatusEquals"] = status_equals
        if name_contains:
            filters["NameContains"] = name_contains
        rows = kind.summaries(client, **filters)
        if not rows:
            click.echo(f"no {kind.what}s", err=True)
            return
        header: Sequence[str] = ("NAME", "STATUS", "CREATED", "ENDED",
                                 *(title for title, _ in kind.columns))
        print_table(header, [(r[kind.name_member], r[kind.status_member],
                              short_time(r["CreationTime"]),
                              short_time(r.get(kind.end_time)) or "-",
                              *(cell(r) for _, cell in kind.columns)) for r in rows])

    return listing


def describe_command(kind: JobKind, command: str) -> click.Command:
    """``<command> NAME``: Describe<Kind> as JSON, as the AWS CLI prints it."""

    @click.command(command, help=f"Print Describe{kind.member} of NAME as JSON (works for "
                                 "failed jobs too).")
    @click.argument("name")
    @state_dir_option
    def describe(name: str, state_dir: Path | None) -> None:
        client = sagemaker_client(state_dir)
        resource(client, kind, name)
        description = kind.describe(client, name)
        description.pop("ResponseMetadata", None)  # as the AWS CLI prints it: the job only
        click.echo(json.dumps(description, indent=2, default=json_default))

    return describe


def logs_command(kind: JobKind, command: str) -> click.Command:
    """``<command> NAME [-f]``: the job's ``all.log``; -f follows it to the job's end."""

    @click.command(command,
                   help="Print the job's log (every host's lines, prefixed with the host name).")
    @click.argument("name")
    @click.option("-f", "--follow", "follow_log", is_flag=True,
                  help="Keep printing new lines until the job ends; exit with the job's status.")
    @state_dir_option
    def logs(name: str, follow_log: bool, state_dir: Path | None) -> None:
        client = sagemaker_client(state_dir)
        job = resource(client, kind, name)
        if follow_log:
            follow(job, kind.lifecycle)
            sys.exit(EXIT_BY_STATUS.get(kind.describe(client, name)[kind.status_member],
                                        EXIT_FAILED))
        path = job.logs_dir / "all.log"
        if path.exists():
            out = sys.stdout.buffer
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 16):
                    out.write(chunk)
            out.flush()

    return logs


def stop_command(kind: JobKind, command: str) -> click.Command:
    """``<command> NAME [--wait]``: Stop<Kind>; with --wait, its outcome and exit status."""

    @click.command(command, help=f"Stop{kind.member}: SIGTERM to every host, SIGKILL after "
                                 "OPTML_LOCAL_STOP_GRACE_SECONDS.")
    @click.argument("name")
    @click.option("--wait", is_flag=True, help="Wait until the job has stopped.")
    @state_dir_option
    def stop(name: str, wait: bool, state_dir: Path | None) -> None:
        client = sagemaker_client(state_dir)
        job = resource(client, kind, name)
        from local_mode import runners
        from local_mode.errors import LocalModeError

        try:
            kind.stop(client, name)
        except LocalModeError as exc:
            fail(message_of(exc))
        click.echo(f"Stopping {kind.what} {name}", err=True)
        if wait:
            while not runners.ended(job, kind.lifecycle):
                time.sleep(FOLLOW_INTERVAL)
            sys.exit(final_status(client, kind, name))

    return stop


__all__ = ["STATUSES", "Column", "JobKind", "Outcome", "create_command", "describe_command",
           "final_status", "json_default", "list_command", "logs_command", "resource",
           "short_time", "stop_command", "wait_following"]
