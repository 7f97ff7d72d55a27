"""``optml local train | jobs | describe | logs | stop | metrics``: run and watch local training
jobs from a shell.

Every command is a thin layer over :class:`local_mode.sagemaker.SageMakerClient` and the state
directory, so a job started here can be described, followed or stopped from Python (or another
shell) and the other way round. The client, botocore and friends load inside the commands.

Exit status of ``train --wait``, ``logs -f`` and ``stop --wait`` (:mod:`local_mode.cli.errors`):

==========  ============================================================================
0           the job Completed
1           the job Failed (its FailureReason is printed), or a command-level error
2           the job file or the request is invalid (the message names the file and field)
3           the job was Stopped (StopTrainingJob, MaxRuntimeInSeconds, MaxWaitTimeInSeconds)
130         Ctrl-C: the job was stopped on the user's request and reached Stopped
==========  ============================================================================
"""

from __future__ import annotations

import json
import sys
import time
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
    from local_mode.sagemaker import SageMakerClient
    from local_mode.state import ResourceDir


def _resource(client: SageMakerClient, name: str) -> ResourceDir:
    from local_mode.errors import ResourceNotFound

    try:
        return client.store.get("training-jobs", name)
    except ResourceNotFound:
        fail(f"no local training job named {name!r} in {client.store.root}")


def _final_status(client: SageMakerClient, name: str, interrupted: bool = False) -> int:
    """Print the one-line outcome; return the exit status it maps to."""
    d = client.describe_training_job(TrainingJobName=name)
    status = d["TrainingJobStatus"]
    seconds = d.get("TrainingTimeInSeconds")
    line = f"Training job {name}: {status} ({d.get('SecondaryStatus')})"
    if seconds is not None:
        line += f" after {seconds} s"
        if d.get("EnableManagedSpotTraining"):
            line += f", billable {d.get('BillableTimeInSeconds')} s"
    if status == "Failed":
        click.echo(line, err=True)
        click.echo(f"FailureReason: {d.get('FailureReason', '(none)')}", err=True)
    else:
        click.echo(line)
        if d.get("ModelArtifacts"):
            click.echo(f"Model artifacts: {d['ModelArtifacts']['S3ModelArtifacts']}")
    if interrupted and status == "Stopped":
        return EXIT_INTERRUPTED
    return EXIT_BY_STATUS.get(status, EXIT_FAILED)


def _wait_following(client: SageMakerClient, name: str) -> int:
    """Follow the job's log to its end. Ctrl-C stops the job and keeps following until it is
    Stopped, so the CLI never returns while the job's processes are still running."""
    from local_mode import runners  # with the state store: botocore loads only when used

    resource = _resource(client, name)
    tail, printer = LogTail(resource.logs_dir / "all.log"), LinePrinter()
    interrupted = False
    while True:
        try:
            follow(resource, tail, printer)
            break
        except KeyboardInterrupt:
            if interrupted:
                click.echo("optml | still stopping; waiting for the job to end", err=True)
                continue
            interrupted = True
            click.echo(f"\noptml | interrupted: stopping training job {name}", err=True)
            if not runners.TRAINING.settled(client.describe_training_job(TrainingJobName=name)):
                try:
                    client.stop_training_job(TrainingJobName=name)
                except Exception as exc:  # noqa: BLE001 - it may have ended meanwhile
                    click.echo(f"optml | {message_of(exc)}", err=True)
    return _final_status(client, name, interrupted)


@click.command("train")
# readable=False: a missing or unreadable file is reported by load_request, on one line
@click.argument("job_file", type=click.Path(path_type=Path, readable=False))
@click.option("--wait/--no-wait", default=False,
              help="Stream the job's logs until it ends; Ctrl-C stops the job.")
@backend_option("hosts")
@click.option("--name", default=None,
              help="TrainingJobName to use instead of the one in JOB_FILE.")
@state_dir_option
def train_command(job_file: Path, wait: bool, backend: str | None, name: str | None,
                  state_dir: Path | None) -> None:
    """Create a training job from JOB_FILE (a CreateTrainingJob request, JSON or YAML)."""
    from local_mode.request_files import load_request

    with request_errors(job_file):
        request = load_request(job_file)
    if name is not None:
        request["TrainingJobName"] = name
    client = sagemaker_client(state_dir, backend)
    with request_errors(job_file):
        arn = client.create_training_job(**request)["TrainingJobArn"]
    job = request["TrainingJobName"]
    click.echo(f"Created training job {job} ({arn})")
    if wait:
        sys.exit(_wait_following(client, job))


