"""``optml local process | describe-processing-job | processing-logs | stop-processing-job``:
run and watch local processing jobs from a shell.

``process`` is :mod:`local_mode.cli.jobs`'s create command, as ``train`` is training's; the
others are the ``processing-jobs`` verbs of :mod:`local_mode.cli.resources` under the names of
the first release (``optml local processing-jobs`` alone lists them).
"""

from __future__ import annotations

from local_mode.cli import jobs, resources
from local_mode.cli.kinds import PROCESSING_JOBS

COMMANDS = (jobs.create_command(PROCESSING_JOBS, "process"),
            # the first release's names of processing-jobs describe/logs/stop: kept working,
            # left out of --help
            resources.describe_command(PROCESSING_JOBS, "describe-processing-job", hidden=True),
            resources.logs_command(PROCESSING_JOBS, "processing-logs", hidden=True),
            resources.stop_command(PROCESSING_JOBS, "stop-processing-job", hidden=True))
"""The processing commands, attached to ``optml local`` by :mod:`local_mode.cli`."""

__all__ = ["COMMANDS", "PROCESSING_JOBS"]
