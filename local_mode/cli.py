"""``optml local``: run and watch local training jobs from a shell.

Every command is a thin layer over :class:`local_mode.sagemaker.SageMakerClient` and the state
directory, so a job started here can be described, followed or stopped from Python (or another
shell) and the other way round.

This module is imported by every ``optml`` invocation (``toolkit.cli`` attaches the group),
including the ``optml train`` that runs inside each local host, so it imports only click at
module level and loads the client, botocore and friends inside the commands.

Exit status of ``train --wait``, ``logs -f`` and ``stop --wait``:

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
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from local_mode.cli_check import check  # ``optml check``, attached by toolkit.cli
from local_mode.cli_errors import EXIT_INVALID, request_errors

if TYPE_CHECKING:
    from local_mode.sagemaker import SageMakerClient
    from local_mode.state import ResourceDir

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130
EXIT_BY_STATUS = {"Completed": EXIT_COMPLETED, "Failed": EXIT_FAILED, "Stopped": EXIT_STOPPED}

FOLLOW_INTERVAL = 0.1
"""How often a follower looks for new log bytes and for the end of the job (seconds)."""
PROGRESS_SUFFIX = b"bytes staged so far"


# -- shared options --------------------------------------------------------------------------
def _state_dir_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="State directory (default: OPTML_LOCAL_STATE_DIR, else ~/.optml/local).")(command)


def _client(state_dir: Path | None, backend: str | None = None) -> SageMakerClient:
    from local_mode.sagemaker import SageMakerClient
    from toolkit.errors import OptmlError
    from toolkit.settings import Settings

    try:
        settings = Settings.from_environ()
    except OptmlError as exc:
        raise click.ClickException(str(exc)) from None
    return SageMakerClient(settings, state_dir=state_dir, backend=backend)


def _resource(client: SageMakerClient, name: str) -> ResourceDir:
    from local_mode.errors import ResourceNotFound

    try:
        return client.store.get("training-jobs", name)
    except ResourceNotFound:
        raise click.ClickException(f"no local training job named {name!r} in "
                                   f"{client.store.root}") from None


def _client_error_message(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc)


# -- log following ---------------------------------------------------------------------------
def job_ended(client: SageMakerClient, resource: ResourceDir) -> bool:
    """The job is terminal and its runner has exited, so nothing more will be logged.

    The runner writes the final status before its last log line and removes its pid file only
    after that, so waiting for both is what makes a follower print the final line too.
    """
    from local_mode.sagemaker import TERMINAL
    from toolkit.pids import pid_alive

    status = client.describe_training_job(TrainingJobName=resource.name)["TrainingJobStatus"]
    if status not in TERMINAL:
        return False
    pid = resource.runner_pid()
    return pid is None or not pid_alive(pid)


class LogTail:
    """The complete lines appended to a log file since the last read (the file may not exist
    yet). Keeps its position, so a follower interrupted by Ctrl-C resumes without repeats."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.position = 0
        self._pending = b""

    def read_lines(self) -> list[bytes]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.position)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self.position += len(chunk)
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        return [line + b"\n" for line in lines]

    def rest(self) -> list[bytes]:
        """What is left once the writer is gone: the last line even without its newline."""
        lines = self.read_lines()
        if self._pending:
            lines.append(self._pending + b"\n")
            self._pending = b""
        return lines


def follow_lines(tail: LogTail, ended: Callable[[], bool],
                 interval: float = FOLLOW_INTERVAL) -> Iterator[bytes]:
    """Yield the lines of ``tail`` as they are appended until ``ended()`` is true and all that
    was written before has been read."""
    while True:
        finished = ended()  # sample *before* reading, so the last lines are never missed
        if finished:
            yield from tail.rest()
            return
        lines = tail.read_lines()
        yield from lines
        if not lines:
            time.sleep(interval)


class LinePrinter:
    """Write log lines to stdout; staging-progress lines overwrite each other on a terminal."""

    def __init__(self, stream: Any | None = None) -> None:
        self.stream = stream or click.get_text_stream("stdout")
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._progress_shown = False

    def __call__(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip("\n")
        if self.tty and line.rstrip().endswith(PROGRESS_SUFFIX):
            self.stream.write("\r\x1b[K" + text)
            self._progress_shown = True
        else:
            if self._progress_shown:
                self.stream.write("\r\x1b[K")
                self._progress_shown = False
            self.stream.write(text + "\n")
        self.stream.flush()


def _follow(client: SageMakerClient, resource: ResourceDir, tail: LogTail | None = None,
            printer: LinePrinter | None = None) -> None:
    tail = tail or LogTail(resource.logs_dir / "all.log")
    printer = printer or LinePrinter()
    for line in follow_lines(tail, lambda: job_ended(client, resource)):
        printer(line)


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
    resource = _resource(client, name)
    tail, printer = LogTail(resource.logs_dir / "all.log"), LinePrinter()
    interrupted = False
    while True:
        try:
            _follow(client, resource, tail, printer)
            break
        except KeyboardInterrupt:
            if interrupted:
                click.echo("optml | still stopping; waiting for the job to end", err=True)
                continue
            interrupted = True
            click.echo(f"\noptml | interrupted: stopping training job {name}", err=True)
            from local_mode.sagemaker import TERMINAL

            if client.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] \
                    not in TERMINAL:
                try:
                    client.stop_training_job(TrainingJobName=name)
                except Exception as exc:  # noqa: BLE001 - it may have ended meanwhile
                    click.echo(f"optml | {_client_error_message(exc)}", err=True)
    return _final_status(client, name, interrupted)


# -- commands --------------------------------------------------------------------------------
@click.group("local")
def local() -> None:
    """Run training jobs locally, exactly as the service would (see docs/local-mode.md)."""


