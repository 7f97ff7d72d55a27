"""What creating a job from the CLI means whatever its kind: ``train`` and ``process`` (and, with
its own progress, ``transform``) create it from a job file, say which backend runs it, and with
``--wait`` follow it to its end.

The other verbs of a job (list, describe, logs, stop, wait, rm) are every kind's and live in
:mod:`local_mode.cli.resources`. Exit statuses (:mod:`local_mode.cli.errors`):

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

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from local_mode.cli.errors import request_errors
from local_mode.cli.kinds import ResourceKind
from local_mode.cli.logs import LinePrinter, LogOptions, LogSet, print_logs
from local_mode.cli.options import backend_option, sagemaker_client, state_dir_option
from local_mode.cli.resources import report_outcome
from local_mode.error_text import message_of

if TYPE_CHECKING:
    from local_mode.sagemaker import SageMakerClient


def backend_note(client: SageMakerClient, kind: ResourceKind, name: str) -> str:
    """`` on docker`` -- with why, when ``auto`` chose it -- for the line that says it was
    created."""
    backend = kind.stored(client, name).get("Backend")
    if not backend:
        return ""
    if client.backend != "auto":
        return f" on {backend}"
    why = "a Docker engine answered" if backend == "docker" else "no Docker engine answered"
    return f" on {backend} (auto: {why}; --backend or OPTML_LOCAL_BACKEND to choose)"


def load_job_file(job_file: Path, kind: ResourceKind, name: str | None) -> dict[str, Any]:
    """The request in ``job_file`` (its relative paths resolved against it), ``--name``
    applied; a file that cannot be used ends the command on one line, exit 2."""
    from local_mode.request_files import load_request

    with request_errors(job_file):
        request = load_request(job_file)
    if name is not None:
        request[kind.name_member] = name
    return request


def wait_following(client: SageMakerClient, kind: ResourceKind, name: str) -> int:
    """Follow the job's log to its end. Ctrl-C stops the job and keeps following until it is
    Stopped, so the CLI never returns while the job's processes are still running."""
    from local_mode import runners

    lifecycle = kind.lifecycle
    job = kind.resource(client, name)
    logs, printer = LogSet(job.logs_dir, job_log=True), LinePrinter()
    interrupted = False
    while True:
        try:  # the log set keeps its place: after a Ctrl-C it goes on where it was
            print_logs(logs, LogOptions(), printer=printer,
                       follow_until=lambda: runners.ended(job, lifecycle))
            break
        except KeyboardInterrupt:
            if interrupted:
                click.echo("optml | still stopping; waiting for the job to end", err=True)
                continue
            interrupted = True
            click.echo(f"\noptml | interrupted: stopping {kind.what} {name}", err=True)
            _stop_if_running(client, kind, name)
    return report_outcome(kind, kind.describe(client, name), interrupted)


def _stop_if_running(client: SageMakerClient, kind: ResourceKind, name: str) -> None:
    from local_mode.errors import LocalModeError

    if not kind.lifecycle.settled(kind.describe(client, name)):
        try:
            kind.stop(client, name)
        except LocalModeError as exc:  # it ended meanwhile
            click.echo(f"optml | {message_of(exc)}", err=True)


def stop_after_interrupt(client: SageMakerClient, kind: ResourceKind, name: str) -> None:
    """After a Ctrl-C: stop the job and wait until it has ended, so no process of it is left
    when the command returns; a further Ctrl-C only says it is still stopping."""
    from local_mode import housekeeping

    click.echo(f"interrupted: stopping {kind.what} {name}", err=True)
    while True:
        try:
            housekeeping.stop_and_wait(client, kind.lifecycle, name)
            return
        except KeyboardInterrupt:
            click.echo("still stopping; waiting for the job to end", err=True)


def create_command(kind: ResourceKind, command: str) -> click.Command:
    """``<command> JOB_FILE [--wait] [--backend] [--name] [--state-dir]``: Create<Kind> from a
    request file; with --wait, :func:`wait_following`."""

    @click.command(command, short_help=f"Create a {kind.what} from a job file.",
                   help=f"Create a {kind.what} from JOB_FILE (a Create{kind.member} "
                                 "request, JSON or YAML; relative paths in it are relative to "
                                 "the file).")
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
        request = load_job_file(job_file, kind, name)
        client = sagemaker_client(state_dir, backend)
        with request_errors(job_file):
            arn = kind.call(client, "create", **request)[f"{kind.member}Arn"]
        job = request[kind.name_member]
        click.echo(f"Created {kind.what} {job} ({arn}){backend_note(client, kind, job)}")
        if wait:
            sys.exit(wait_following(client, kind, job))

    return create


__all__ = ["backend_note", "create_command", "load_job_file", "stop_after_interrupt",
           "wait_following"]
