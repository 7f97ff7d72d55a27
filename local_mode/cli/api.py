"""``optml local api``: the service's wire API on 127.0.0.1, for unchanged SDK, boto3 and CLI code.

Three ways to run it:

- ``optml local api``: in the foreground until Ctrl-C, printing the variables to export;
- ``eval "$(optml local api --env)"``: the variables of the server already serving the state
  directory, after starting one in the background if none does;
- ``optml local api --stop``: stop the background server of the state directory.

Jobs and endpoints the server started keep running after it stops, as they do after any
``optml local`` command; the embedded S3 store goes with the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from local_mode.cli.errors import EXIT_INVALID, fail
from local_mode.cli.options import backend_option, settings, state_dir_option
from local_mode.error_text import message_of

if TYPE_CHECKING:
    from local_mode.wire.endpoint import ApiEndpoint
    from local_mode.wire.sigv4 import Credentials

START_TIMEOUT = 60.0
"""How long ``--env`` waits for a background server to record itself (seconds)."""
STOP_TIMEOUT = 10.0
"""How long ``--stop`` waits for the server to exit before it is killed (seconds)."""
LOG_NAME = "api.log"


@click.command("api", short_help="The service's wire API on 127.0.0.1 for SDK/boto3/CLI.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--region", default="us-east-1", show_default=True, metavar="REGION",
              help="Region the ARNs carry and clients are told to sign for.")
@click.option("--s3", "s3_store", default="embedded", show_default=True, metavar="WHERE",
              callback=lambda _ctx, _param, value: _s3_store(value),
              help="S3 for s3:// URIs: 'embedded' (in the server, in memory), 'aws' (real S3 "
                   "with the server's AWS credentials) or the URL of an S3-compatible server.")
@click.option("--credentials", type=click.Choice(["generated", "environment"]),
              default="generated", show_default=True,
              help="Accept requests signed with new random credentials (printed), or with "
                   "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY of this environment.")
@click.option("--env", "print_env", is_flag=True,
              help="Print the variables to export (eval \"$(optml local api --env)\"), "
                   "starting a background server for the state directory if none runs.")
@click.option("--stop", is_flag=True, help="Stop the background server of the state directory.")
@state_dir_option
@backend_option("the hosts and instances it starts")
def api(port: int, region: str, s3_store: str, credentials: str, print_env: bool, stop: bool,
        state_dir: Path | None, backend: str | None) -> None:
    """Serve SageMaker, SageMaker Runtime, CloudWatch Logs, STS and S3 on 127.0.0.1 for
    unchanged SDK, boto3 and AWS CLI code (see docs/wire-api.md)."""
    from local_mode.wire.endpoint import ApiEndpoint

    environment = settings()
    state = state_dir or environment.local.state_dir
    if stop:
        _stop(state)
        return
    state = state.absolute()
    running = ApiEndpoint.read(state)
    _credentials(credentials, environment.environ)  # refuse missing keys before anything starts
    if print_env:
        if running is not None and _options_given():
            click.echo(f"note: the API server already serving {state} runs with its own "
                       "options; 'optml local api --stop' first to change them", err=True)
        endpoint = running or _start_background(state, port, region, s3_store, credentials,
                                                 backend)
        click.echo(endpoint.shell(), nl=False)
        return
    if running is not None:
        fail(f"an API server already serves {state} at {running.url} (pid {running.pid}); "
             "'optml local api --env' prints its variables", EXIT_INVALID)
    _serve(state, port, region, s3_store, credentials, backend)


def _options_given() -> bool:
    """Whether the command line set any of the server's own options."""
    from click.core import ParameterSource

    context = click.get_current_context()
    return any(context.get_parameter_source(name) == ParameterSource.COMMANDLINE
               for name in ("port", "region", "s3_store", "credentials", "backend"))


def _s3_store(value: str) -> str:
    """``--s3``: refused at once (not in a background server's log) when it is nothing."""
    from local_mode.errors import ValidationException
    from local_mode.wire import s3

    try:
        return s3.check_store(value)
    except ValidationException as exc:
        raise click.BadParameter(exc.message, param_hint="--s3") from None


