"""The wire-API server: local mode's clients on 127.0.0.1, behind the service's own protocols.

:class:`ApiServer` binds a loopback port (never another address: the server starts containers),
builds one local client per service on the shared state directory, and serves them through
:class:`local_mode.wire.app.WireApp` on cheroot's WSGI server: a bounded pool of threads, and
HTTP/1.1 keep-alive, so boto3's pooled connections are reused from call to call (werkzeug's
development server closes every connection after one response, which cost a new loopback
connection per call: about 1.5 ms of the 4 ms a DescribeTrainingJob took through it). The jobs it starts get an environment in which ``s3://`` means the
server's S3 with the server's credentials, so a runner stages and uploads through the same store
the user's code wrote to.

``with local_mode.server() as api: ...`` (an :class:`ApiServer`) runs one for a test or a
notebook;
``optml local api`` runs one in the foreground or, with ``--env``, in the background.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from cheroot import wsgi as cheroot

from local_mode.autoscaling.client import ApplicationAutoScalingClient
from local_mode.client_base import DEFAULT_ACCOUNT
from local_mode.cloudwatch.client import CloudWatchClient
from local_mode.cloudwatch_logs import LogsClient
from local_mode.errors import ValidationException
from local_mode.loopback import LOOPBACK
from local_mode.runtime import RuntimeClient
from local_mode.sagemaker import SageMakerClient
from local_mode.state import make_private_dir, open_private
from local_mode.sts import StsClient
from local_mode.wire import s3
from local_mode.wire.app import Services, WireApp
from local_mode.wire.cbor_rpc import RpcV2Service
from local_mode.wire.endpoint import ApiEndpoint
from local_mode.wire.json_rpc import JsonService
from local_mode.wire.query_rpc import QueryService
from local_mode.wire.runtime_rest import RuntimeService
from local_mode.wire.sdk_config import default_bucket, write_sdk_config
from local_mode.wire.sigv4 import Credentials
from toolkit.settings import Settings

log = logging.getLogger(__name__)

THREADS = 16
"""Requests served at once (idle keep-alive connections hold no thread)."""
LOCK_NAME = "api.lock"
"""Held while a server checks for another on its state directory and records itself."""
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")

DEFAULT_REGION = "us-east-1"
"""The region ARNs carry and clients are told to sign for (any region a request names is
accepted; the service's ARNs are the server's)."""


class ApiServer:
    """One server (see the module docstring).

    ``s3`` is ``"embedded"`` (the store inside the server), ``"aws"`` (real S3, with the
    server's own AWS credentials for the jobs) or the URL of an S3-compatible server.
    ``credentials`` are the ones clients must sign with (generated when omitted).
    """

    def __init__(self, settings: Settings | None = None, *, port: int = 0,
                 region: str = DEFAULT_REGION, s3_store: str = s3.EMBEDDED,
                 credentials: Credentials | None = None, state_dir: str | Path | None = None,
                 backend: str | None = None, record: bool = True) -> None:
        s3.check_store(s3_store)
        if s3_store != s3.EMBEDDED and credentials is None:
            raise ValidationException(
                f"s3 {s3_store!r}: the user's own S3 calls go to that store with the credentials "
                "they sign with, so the server must accept the same ones: give the "
                "environment's credentials (optml local api --credentials environment)")
        if not 0 <= port <= 65535:
            raise ValidationException(f"port must be 0 (any free port) to 65535, got {port}")
        if not REGION.fullmatch(region):
            raise ValidationException(f"region {region!r} is not a region name (us-east-1)")
        self.settings = settings or Settings.from_environ()
        self.state_dir = Path(state_dir) if state_dir else self.settings.local.state_dir
        self.port, self.region, self.s3_store = port, region, s3_store
        self.generated_credentials = credentials is None
        self.credentials = credentials or Credentials.generate()
        self.backend, self.record = backend, record
        self._server: cheroot.Server | None = None
        self._thread: threading.Thread | None = None
        self._endpoint: ApiEndpoint | None = None

    @property
    def endpoint(self) -> ApiEndpoint:
        if self._endpoint is None:
            raise RuntimeError("the server is not running")
        return self._endpoint

    @property
    def url(self) -> str:
        return self.endpoint.url

    def start(self) -> ApiEndpoint:
        """Bind, build the clients and serve in a background thread. With a record, one server
        per state directory: the check and the record are made under a lock, so two starting
        at once cannot both win."""
        if self._server is not None:
            return self.endpoint
        if not self.record:
            return self._start()
        make_private_dir(self.state_dir)
        with os.fdopen(open_private(self.state_dir / LOCK_NAME, os.O_WRONLY | os.O_APPEND),
                       "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            running = ApiEndpoint.read(self.state_dir)
            if running is not None:
                raise ValidationException(f"an API server already serves {self.state_dir} at "
                                          f"{running.url} (pid {running.pid})")
            endpoint = self._start()
            try:
                endpoint.write(self.state_dir)
            except BaseException:
                self.stop()
                raise
        return endpoint

    def _start(self) -> ApiEndpoint:
        deferred = _Deferred()
        server = _Server((LOOPBACK, self.port), deferred, numthreads=THREADS,
                         server_name="optml local api")
        server.prepare()  # binds now, so the URL (and the port 0 chose) is known
        url = f"http://{LOOPBACK}:{server.bind_addr[1]}"
        s3_url = {s3.EMBEDDED: url, s3.AWS: None}.get(self.s3_store, self.s3_store)
        try:
            bucket = None if self.s3_store == s3.AWS else default_bucket(self.region,
                                                                         DEFAULT_ACCOUNT)
            sdk_config = write_sdk_config(self.state_dir, bucket, self.settings.environ)
            endpoint = ApiEndpoint(url, self.region, self.credentials.access_key_id,
                                   self.credentials.secret_access_key, s3_url, os.getpid(),
                                   str(sdk_config), secrets.token_hex(16),
                                   self.generated_credentials)
            deferred.app = WireApp(self._services(endpoint), {
                self.credentials.access_key_id: self.credentials.secret_access_key},
                endpoint.instance)
        except BaseException:
            server.stop()
            raise
        self._server, self._endpoint = server, endpoint
        self._thread = threading.Thread(target=server.serve, name="optml-api", daemon=True)
        self._thread.start()
        log.info("optml local api on %s (state %s)", url, self.state_dir)
        return endpoint

    def stop(self) -> None:
        """Stop serving and forget the record (jobs and endpoints it started keep running)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()  # in-flight requests finish first (within the server's shutdown timeout)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.record and self._endpoint is not None:
            self._endpoint.forget(self.state_dir)
        self._endpoint = None

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _services(self, endpoint: ApiEndpoint) -> Services:
        return build_services(Settings.from_environ(self._environ_for_jobs(endpoint)),
                              state_dir=self.state_dir, region=self.region,
                              backend=self.backend, embedded_s3=self.s3_store == s3.EMBEDDED)

    def _job_environ(self, endpoint: ApiEndpoint) -> dict[str, str]:
        """What the jobs' own S3 access uses: the embedded store with the server's generated
        credentials (and no session token of the environment's beside them), else the store
        the user named with the environment's own credentials."""
        env = {"AWS_REGION": self.region}
        if endpoint.s3_url is not None:
            env["AWS_ENDPOINT_URL_S3"] = endpoint.s3_url
        if self.s3_store == s3.EMBEDDED:
            env |= {"AWS_ACCESS_KEY_ID": endpoint.access_key_id,
                    "AWS_SECRET_ACCESS_KEY": endpoint.secret_access_key}
        return env

    def _environ_for_jobs(self, endpoint: ApiEndpoint) -> dict[str, str]:
        environ = dict(self.settings.environ)
        if self.s3_store == s3.EMBEDDED:
            for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
                environ.pop(name, None)
        return environ | self._job_environ(endpoint)


def build_services(settings: Settings, *, state_dir: Path, region: str,
                   backend: str | None, embedded_s3: bool) -> Services:
    """One local client per service on ``state_dir``, behind its protocol (what a server
    answers with; tests build a :class:`WireApp` on the same)."""
    common: dict[str, Any] = {"state_dir": state_dir, "region_name": region,
                              "aws_account_id": DEFAULT_ACCOUNT}
    return Services(
        sagemaker=JsonService(SageMakerClient(settings, backend=backend, **common)),
        logs=JsonService(LogsClient(settings, **common)),
        autoscaling=JsonService(ApplicationAutoScalingClient(settings, **common)),
        cloudwatch=RpcV2Service(CloudWatchClient(settings, **common)),
        runtime=RuntimeService(RuntimeClient(settings, **common)),
        sts=QueryService(StsClient(region_name=region, aws_account_id=DEFAULT_ACCOUNT)),
        s3=s3.embedded_app() if embedded_s3 else None)


class _Deferred:
    """The server's application, set once the bound port is known (the jobs' environment
    names it)."""

    app: s3.WsgiApp | None = None

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert self.app is not None
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            # cheroot's input ends where the chunks end; say so, or a reader bounded by
            # Content-Length (there is none) would see an empty body
            environ["wsgi.input_terminated"] = True
        return self.app(environ, start_response)


class _Server(cheroot.Server):
    """cheroot's WSGI server with its error log on the ``local_mode.wire`` logger."""

    def error_log(self, msg: str = "", level: int = 20, traceback: bool = False) -> None:
        log.log(level, "%s", msg, exc_info=traceback)

