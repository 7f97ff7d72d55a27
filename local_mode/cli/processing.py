"""``optml local process | processing-jobs | describe-processing-job | processing-logs |
stop-processing-job``: run and watch local processing jobs from a shell.

They are the training commands' twins (``train``, ``jobs``, ``describe``, ``logs``, ``stop``),
built by the same factories of :mod:`local_mode.cli.jobs` -- same options, same Ctrl-C handling,
same exit statuses -- and named as the endpoint commands name what is not training's
(``delete-endpoint``): verb and resource. What is processing's own is how a finished job reads:
how long it ran, its ExitMessage and where its outputs went.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local_mode.cli import jobs
from local_mode.cli.errors import one_line

EXIT_MESSAGE_CHARS = 60
"""How much of an ExitMessage the listing shows (describe has all of it)."""


def _outcome(described: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``Processing job NAME: Completed after 3 s``, then its ExitMessage and, once Completed,
    where each output was uploaded. A job stopped by its MaxRuntimeInSeconds says so (the
    service puts that in FailureReason of a Stopped job)."""
    status = described["ProcessingJobStatus"]
    line = f"Processing job {described['ProcessingJobName']}: {status}"
    if status == "Stopped" and described.get("FailureReason"):
        line += f" ({described['FailureReason']})"
    started, ended = described.get("ProcessingStartTime"), described.get("ProcessingEndTime")
    if started is not None and ended is not None:
        line += f" after {max(0, round((ended - started).total_seconds()))} s"
    details = []
    if described.get("ExitMessage"):
        details.append(f"ExitMessage: {described['ExitMessage']}")
    if status == "Completed":
        for output in (described.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            if output.get("S3Output"):
                details.append(f"Output {output['OutputName']}: {output['S3Output']['S3Uri']}")
    return line, details


def _exit_message(summary: Mapping[str, Any]) -> str:
    text = one_line(summary.get("ExitMessage") or "") or "-"
    return text if len(text) <= EXIT_MESSAGE_CHARS else text[:EXIT_MESSAGE_CHARS - 3] + "..."


PROCESSING_JOBS = jobs.JobKind("processing job", "ProcessingJob", "processing_job", "PROCESSING",
                               "ProcessingEndTime", _outcome,
                               columns=(("EXIT MESSAGE", _exit_message),))
"""Processing jobs as the shared job commands see them."""

COMMANDS = (jobs.create_command(PROCESSING_JOBS, "process"),
            jobs.list_command(PROCESSING_JOBS, "processing-jobs"),
            jobs.describe_command(PROCESSING_JOBS, "describe-processing-job"),
            jobs.logs_command(PROCESSING_JOBS, "processing-logs"),
            jobs.stop_command(PROCESSING_JOBS, "stop-processing-job"))
"""The processing commands, attached to ``optml local`` by :mod:`local_mode.cli`."""

__all__ = ["COMMANDS", "PROCESSING_JOBS"]
