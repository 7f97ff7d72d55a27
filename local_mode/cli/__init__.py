"""The command-line front end of local mode: ``optml local ...`` and ``optml check IMAGE``.

``toolkit.cli`` finds both through the ``optml.commands`` entry-point group (pyproject.toml), so
the toolkit never names this package and an install without it simply has no such commands.

=================  ===========================================================================
``errors``         the exit-code table, the error prefix, :func:`~.errors.fail` and
                   :func:`~.errors.request_errors` (bad input: one line, exit 2)
``options``        ``--state-dir``, ``--backend``, ``KEY=VALUE`` pairs, the client factories
``follow``         following a job's log to its end (``train --wait``)
``kinds``          every resource kind as data (:class:`~.kinds.ResourceKind`)
``resources``      the verbs every kind has: ``optml local <kind> ls | describe | logs | stop |
                   wait | rm``
``output``         ``--output json|table``; ``table``: rich tables; ``progress``: spinners, bars
``logs``           ``logs`` with ``-f``, ``--tail``, ``--since``, ``--timestamps``
``jobs``           creating a job from a job file (``train``, ``process``) and ``--wait``
``training``       ``train``, ``jobs``, ``describe``, ``logs``, ``stop``, ``metrics``
``processing``     ``process``, ``describe-processing-job``, ``processing-logs``,
                   ``stop-processing-job``
``endpoints``      ``deploy``, ``invoke``, ``delete-endpoint``, ``transform``
``housekeeping``   ``ps``, ``prune``
``cost``           ``cost``: what each job, transform and endpoint would cost on the service
``api``            ``api``: the service's wire API on 127.0.0.1 for unchanged SDK/boto3/CLI code
``image_check``    ``optml check IMAGE``
=================  ===========================================================================

Every ``optml local`` / ``optml check`` invocation imports this package, so its modules import
only click (and the check names) up front; clients, botocore and Docker load inside commands.
"""

from __future__ import annotations

import click

from local_mode.cli import api, cost, endpoints, housekeeping, processing, resources, training
from local_mode.cli.errors import OneLineGroup
from local_mode.cli.image_check import check

local: click.Group = OneLineGroup(
    "local", commands=[*training.COMMANDS, *processing.COMMANDS, *endpoints.COMMANDS,
                       *resources.GROUPS, *housekeeping.COMMANDS, *cost.COMMANDS,
                       *api.COMMANDS],
    help="Run training jobs, processing jobs, endpoints and batch transform locally, exactly as "
         "the service would. Every command takes --state-dir (default: OPTML_LOCAL_STATE_DIR, "
         "else ~/.optml/local); create commands take --backend (default: OPTML_LOCAL_BACKEND, "
         "else auto). Exit status: 0 success, 1 failed, 2 invalid input, 3 stopped, 130 "
         "Ctrl-C. See docs/cli.md.")
"""``optml local``."""

__all__ = ["check", "local"]
