"""``optml local train | jobs | describe | logs | stop | metrics``: run and watch local training
jobs from a shell.

Every command is a thin layer over :class:`local_mode.sagemaker.SageMakerClient` and the state
directory, so a job started here can be described, followed or stopped from Python (or another
shell) and the other way round. The client, botocore and friends load inside the commands.

``train`` is :mod:`local_mode.cli.jobs`'s create command; ``jobs``, ``describe``, ``logs`` and
``stop`` are the ``training-jobs`` verbs of :mod:`local_mode.cli.resources` under the short names
the first releases had; what is training's own is its metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from local_mode.cli import jobs, resources
from local_mode.cli.errors import EXIT_FAILED, EXIT_INVALID, fail
from local_mode.cli.kinds import TRAINING_JOBS
from local_mode.cli.options import complete_names, sagemaker_client, state_dir_option
from local_mode.cli.table import print_table


@click.command("metrics", short_help="Print or plot a training job's metrics.")
@click.argument("name", shell_complete=complete_names(TRAINING_JOBS.command))
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also draw the series into this PNG (needs optml[plot]).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON Lines instead of a table.")
@state_dir_option
def metrics_command(name: str, plot_file: Path | None, as_json: bool,
                    state_dir: Path | None) -> None:
    """Print every metric point MetricDefinitions extracted from the job's log."""
    from local_mode.training.metrics import read_series

    client = sagemaker_client(state_dir)
    resource = TRAINING_JOBS.resource(client, name)
    series = read_series(resource.metrics_file)
    if plot_file is not None:
        from local_mode.plot import PlotExtraMissing, PlotUnavailable, plot_series

        try:
            plot_series(series, plot_file, title=name)
        except PlotUnavailable as exc:  # a missing extra is bad input (2), no points a failure
            fail(str(exc), EXIT_INVALID if isinstance(exc, PlotExtraMissing) else EXIT_FAILED)
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


COMMANDS = (jobs.create_command(TRAINING_JOBS, "train"),
            # the first releases' names of training-jobs ls/describe/logs/stop: kept working,
            # left out of --help, where they read as if they took any kind
            resources.ls_command(TRAINING_JOBS, "jobs", hidden=True),
            resources.describe_command(TRAINING_JOBS, "describe", hidden=True),
            resources.logs_command(TRAINING_JOBS, "logs", hidden=True),
            resources.stop_command(TRAINING_JOBS, "stop", hidden=True),
            metrics_command)
"""The training commands, attached to ``optml local`` by :mod:`local_mode.cli`."""

__all__ = ["COMMANDS"]
