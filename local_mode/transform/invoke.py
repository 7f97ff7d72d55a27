"""Requests from the transform runner to one instance: its containers in order (a pipeline),
over keep-alive connections held per thread, with the job's timeout."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from local_mode.endpoints.health import load_failure


class InvocationError(Exception):
    """The container answered an error, or did not answer; the message says which."""


class InstanceClient:
    def __init__(self, ports: Sequence[int], names: Sequence[str], timeout: float) -> None:
        self.ports, self.names, self.timeout = list(ports), list(names), timeout
        self._local = threading.local()

    def _connection(self, port: int, fresh: bool = False) -> http.client.HTTPConnection:
        pool: dict[int, http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        if fresh and port in pool:
            pool.pop(port).close()
        if port not in pool:
            pool[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=self.timeout)
        return pool[port]

    def request(self, port: int, method: str, path: str, body: bytes | Iterable[bytes] | None,
                headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        streamed = body is not None and not isinstance(body, (bytes, bytearray))
        for attempt in (1, 2):
            connection = self._connection(port, fresh=attempt == 2)
            try:
                connection.request(method, path, body=body, headers=headers,
                                   encode_chunked=streamed)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as exc:
                connection.close()
                if attempt == 2 or streamed:
                    raise InvocationError(f"the container on port {port} closed the "
                                          f"connection ({exc!r})") from None
                continue  # a keep-alive connection the server had closed: once more, fresh
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                connection.close()
                self._local.__dict__.get("pool", {}).pop(port, None)
                raise InvocationError(f"the container on port {port} did not answer "
                                      f"({exc!r}; InvocationsTimeoutInSeconds="
                                      f"{self.timeout:.0f})") from None
            if response.will_close:
                connection.close()
                self._local.__dict__.get("pool", {}).pop(port, None)
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        raise AssertionError("unreachable")

    def invoke(self, body: bytes | Iterable[bytes], content_type: str | None,
               accept: str | None) -> tuple[bytes, str | None]:
        """The last container's response body and Content-Type."""
        response_type = content_type
        last = len(self.ports) - 1
        for index, (port, name) in enumerate(zip(self.ports, self.names)):
            headers = {}
            if response_type:
                headers["Content-Type"] = response_type
            if accept and index == last:
                headers["Accept"] = accept
            status, response_headers, data = self.request(port, "POST", "/invocations", body,
                                                          headers)
            if not 200 <= status < 300:
                text = data.decode("utf-8", "replace")[:512]
                raise InvocationError(f"container {name} answered {status}: {text}")
            body, response_type = data, response_headers.get("content-type")
        assert isinstance(body, bytes)
        return body, response_type

    def execution_parameters(self) -> dict[str, Any] | None:
        """The first container's ``GET /execution-parameters``, or None when it has none."""
        try:
            status, _, data = self.request(self.ports[0], "GET", "/execution-parameters", None,
                                           {})
        except InvocationError:
            return None
        if status != 200:
            return None
        try:
            parsed = json.loads(data)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def health(self) -> tuple[bool, str | None]:
        """``(every container answers /ping 200, the first one's reason if its model can never
        load)``; a container that does not answer yet is only not healthy."""
        healthy = True
        for port in self.ports:
            try:
                status, _, data = self.request(port, "GET", "/ping", None, {})
            except InvocationError:
                return False, None
            fatal = load_failure(status, data)
            if fatal is not None:
                return False, fatal
            healthy = healthy and status == 200
        return healthy, None
