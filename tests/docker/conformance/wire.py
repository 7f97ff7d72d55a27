"""The wire API as the conformance suite drives it: a server on local mode's Docker backend, and
clients nobody here wrote (the SageMaker SDK, boto3) running in a child interpreter whose only
link to local mode is the environment the server prints (what ``optml local api --env`` prints).

A child script ends by printing ``RESULT <json>`` on a line of its own (:data:`RESULT`); the
test reads it with :func:`sdk_result` and asserts on it and on what the SDK printed before it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from local_mode.wire.server import ApiServer
from tests.docker.conformance.local import LocalMode
from toolkit.settings import Settings

RESULT = "\nRESULT "
"""What a child script prints before its JSON result (``print("\\nRESULT " + json.dumps(...))``)."""
ROLE = "arn:aws:iam::000000000000:role/sdk"


def sdk_environment(variables: dict[str, str]) -> dict[str, str]:
    """A clean environment: nothing AWS-, SDK- or local-mode-related but what the server
    printed (its SDK configuration file included)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SAGEMAKER_", "OPTML_"))}
    return env | variables | {"SAGEMAKER_SUPPRESS_V2_WARNING": "1", "PYTHONUNBUFFERED": "1"}


def wire_server(local: LocalMode) -> ApiServer:
    """The wire API over ``local``'s state directory on the Docker backend (use it as a context
    manager), with a short stop grace so that stopped containers go quickly."""
    settings = Settings.from_environ({k: v for k, v in os.environ.items()
                                      if not k.startswith(("SAGEMAKER_", "OPTML_", "AWS_"))}
                                     | {"OPTML_LOCAL_STOP_GRACE_SECONDS": "2"})
    return ApiServer(settings, state_dir=local.state, backend="docker")


def run_sdk(server: ApiServer, script: Path, args: dict[str, Any],
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (its only argument ``args`` as JSON) in a child interpreter pointed at
    ``server`` by its printed variables alone; its output captured, never raising on failure."""
    return subprocess.run([sys.executable, str(script), json.dumps(args)],
                          env=sdk_environment(server.endpoint.environ()),
                          capture_output=True, text=True, timeout=timeout, check=False)


def sdk_result(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The child's ``RESULT`` (after asserting it exited 0, with its output as the message)."""
    assert run.returncode == 0, f"{run.stdout[-4000:]}\n{run.stderr[-6000:]}"
    assert RESULT in run.stdout, f"{run.stdout[-4000:]}\n{run.stderr[-6000:]}"
    result: dict[str, Any] = json.loads(run.stdout.rsplit(RESULT, 1)[1])
    return result