def _serve(state: Path, port: int, region: str, s3_store: str, credentials: str,
           backend: str | None) -> None:
    from local_mode.errors import ValidationException
    from local_mode.wire.server import ApiServer

    environment = settings()
    keys = _credentials(credentials, environment.environ)
    server = ApiServer(environment, port=port, region=region, s3_store=s3_store,
                       credentials=keys, state_dir=state, backend=backend)
    try:
        endpoint = server.start()
    except (ValidationException, OSError) as exc:
        fail(f"cannot start the API server: {exc}")
    done = threading.Event()
    # SIGHUP too: a closed terminal stops the server cleanly, its record removed
    previous = {number: signal.signal(number, lambda *_: done.set())
                for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        click.echo(f"optml local api on {endpoint.url} (state {state}); export these, or in "
                   f"another shell: eval \"$(optml local api --env --state-dir {state})\"",
                   err=True)
        click.echo(endpoint.shell(), nl=False)
        sys.stdout.flush()
        while not done.wait(1.0):
            pass
    finally:
        server.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)


def _credentials(kind: str, environ: Mapping[str, str]) -> Credentials | None:
    """The credentials to accept: None (generated by the server) or the environment's."""
    from local_mode.wire.sigv4 import Credentials

    if kind == "generated":
        return None
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        fail("--credentials environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must "
             "both be set", EXIT_INVALID)
    return Credentials(key, secret)


def _start_background(state: Path, port: int, region: str, s3_store: str, credentials: str,
                      backend: str | None) -> ApiEndpoint:
    """Start ``optml local api`` detached for ``state`` and return its endpoint once recorded."""
    from local_mode.wire.endpoint import ApiEndpoint

    argv = [sys.executable, "-m", "toolkit.cli", "local", "api", "--state-dir", str(state),
            "--port", str(port), "--region", region, "--s3", s3_store,
            "--credentials", credentials]
    if backend:
        argv += ["--backend", backend]
    log_path = state / LOG_NAME
    try:
        state.mkdir(parents=True, exist_ok=True)
        # a fresh log each start, readable by its owner only (it names the server's URL)
        descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as log, open(os.devnull, "rb") as nothing:
            # cwd: the state directory, so `-m` never imports a package of the caller's
            # directory in place of optml's own
            child = subprocess.Popen(  # noqa: S603 - our own interpreter and command, no shell
                argv, stdin=nothing, stdout=subprocess.DEVNULL, stderr=log, cwd=state,
                start_new_session=True)
    except OSError as exc:
        fail(f"cannot start the API server for {state}: {message_of(exc)}")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        endpoint = ApiEndpoint.read(state)
        if endpoint is not None and (endpoint.pid == child.pid or child.poll() is not None):
            return endpoint  # ours, or one started at the same moment that won the lock
        if child.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            fail(f"the background API server exited ({child.returncode}): {tail[0]} "
                 f"(see {log_path})")
        time.sleep(0.05)
    child.terminate()
    fail(f"the background API server did not start within {START_TIMEOUT:.0f} s (see "
         f"{log_path})")


def _stop(state: Path) -> None:
    from local_mode.wire.endpoint import ApiEndpoint
    from toolkit.pids import pid_alive

    endpoint = ApiEndpoint.read(state)
    if endpoint is None:
        click.echo(f"no API server serves {state}", err=True)
        return
    try:  # read() checked that this pid is the server answering at its URL
        os.kill(endpoint.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while pid_alive(endpoint.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(endpoint.pid):
            os.kill(endpoint.pid, signal.SIGKILL)
            endpoint.forget(state)
    except ProcessLookupError:
        endpoint.forget(state)  # it exited meanwhile
    except PermissionError as exc:
        fail(f"cannot stop the API server at {endpoint.url} (pid {endpoint.pid}): "
             f"{message_of(exc)}")
    click.echo(f"stopped the API server at {endpoint.url} (pid {endpoint.pid})", err=True)
    running = _still_running(state)
    if running:
        click.echo(f"still running: {', '.join(running)}. Endpoints keep serving (reach them "
                   "again after 'eval \"$(optml local api --env)\"'); a job reading or writing "
                   "the embedded S3 store fails, since the store went with the server", err=True)


def _still_running(state: Path) -> list[str]:
    """What the state directory still runs, as ``kind name (status)`` (for --stop to say):
    :func:`local_mode.housekeeping.running`, what ``optml local ps`` shows."""
    from local_mode.housekeeping import LIFECYCLES, running
    from local_mode.state import StateStore

    return [f"{LIFECYCLES[kind].noun} {description[LIFECYCLES[kind].name_field]} "
            f"({description[LIFECYCLES[kind].status_field]})"
            for kind, description in running(StateStore(state))]


COMMANDS = [api]
