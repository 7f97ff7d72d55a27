"""What a client needs to reach a running wire-API server, and the file that records it.

A server writes its :class:`ApiEndpoint` to ``<state dir>/api.json`` (readable by its owner
only: it holds the secret key) while it runs, so ``optml local api --env`` in another shell
prints the variables of the server already serving that state directory instead of starting a
second one. The variable names are botocore's per-service endpoint variables, derived from each
service's ``serviceId`` as botocore derives them (``CloudWatch Logs`` ->
``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS``), so nothing in the user's code changes.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local_mode.state import make_private_dir
from local_mode.validation import service_model
from toolkit.pids import pid_alive

SERVED = ("sagemaker", "sagemaker-runtime", "logs", "cloudwatch", "application-autoscaling",
          "sts")
"""The services the server answers itself (S3 too, when it embeds the store)."""
RECORD_NAME = "api.json"
HEALTH_PATH = "/_optml/health"
"""The unsigned liveness probe (no S3 bucket can be named ``_optml``)."""


def endpoint_variable(service: str) -> str:
    """botocore's environment variable for ``service``'s endpoint URL."""
    service_id = service_model(service).metadata["serviceId"]
    return "AWS_ENDPOINT_URL_" + service_id.replace(" ", "_").upper()


@dataclass(frozen=True)
class ApiEndpoint:
    """A running server: its ``url``, the ``region`` its ARNs carry, the credentials it accepts,
    the S3 endpoint jobs and clients use (``None``: real S3), its process id and the SDK
    configuration file it wrote."""

    url: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    s3_url: str | None = None
    pid: int = 0
    sdk_config: str | None = None
    """The SageMaker SDK configuration file for this server (:mod:`local_mode.wire.sdk_config`)."""
    instance: str = ""
    """A random id of this server's run, answered on its health path: a record is believed only
    when the server at its URL says the same (a pid alone may belong to another process by
    now)."""
    generated_credentials: bool = True
    """The server made its credentials (printed with the variables) rather than taking the
    environment's (which the user's environment already holds, token and profile included)."""

    def environ(self) -> dict[str, str]:
        """The variables that point unchanged boto3, SageMaker SDK and AWS CLI code here."""
        env = {endpoint_variable(service): self.url for service in SERVED}
        if self.s3_url:
            env["AWS_ENDPOINT_URL_S3"] = self.s3_url
        if self.sdk_config:
            env["SAGEMAKER_USER_CONFIG_OVERRIDE"] = self.sdk_config
        if self.generated_credentials:
            env |= {"AWS_ACCESS_KEY_ID": self.access_key_id,
                    "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        env |= {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        return env

    def shell(self) -> str:
        """:meth:`environ` as POSIX shell ``export`` lines (for ``eval``); with generated
        credentials, the variables that would override them are unset too."""
        lines = [f"export {key}={shlex.quote(value)}" for key, value in self.environ().items()]
        if self.generated_credentials:
            lines.append("unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE")
        return "\n".join(lines) + "\n"

    def answers(self, timeout: float = 2.0) -> bool:
        """Whether the server at :attr:`url` is this one (its health path names
        :attr:`instance`)."""
        try:
            with urllib.request.urlopen(f"{self.url}{HEALTH_PATH}", timeout=timeout) as reply:  # noqa: S310 - our own loopback URL
                return bool(json.load(reply).get("instance") == self.instance)
        except (OSError, ValueError, AttributeError):
            return False

    def client_args(self, service: str) -> dict[str, Any]:
        """``boto3.client(service, **endpoint.client_args(service))`` reaches this server (or
        its S3)."""
        url = self.s3_url if service == "s3" else self.url
        return {"endpoint_url": url, "region_name": self.region,
                "aws_access_key_id": self.access_key_id,
                "aws_secret_access_key": self.secret_access_key}

    # -- the record --------------------------------------------------------------------------
    def write(self, state_dir: Path) -> Path:
        """Record this server for ``state_dir`` (owner-only, written atomically)."""
        make_private_dir(state_dir)
        path = state_dir / RECORD_NAME
        temporary = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                             0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(asdict(self), handle)
        os.replace(temporary, path)
        return path

    @classmethod
    def read(cls, state_dir: Path) -> ApiEndpoint | None:
        """The server recorded for ``state_dir`` if its process still runs and its URL answers
        as that server (else the record is stale: a killed server, a reused pid)."""
        try:
            data = json.loads((state_dir / RECORD_NAME).read_text())
            endpoint = cls(**data)
        except (OSError, ValueError, TypeError):
            return None
        if not isinstance(endpoint.pid, int) or isinstance(endpoint.pid, bool) or \
                endpoint.pid <= 0 or not isinstance(endpoint.url, str):
            return None
        return endpoint if pid_alive(endpoint.pid) and endpoint.answers() else None

    def forget(self, state_dir: Path) -> None:
        """Remove the record if it is this server's."""
        path = state_dir / RECORD_NAME
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and data.get("pid") == self.pid:
                path.unlink()
        except (OSError, ValueError):
            pass