@click.command("jobs")
@click.option("--status", "status_equals", default=None,
              type=click.Choice(["InProgress", "Completed", "Failed", "Stopping", "Stopped"]),
              help="Only jobs with this status.")
@click.option("--name-contains", default=None, help="Only jobs whose name contains this.")
@state_dir_option
def jobs_command(status_equals: str | None, name_contains: str | None,
                 state_dir: Path | None) -> None:
    """List local training jobs, oldest first."""
    client = sagemaker_client(state_dir)
    filters: dict[str, Any] = {}
    if status_equals:
        filters["StatusEquals"] = status_equals
    if name_contains:
        filters["NameContains"] = name_contains
    rows = []
    token = None
    while True:
        page = client.list_training_jobs(**filters, **({"NextToken": token} if token else {}))
        rows.extend(page["TrainingJobSummaries"])
        token = page.get("NextToken")
        if not token:
            break
    if not rows:
        click.echo("no training jobs", err=True)
        return
    print_table(("NAME", "STATUS", "CREATED", "ENDED"),
                [(r["TrainingJobName"], r["TrainingJobStatus"], _short_time(r["CreationTime"]),
                  _short_time(r.get("TrainingEndTime")) or "-") for r in rows])


def _short_time(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


@click.command("describe")
@click.argument("name")
@state_dir_option
def describe_command(name: str, state_dir: Path | None) -> None:
    """Print DescribeTrainingJob of NAME as JSON (works for failed jobs too)."""
    client = sagemaker_client(state_dir)
    _resource(client, name)
    description = client.describe_training_job(TrainingJobName=name)
    description.pop("ResponseMetadata", None)  # as the AWS CLI prints it: the job only
    click.echo(json.dumps(description, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


@click.command("logs")
@click.argument("name")
@click.option("-f", "--follow", "follow_log", is_flag=True,
              help="Keep printing new lines until the job ends; exit with the job's status.")
@state_dir_option
def logs_command(name: str, follow_log: bool, state_dir: Path | None) -> None:
    """Print the job's log (every host's lines, prefixed with the host name)."""
    client = sagemaker_client(state_dir)
    resource = _resource(client, name)
    if follow_log:
        follow(resource)
        sys.exit(EXIT_BY_STATUS.get(
            client.describe_training_job(TrainingJobName=name)["TrainingJobStatus"],
            EXIT_FAILED))
    path = resource.logs_dir / "all.log"
    if path.exists():
        out = sys.stdout.buffer
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 16):
                out.write(chunk)
        out.flush()


@click.command("stop")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait until the job has stopped.")
@state_dir_option
def stop_command(name: str, wait: bool, state_dir: Path | None) -> None:
    """StopTrainingJob: SIGTERM to every host, SIGKILL after OPTML_LOCAL_STOP_GRACE_SECONDS."""
    client = sagemaker_client(state_dir)
    resource = _resource(client, name)
    from local_mode import runners
    from local_mode.errors import LocalModeError

    try:
        client.stop_training_job(TrainingJobName=name)
    except LocalModeError as exc:
        fail(message_of(exc))
    click.echo(f"Stopping training job {name}", err=True)
    if wait:
        while not runners.ended(resource, runners.TRAINING):
            time.sleep(FOLLOW_INTERVAL)
        sys.exit(_final_status(client, name))


@click.command("metrics")
@click.argument("name")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also draw the series into this PNG (needs optml[plot]).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON Lines instead of a table.")
@state_dir_option
def metrics_command(name: str, plot_file: Path | None, as_json: bool,
                    state_dir: Path | None) -> None:
    """Print every metric point MetricDefinitions extracted from the job's log."""
    from local_mode.training.metrics import read_series

    client = sagemaker_client(state_dir)
    resource = _resource(client, name)
    series = read_series(resource.metrics_file)
    if plot_file is not None:
        from local_mode.plot import PlotUnavailable, plot_series

        try:
            plot_series(series, plot_file, title=name)
        except PlotUnavailable as exc:
            fail(str(exc))
        click.echo(f"wrote {plot_file}", err=True)
    if as_json:
        for point in series:
            click.echo(json.dumps(point))
        return
    if not series:
        click.echo("no metric points (does the job define MetricDefinitions?)", err=True)
        return
    print_table(("TIMESTAMP", "METRIC", "VALUE"),
                [(str(p["Timestamp"]), p["MetricName"], f"{p['Value']:g}") for p in series])


COMMANDS = (train_command, jobs_command, describe_command, logs_command, stop_command,
            metrics_command)
"""The training commands, attached to ``optml local`` by :mod:`local_mode.cli`."""

__all__ = ["COMMANDS"]
