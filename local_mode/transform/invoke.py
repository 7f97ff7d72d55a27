"""Requests from the transform runner to one instance: its containers in order (a pipeline),
over the shared keep-alive client, with the job's timeout."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from local_mode.endpoints.health import load_failure
from local_mode.endpoints.invocation import ACCEPT, CONTENT_TYPE
from local_mode.keepalive import Fields, KeepAliveClient, NoResponse, Reply


class InvocationError(Exception):
    """The container answered an error, or did not answer; the message says which."""


class InstanceClient:
    """The containers of one instance (``ports``, named ``names`` in errors); ``timeout`` is
    the job's ``InvocationsTimeoutInSeconds``."""

    def __init__(self, ports: Sequence[int], names: Sequence[str], timeout: float) -> None:
        self.ports, self.names, self.timeout = list(ports), list(names), timeout
        self._http = KeepAliveClient(timeout)

    def close(self) -> None:
        """Close this thread's connections to the containers (a worker thread's end with the
        containers, which the runner stops)."""
        self._http.close()

    def request(self, port: int, method: str, path: str, fields: Fields = (), *,
                body: bytes | Iterable[bytes] | None = None) -> Reply:
        try:
            return self._http.request(port, method, path, fields, body=body)
        except NoResponse as exc:
            raise InvocationError(f"the container on port {port} {exc}"
                                  + (f" (InvocationsTimeoutInSeconds={self.timeout:.0f})"
                                     if exc.timed_out else "")) from None

    def invoke(self, body: bytes | Iterable[bytes], content_type: str | None,
               accept: str | None) -> tuple[bytes, str | None]:
        """The last container's response body and Content-Type."""
        response_type = content_type
        last = len(self.ports) - 1
        for index, (port, name) in enumerate(zip(self.ports, self.names)):
            fields = []
            if response_type:
                fields.append((CONTENT_TYPE.wire, response_type.encode("latin-1")))
            if accept and index == last:
                fields.append((ACCEPT.wire, accept.encode("latin-1")))
            reply = self.request(port, "POST", "/invocations", fields, body=body)
            if not 200 <= reply.status < 300:
                text = reply.body.decode("utf-8", "replace")[:512]
                raise InvocationError(f"container {name} answered {reply.status}: {text}")
            body, response_type = reply.body, reply.headers.get(CONTENT_TYPE.name)
        assert isinstance(body, bytes)
        return body, response_type

    def execution_parameters(self) -> dict[str, Any] | None:
        """The first container's ``GET /execution-parameters``, or None when it has none."""
        try:
            reply = self.request(self.ports[0], "GET", "/execution-parameters")
        except InvocationError:
            return None
        if reply.status != 200:
            return None
        try:
            parsed = json.loads(reply.body)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def health(self) -> tuple[bool, str | None]:
        """``(every container answers /ping 200, the first one's reason if its model can never
        load)``; a container that does not answer yet is only not healthy."""
        healthy = True
        for port in self.ports:
            try:
                reply = self.request(port, "GET", "/ping")
            except InvocationError:
                return False, None
            fatal = load_failure(reply.status, reply.body)
            if fatal is not None:
                return False, fatal
            healthy = healthy and reply.status == 200
        return healthy, None