@local.command("train")
# readable=False: a missing or unreadable file is reported by load_request, on one line
@click.argument("job_file", type=click.Path(path_type=Path, readable=False))
@click.option("--wait/--no-wait", default=False,
              help="Stream the job's logs until it ends; Ctrl-C stops the job.")
@click.option("--backend", type=click.Choice(["auto", "docker", "process"]), default=None,
              help="Where hosts run (default: OPTML_LOCAL_BACKEND, else auto).")
@click.option("--name", default=None,
              help="TrainingJobName to use instead of the one in JOB_FILE.")
@_state_dir_option
def train_command(job_file: Path, wait: bool, backend: str | None, name: str | None,
                  state_dir: Path | None) -> None:
    """Create a training job from JOB_FILE (a CreateTrainingJob request, JSON or YAML)."""
    from local_mode.request_files import load_request

    with request_errors(job_file):
        request = load_request(job_file)
    if name is not None:
        request["TrainingJobName"] = name
    client = _client(state_dir, backend)
    with request_errors(job_file):
        arn = client.create_training_job(**request)["TrainingJobArn"]
    job = request["TrainingJobName"]
    click.echo(f"Created training job {job} ({arn})")
    if wait:
        sys.exit(_wait_following(client, job))


@local.command("jobs")
@click.option("--status", "status_equals", default=None,
              type=click.Choice(["InProgress", "Completed", "Failed", "Stopping", "Stopped"]),
              help="Only jobs with this status.")
@click.option("--name-contains", default=None, help="Only jobs whose name contains this.")
@_state_dir_option
def jobs_command(status_equals: str | None, name_contains: str | None,
                 state_dir: Path | None) -> None:
    """List local training jobs, oldest first."""
    client = _client(state_dir)
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
    width = max(len("NAME"), *(len(r["TrainingJobName"]) for r in rows))
    click.echo(f"{'NAME':<{width}}  {'STATUS':<10}  {'CREATED':<19}  ENDED")
    for r in rows:
        ended = _short_time(r.get("TrainingEndTime")) or "-"
        click.echo(f"{r['TrainingJobName']:<{width}}  {r['TrainingJobStatus']:<10}  "
                   f"{_short_time(r['CreationTime']):<19}  {ended}")


def _short_time(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


@local.command("describe")
@click.argument("name")
@_state_dir_option
def describe_command(name: str, state_dir: Path | None) -> None:
    """Print DescribeTrainingJob of NAME as JSON (works for failed jobs too)."""
    client = _client(state_dir)
    _resource(client, name)
    description = client.describe_training_job(TrainingJobName=name)
    description.pop("ResponseMetadata", None)  # as the AWS CLI prints it: the job only
    click.echo(json.dumps(description, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


@local.command("logs")
@click.argument("name")
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing new lines until the job ends; exit with the job's status.")
@_state_dir_option
def logs_command(name: str, follow: bool, state_dir: Path | None) -> None:
    """Print the job's log (every host's lines, prefixed with the host name)."""
    client = _client(state_dir)
    resource = _resource(client, name)
    if follow:
        _follow(client, resource)
        sys.exit(EXIT_BY_STATUS.get(
            client.describe_training_job(TrainingJobName=name)["TrainingJobStatus"],
            EXIT_FAILED))
    path = resource.logs_dir / "all.log"
    if path.exists():
        out = click.get_binary_stream("stdout")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 16):
                out.write(chunk)
        out.flush()


@local.command("stop")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait until the job has stopped.")
@_state_dir_option
def stop_command(name: str, wait: bool, state_dir: Path | None) -> None:
    """StopTrainingJob: SIGTERM to every host, SIGKILL after OPTML_LOCAL_STOP_GRACE_SECONDS."""
    client = _client(state_dir)
    resource = _resource(client, name)
    from local_mode.errors import LocalModeError

    try:
        client.stop_training_job(TrainingJobName=name)
    except LocalModeError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Stopping training job {name}", err=True)
    if wait:
        while not job_ended(client, resource):
            time.sleep(FOLLOW_INTERVAL)
        sys.exit(_final_status(client, name))


@local.command("metrics")
@click.argument("name")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also draw the series into this PNG (needs optml[plot]).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON Lines instead of a table.")
@_state_dir_option
def metrics_command(name: str, plot_file: Path | None, as_json: bool,
                    state_dir: Path | None) -> None:
    """Print every metric point MetricDefinitions extracted from the job's log."""
    from local_mode.training.metrics import read_series

    client = _client(state_dir)
    resource = _resource(client, name)
    series = read_series(resource.metrics_file)
    if plot_file is not None:
        from local_mode.plot import PlotUnavailable, plot_series

        try:
            plot_series(series, plot_file, title=name)
        except PlotUnavailable as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"wrote {plot_file}", err=True)
    if as_json:
        for point in series:
            click.echo(json.dumps(point))
        return
    if not series:
        click.echo("no metric points (does the job define MetricDefinitions?)", err=True)
        return
    width = max(len("METRIC"), *(len(p["MetricName"]) for p in series))
    click.echo(f"{'TIMESTAMP':<32}  {'METRIC':<{width}}  VALUE")
    for point in series:
        click.echo(f"{point['Timestamp']:<32}  {point['MetricName']:<{width}}  "
                   f"{point['Value']:g}")


def _register_endpoint_commands() -> None:
    from local_mode.cli_endpoints import register

    register(local)


_register_endpoint_commands()

__all__ = ["EXIT_COMPLETED", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_INVALID", "EXIT_STOPPED",
           "LogTail", "check", "follow_lines", "job_ended", "local"]
