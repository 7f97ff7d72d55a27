"""``optml local train | jobs | describe | logs | stop | metrics``: run and watch local training
jobs from a shell.

Every command is a thin layer over :class:`local_mode.sagemaker.SageMakerClient` and the state
directory, so a job started here can be described, followed or stopped from Python (or another
shell) and the other way round. The client, botocore and friends load inside the commands.

``train`` is :mod:`local_mode.cli.jobs`'s create command; ``jobs``, ``describe``, ``logs`` and
``stop`` are the ``training-jobs`` verbs of :mod:`local_mode.cli.resources` under the short names
the first releases had; ``metrics`` (a job's or an endpoint's) is :mod:`local_mode.cli.metrics`'s,
kept in this group where it always was.
"""

from __future__ import annotations

from local_mode.cli import jobs, resources
from local_mode.cli.kinds import TRAINING_JOBS
from local_mode.cli.metrics import metrics_command

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
