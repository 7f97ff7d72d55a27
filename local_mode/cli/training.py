"""``optml local train | jobs | describe | logs | stop | metrics``: run and watch local training
jobs from a shell.

Every command is a thin layer over :class:`local_mode.sagemaker.SageMakerClient` and the state
directory, so a job started here can be described, followed or stopped from Python (or another
shell) and the other way round. The client, botocore and friends load inside the commands.

All but ``metrics`` are the commands every job kind has, built by :mod:`local_mode.cli.jobs`
from :data:`TRAINING_JOBS` (that module also gives the exit status of ``train --wait``,
``logs -f`` and ``stop --wait``); what is training's own is how a finished job reads (its
SecondaryStatus, billable seconds and model artifacts) and its metrics.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from local_mode.cli import jobs
from local_mode.cli.errors import fail
from local_mode.cli.options import sagemaker_client, state_dir_option
from local_mode.cli.table import print_table


def _outcome(described: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``Training job NAME: Completed (Completed) after 3 s`` and the model's URI."""
    status = described["TrainingJobStatus"]
    seconds = described.get("TrainingTimeInSeconds")
    line = (f"Training job {described['TrainingJobName']}: {status} "
            f"({described.get('SecondaryStatus')})")
    if seconds is not None:
        line += f" after {seconds} s"
        if described.get("EnableManagedSpotTraining"):
            line += f", billable {described.get('BillableTimeInSeconds')} s"
    details = []
    if status != "Failed" and described.get("ModelArtifacts"):
        details.append(f"Model artifacts: {described['ModelArtifacts']['S3ModelArtifacts']}")
    return line, details


TRAINING_JOBS = jobs.JobKind("training job", "TrainingJob", "training_job", "TRAINING",
                             "TrainingEndTime", _outcome)
"""Training jobs as the shared job commands see them."""

train_command = jobs.create_command(TRAINING_JOBS, "train")
jobs_command = jobs.list_command(TRAINING_JOBS, "jobs")
describe_command = jobs.describe_command(TRAINING_JOBS, "describe")
logs_command = jobs.logs_command(TRAINING_JOBS, "logs")
stop_command = jobs.stop_command(TRAINING_JOBS, "stop")


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
    resource = jobs.resource(client, TRAINING_JOBS, name)
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
