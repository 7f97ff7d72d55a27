"""The wire-API server: local mode's clients on 127.0.0.1, behind the service's own protocols.

:class:`ApiServer` binds a loopback port (never another address: the server starts containers),
builds one local client per service on the shared state directory, and serves them through
:class:`local_mode.wire.app.WireApp` on werkzeug's threaded server (HTTP/1.1 keep-alive, a
thread per connection). The jobs it starts get an environment in which ``s3://`` means the
server's S3 with the server's credentials, so a runner stages and uploads through the same store
the user's code wrote to.

``with local_mode.server() as api: ...`` runs one for a test or a notebook;
``optml local api`` runs one in the foreground or, with ``--env``, in the background.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from local_mode.client_base import DEFAULT_ACCOUNT
from local_mode.cloudwatch_logs import LogsClient
from local_mode.errors import ValidationException
from local_mode.loopback import LOOPBACK
from local_mode.runtime import RuntimeClient
from local_mode.sagemaker import SageMakerClient
from local_mode.sts import StsClient
from local_mode.wire import s3
from local_mode.wire.app import Services, WireApp
from local_mode.wire.endpoint import ApiEndpoint
from local_mode.wire.json_rpc import JsonService
from local_mode.wire.query_rpc import QueryService
from local_mode.wire.runtime_rest import RuntimeService
from local_mode.wire.sdk_config import default_bucket, write_sdk_config
from local_mode.wire.sigv4 import Credentials
from toolkit.settings import Settings

log = logging.getLogger(__name__)

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
        if s3_store not in (s3.EMBEDDED, s3.AWS) and not s3.is_endpoint_url(s3_store):
            raise ValidationException(f"s3 must be '{s3.EMBEDDED}', '{s3.AWS}' or the http(s) "
                                      f"URL of an S3-compatible server, got {s3_store!r}")
        self.settings = settings or Settings.from_environ()
        self.state_dir = Path(state_dir) if state_dir else self.settings.local.state_dir
        self.port, self.region, self.s3_store = port, region, s3_store
        self.credentials = credentials or Credentials.generate()
        self.backend, self.record = backend, record
        self._server: BaseWSGIServer | None = None
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
        """Bind, build the clients and serve in a background thread."""
        if self._server is not None:
            return self.endpoint
        running = ApiEndpoint.read(self.state_dir) if self.record else None
        if running is not None:
            raise ValidationException(f"an API server already serves {self.state_dir} at "
                                      f"{running.url} (pid {running.pid})")
        deferred = _Deferred()
        server = make_server(LOOPBACK, self.port, deferred, threaded=True,
                             request_handler=_QuietHandler)
        url = f"http://{LOOPBACK}:{server.server_port}"
        s3_url = {s3.EMBEDDED: url, s3.AWS: None}.get(self.s3_store, self.s3_store)
        try:
            sdk_config = write_sdk_config(self.state_dir, default_bucket(
                self.region, DEFAULT_ACCOUNT), self.settings.environ)
            endpoint = ApiEndpoint(url, self.region, self.credentials.access_key_id,
                                   self.credentials.secret_access_key, s3_url, os.getpid(),
                                   str(sdk_config))
            deferred.app = WireApp(self._services(endpoint), {
                self.credentials.access_key_id: self.credentials.secret_access_key})
        except BaseException:
            server.server_close()
            raise
        self._server, self._endpoint = server, endpoint
        self._thread = threading.Thread(target=server.serve_forever, name="optml-api",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        if self.record:
            endpoint.write(self.state_dir)
        log.info("optml local api on %s (state %s)", url, self.state_dir)
        return endpoint

    def stop(self) -> None:
        """Stop serving and forget the record (jobs and endpoints it started keep running)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
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
        environ = dict(self.settings.environ) | self._job_environ(endpoint)
        settings = Settings.from_environ(environ)
        common: dict[str, Any] = {"state_dir": self.state_dir, "region_name": self.region,
                                  "aws_account_id": DEFAULT_ACCOUNT}
        return Services(
            sagemaker=JsonService(SageMakerClient(settings, backend=self.backend, **common),
                                  "ValidationException"),
            logs=JsonService(LogsClient(settings, **common), "InvalidParameterException"),
            runtime=RuntimeService(RuntimeClient(settings, **common)),
            sts=QueryService(StsClient(region_name=self.region,
                                       aws_account_id=DEFAULT_ACCOUNT)),
            s3=s3.embedded_app() if self.s3_store == s3.EMBEDDED else None)

    def _job_environ(self, endpoint: ApiEndpoint) -> dict[str, str]:
        """What the jobs' own S3 access uses: this server's store and credentials, or (real S3)
        whatever AWS credentials the server itself has."""
        if endpoint.s3_url is None:
            return {"AWS_REGION": self.region}
        return {"AWS_ENDPOINT_URL_S3": endpoint.s3_url,
                "AWS_ACCESS_KEY_ID": endpoint.access_key_id,
                "AWS_SECRET_ACCESS_KEY": endpoint.secret_access_key,
                "AWS_REGION": self.region}


def server(**kwargs: Any) -> ApiServer:
    """``with local_mode.server() as api:`` a running server; ``api.endpoint.environ()`` are the
    variables for unchanged code, ``api.endpoint.client_args("sagemaker")`` boto3's arguments.
    Takes :class:`ApiServer`'s arguments."""
    return ApiServer(**kwargs)


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Deferred:
    """The server's application, set once the bound port is known (the jobs' environment
    names it)."""

    app: WsgiApp | None = None

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert self.app is not None
        return self.app(environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler, with its access log on the ``local_mode.wire`` logger at debug."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path, code)

    def log(self, type: str, message: str, *args: Any) -> None:
        log.log(logging.ERROR if type == "error" else logging.DEBUG, message, *args)

