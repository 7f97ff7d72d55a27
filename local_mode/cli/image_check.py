"""``optml check IMAGE``: the contract checks against any image, as a table (docs/check.md).

Imported by every ``optml check`` invocation, so it imports only click and the check names at
module level; the checks load inside the command.

Exit status: 0 every check passed (a SKIP counts only with ``--allow-skip``); 1 a check failed
or was skipped; 2 bad input (unknown image, missing or invalid file, bad option, malformed
environment variable), no Docker engine or a missing ``local`` extra: one line on stderr
(``optml check: ...``), nothing was run or left behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from local_mode.check.names import ALL_CHECKS
from local_mode.cli.errors import OneLineCommand, request_errors
from local_mode.cli.options import key_value_pairs


# The file options take any path: a missing or unreadable file is reported by CheckOptions, on
# one line, rather than by click's multi-line usage error. OneLineCommand: a bad option value, a
# malformed variable or a missing extra is one line and exit 2 as well.
@click.command("check", cls=OneLineCommand, label="optml check")
@click.argument("image")
@click.option("--job", type=click.Path(path_type=Path, readable=False), default=None,
              help="A CreateTrainingJob request (JSON or YAML) to train on instead of the "
                   "generated job; its TrainingImage is replaced by IMAGE.")
@click.option("--failing-job", type=click.Path(path_type=Path, readable=False),
              default=None,
              help="A job that makes the program fail (default: the job without its channels).")
@click.option("--failing-env", "failing_env", multiple=True, metavar="KEY=VALUE",
              help="Environment that makes the job fail, for the failure-file run (repeatable).")
@click.option("--failing-hyperparameter", "failing_hyperparameters", multiple=True,
              metavar="KEY=VALUE",
              help="Hyperparameter that makes the job fail, for the failure-file run "
                   "(repeatable).")
@click.option("--model-data", default=None,
              help="model.tar.gz or a directory (or a file:// or s3:// URL) to serve "
                   "(default: the model the train check produced).")
@click.option("--sample", type=click.Path(path_type=Path, readable=False), default=None,
              help="A request body /invocations must answer 200.")
@click.option("--content-type", default=None, help="The sample's Content-Type.")
@click.option("--accept", default=None, help="Accept header sent with the sample.")
@click.option("-e", "--env", "env", multiple=True, metavar="KEY=VALUE",
              help="Environment of the training and serving containers (repeatable).")
@click.option("-H", "--hyperparameter", "hyperparameters", multiple=True, metavar="KEY=VALUE",
              help="Hyperparameter of the training jobs (repeatable).")
@click.option("--only", "only", multiple=True, type=click.Choice(ALL_CHECKS),
              help="Run only this check (repeatable; default: all).")
@click.option("--grace", type=float, default=30.0, show_default=True,
              help="Seconds a container may take to exit after SIGTERM.")
@click.option("--startup-timeout", type=float, default=60.0, show_default=True,
              help="Start-up budget: seconds from docker run to the first 200 on /ping.")
@click.option("--ready-timeout", type=float, default=180.0, show_default=True,
              help="How long the ping check waits for a 200 at all.")
@click.option("--train-timeout", type=float, default=600.0, show_default=True,
              help="Seconds a training run may take before it is killed.")
@click.option("--sigterm-after", type=float, default=None,
              help="Seconds into the training run to send SIGTERM (default: half the "
                   "unsignalled run's time, at most 2).")
@click.option("--allow-skip", is_flag=True,
              help="Exit 0 when nothing failed even if some checks were skipped.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(image: str, job: Path | None, failing_job: Path | None,
          failing_env: tuple[str, ...], failing_hyperparameters: tuple[str, ...],
          model_data: str | None,
          sample: Path | None, content_type: str | None, accept: str | None,
          env: tuple[str, ...], hyperparameters: tuple[str, ...], only: tuple[str, ...],
          grace: float, startup_timeout: float, ready_timeout: float, train_timeout: float,
          sigterm_after: float | None, allow_skip: bool, as_json: bool) -> None:
    """Run the /opt/ml contract checks against IMAGE (in the local Docker engine)."""
    from local_mode.check import CheckInputError, CheckOptions, format_table, run_checks
    from toolkit.errors import OptmlError
    from toolkit.settings import Settings

    # Bad input, and DockerUnavailable (a LocalModeError): one line, exit 2.
    with request_errors(label="optml check", also=(CheckInputError, OptmlError)):
        options = CheckOptions(
            job=job, failing_job=failing_job,
            failing_environment=key_value_pairs("--failing-env", failing_env),
            failing_hyperparameters=key_value_pairs("--failing-hyperparameter",
                                                    failing_hyperparameters),
            model_data=model_data, sample=sample, content_type=content_type, accept=accept,
            environment=key_value_pairs("--env", env),
            hyperparameters=key_value_pairs("--hyperparameter", hyperparameters), checks=only,
            grace=grace, startup_timeout=startup_timeout, ready_timeout=ready_timeout,
            train_timeout=train_timeout, sigterm_after=sigterm_after)
        report = run_checks(image, options, settings=Settings.from_environ())
    click.echo(report.to_json() if as_json else format_table(report))
    sys.exit(report.exit_status(allow_skip))


__all__ = ["check"]
