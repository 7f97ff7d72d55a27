"""The endpoint's front door on 127.0.0.1: what the service does between InvokeEndpoint and the
containers.

- weighted choice of a production variant (``InitialVariantWeight``), or the request's
  ``X-Amzn-SageMaker-Target-Variant``;
- least-outstanding-requests balancing over the variant's healthy instances;
- an inference pipeline's containers called in order, each response the next request;
- multi-model: ``X-Amzn-SageMaker-Target-Model`` loaded on first use through ``POST /models``
  (least recently used models unloaded when a container answers 507);
- the 6 MiB request limit and the 60 s per-request timeout;
- a request whose instance vanished without answering is retried on another instance (of
  the new fleet, when an update replaced its own meanwhile).

Errors come back in the service's shape: header ``x-amzn-ErrorType`` and a JSON body, with
``OriginalStatusCode`` / ``OriginalMessage`` for a container's own error (``ModelError``).
Instances are added, marked healthy and retired by the runner's supervisor; this module only
reads those flags, on the one event-loop thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from local_mode.endpoints.http import (
    Message,
    PayloadTooLarge,
    Reply,
    Response,
    ServerConnection,
    StaleConnection,
    Upstream,
    UpstreamUnavailable,
)
from local_mode.endpoints.instances import Container
from local_mode.endpoints.spec import ModelSpec, VariantSpec

log = logging.getLogger("optml.local.router")

MAX_REQUEST_BYTES = 6 * 1024 * 1024  # the service's real-time limit: 6291456
REQUEST_TIMEOUT = 60.0
SWEEP_SECONDS = 0.5  # how often overdue fast-path exchanges are looked for
MAX_MESSAGE_CHARS = 1024
FORWARDED = ("content-type", "accept", "x-amzn-sagemaker-custom-attributes",
             "x-amzn-sagemaker-inference-id")
ECHOED = (("content-type", "Content-Type"),
          ("x-amzn-sagemaker-custom-attributes", "X-Amzn-SageMaker-Custom-Attributes"))
# The same, as the fast path copies them: (lower-case name, "Title-Case-Name: ").
_FORWARDED_RAW = tuple((name.encode(), f"{'-'.join(p.capitalize() for p in name.split('-'))}: "
                        .encode()) for name in FORWARDED)
_ECHOED_RAW = tuple((name.encode(), f"{title}: ".encode()) for name, title in ECHOED)


_T = TypeVar("_T")


async def _within(seconds: float, work: Awaitable[_T]) -> _T:
    """``await work``, or ``TimeoutError`` after ``seconds``.

    ``asyncio.timeout`` (3.11+) arms one timer on the running task; ``wait_for`` wraps every
    request in a task of its own, which measured a sixth of the router's CPU per request.
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await work
    return await asyncio.wait_for(work, seconds)  # pragma: no cover - Python 3.10


def _refuse(exc: PayloadTooLarge) -> Response:
    return RouterError("ValidationError", 413, f"Request payload of {exc.size} bytes is larger "
                       f"than the {MAX_REQUEST_BYTES} bytes (6 MiB) an endpoint accepts").render()


def _bad_request(reason: str) -> Response:
    return RouterError("ValidationError", 400, reason).render()


class RouterError(Exception):
    """An error the router answers in the service's shape."""

    def __init__(self, code: str, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.status, self.message, self.extra = code, status, message, extra

    def render(self) -> Response:
        body = {"ErrorCode": self.code, "Message": self.message, **self.extra}
        return self.status, [("Content-Type", "application/json"),
                             ("x-amzn-ErrorType", self.code)], json.dumps(body).encode()


@dataclass(eq=False)
class Instance:
    """One instance of a variant: its containers (several for a pipeline) and their health."""

    ident: str
    containers: list[Container]
    upstreams: list[Upstream]
    healthy: bool = False
    retired: bool = False
    draining: bool = False
    """Takes no new request (its fleet was replaced); what is in flight finishes."""
    inflight: int = 0
    failures: int = 0
    started: float = 0.0
    loaded: OrderedDict[str, None] = field(default_factory=OrderedDict)
    evicted: list[str] = field(default_factory=list)

    def drain(self) -> None:
        """Stop routing to this instance; in-flight requests keep their connections."""
        self.draining = True
        self.healthy = False

    def close(self) -> None:
        self.retired = True
        self.healthy = False
        for upstream in self.upstreams:
            upstream.close()


class ModelCache:
    """Multi-model artifacts fetched once per endpoint: ``<prefix><TargetModel>`` extracted to
    a local directory whose path is what the container's ``POST /models`` receives."""

    def __init__(self, prefix: str, root: Path,
                 fetch: Callable[[str, Path], Path]) -> None:
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.root = root
        self._fetch = fetch
        self._locks: dict[str, asyncio.Lock] = {}
        self._ready: dict[str, Path] = {}

    async def path(self, name: str) -> Path:
        if name in self._ready:
            return self._ready[name]
        parts = name.split("/")
        if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise RouterError("ValidationError", 400, f"TargetModel {name!r} is not a valid "
                              "relative key under the model's S3 prefix")
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name not in self._ready:
                dest = self.root / quote(name, safe="")
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        None, self._fetch, self.prefix + name, dest)
                except Exception as exc:  # noqa: BLE001 - StagingError and friends
                    raise RouterError("ValidationError", 400, f"Failed to download model data "
                                      f"for TargetModel {name!r}: {exc}") from None
                self._ready[name] = dest
        return self._ready[name]


@dataclass(eq=False)
class Variant:
    spec: VariantSpec
    model: ModelSpec
    instances: list[Instance] = field(default_factory=list)
    cache: ModelCache | None = None
    _turn: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    def healthy(self) -> list[Instance]:
        return [i for i in self.instances if i.healthy and not (i.retired or i.draining)]

    def pick(self, exclude: AbstractSet[Instance]) -> Instance | None:
        """The healthy instance with the fewest requests in flight (round robin on ties)."""
        candidates = [i for i in self.healthy() if i not in exclude]
        if len(candidates) < 2:
            return candidates[0] if candidates else None
        self._turn += 1
        start = self._turn % len(candidates)
        ordered = candidates[start:] + candidates[:start]
        return min(ordered, key=lambda i: i.inflight)


_NOTHING_TRIED: frozenset[Instance] = frozenset()


class Router:
    """Routes invocations for one endpoint; see the module docstring."""

    def __init__(self, endpoint_name: str, log_dir: Path) -> None:
        self.endpoint_name = endpoint_name
        self.log_dir = log_dir
        self.variants: list[Variant] = []
        self.on_suspect: Callable[[Instance], None] = lambda instance: None
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- serving ---------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1") -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ServerConnection(self.dispatch, MAX_REQUEST_BYTES, _refuse, _bad_request),
            host, 0, backlog=1024)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._sweeper = loop.create_task(self._sweep())
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()

    async def _sweep(self) -> None:
        """End fast-path exchanges that outlived :data:`REQUEST_TIMEOUT` (their ``done`` then
        answers the client with the service's timeout error)."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            for variant in self.variants:
                for instance in variant.instances:
                    for upstream in instance.upstreams:
                        upstream.expire_overdue(now)

    def dispatch(self, request: Message, reply: Reply) -> None:
        """Answer one request through ``reply``.

        The common invocation (one container per instance, not multi-model, an idle pooled
        connection to the chosen instance) is forwarded right here, with headers copied as
        bytes, and answered from the container's response callback; anything else, and any
        retry, goes to :meth:`handle`.
        """
        if request.method != "POST" or request.target != "/invocations":
            reply(*self._other(request))
            return
        raw = request.raw
        target = raw.get(b"x-amzn-sagemaker-target-variant")
        variants = self.variants
        if target is None and len(variants) == 1 and variants[0].spec.weight > 0:
            variant = variants[0]
        else:
            try:
                variant = self._choose_variant(target.decode("latin-1") if target else None)
            except RouterError as exc:
                reply(*exc.render())
                return
        instance = None
        if not variant.model.multi_model and b"x-amzn-sagemaker-target-model" not in raw:
            instance = variant.pick(_NOTHING_TRIED)
        if instance is None or len(instance.upstreams) != 1:
            self._spawn(request, reply, set())
            return
        upstream = instance.upstreams[0]
        body = request.body
        head = [b"POST /invocations HTTP/1.1\r\n", upstream.host_line]
        for name, title in _FORWARDED_RAW:
            value = raw.get(name)
            if value is not None:
                head += (title, value, b"\r\n")
        head.append(b"Content-Length: %d\r\n\r\n" % len(body))
        head.append(body)

        def done(response: Message | None, error: Exception | None) -> None:
            instance.inflight -= 1
            if response is not None:
                if 200 <= response.status < 300:
                    fields = [b"x-Amzn-Invoked-Production-Variant: ", variant.name.encode(),
                              b"\r\n"]
                    answer = response.raw
                    for name, title in _ECHOED_RAW:
                        value = answer.get(name)
                        if value is not None:
                            fields += (title, value, b"\r\n")
                    reply(200, b"".join(fields), response.body)
                else:
                    reply(*self._model_error(response, instance, 0).render())
            elif isinstance(error, TimeoutError):
                reply(*self._timed_out(instance).render())
            elif isinstance(error, StaleConnection):
                self._spawn(request, reply, set())
            else:
                log.warning("instance %s gave no response (%s); retrying elsewhere",
                            instance.ident, error)
                self.on_suspect(instance)
                self._spawn(request, reply, {instance})

        if upstream.send(b"".join(head), done, REQUEST_TIMEOUT):
            instance.inflight += 1
        else:  # no idle connection yet: the general path opens one, to the instance picked
            self._spawn(request, reply, set(), prefer=instance)

    def _spawn(self, request: Message, reply: Reply, tried: set[Instance],
               prefer: Instance | None = None) -> None:
        async def run() -> None:
            reply(*await self.handle(request, tried, prefer))

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _other(self, request: Message) -> Response:
        if request.method == "GET" and request.target == "/ping":
            ok = any(v.healthy() for v in self.variants)
            return (200 if ok else 503), [], b""
        return RouterError("UnknownOperationException", 404,
                           f"no route {request.method} {request.target}").render()

    async def handle(self, request: Message, tried: set[Instance] | None = None,
                     prefer: Instance | None = None) -> Response:
        """The response to one request, by the general (coroutine) path."""
        if request.method != "POST" or request.target != "/invocations":
            return self._other(request)
        try:
            return await self.invoke(request, set() if tried is None else tried, prefer)
        except RouterError as exc:
            return exc.render()
        except Exception as exc:
            log.exception("router failure")
            return RouterError("InternalFailure", 500, f"router failure: {exc!r}").render()

    # -- routing ---------------------------------------------------------------------------
    def _choose_variant(self, target: str | None) -> Variant:
        if target:
            for variant in self.variants:
                if variant.name == target:
                    return variant
            raise RouterError("ValidationError", 400, f"The variant {target!r} does not exist "
                              f"on endpoint {self.endpoint_name!r}; variants: "
                              f"{[v.name for v in self.variants]}")
        live = [v for v in self.variants if v.spec.weight > 0 and v.healthy()]
        if not live:
            raise RouterError("ServiceUnavailable", 503, f"Endpoint {self.endpoint_name!r} has "
                              "no healthy instance right now; retry shortly")
        if len(live) == 1:
            return live[0]
        return random.choices(live, weights=[v.spec.weight for v in live])[0]

    async def invoke(self, request: Message, tried: set[Instance],
                     prefer: Instance | None = None) -> Response:
        """Answer ``request`` from the variant's instances, trying another when one gives no
        response. ``prefer``: the instance the fast path already picked (picking again would
        advance the round robin past it, and an instance without an idle connection would
        never be chosen)."""
        headers = request.headers
        variant = self._choose_variant(headers.get("x-amzn-sagemaker-target-variant"))
        target_model = headers.get("x-amzn-sagemaker-target-model")
        if variant.model.multi_model and not target_model:
            raise RouterError("ValidationError", 400, f"Endpoint {self.endpoint_name!r} is a "
                              "multi-model endpoint: TargetModel is required")
        if target_model and not variant.model.multi_model:
            raise RouterError("ValidationError", 400, f"TargetModel given, but endpoint "
                              f"{self.endpoint_name!r} is not a multi-model endpoint")
        forwarded = [(name, headers[name]) for name in FORWARDED if name in headers]
        while True:
            if prefer is not None and prefer in variant.healthy() and prefer not in tried:
                instance = prefer
            else:
                instance = variant.pick(tried)
            prefer = None
            if instance is None:
                if variant not in self.variants:  # an update replaced its fleet meanwhile
                    return await self.invoke(request, tried)
                raise RouterError("ServiceUnavailable", 503, f"Variant {variant.name!r} of "
                                  f"endpoint {self.endpoint_name!r} has no healthy instance "
                                  "right now; retry shortly")
            tried.add(instance)
            instance.inflight += 1
            try:
                response = await _within(REQUEST_TIMEOUT, self._through(
                    variant, instance, forwarded, request.body, target_model))
            except UpstreamUnavailable as exc:
                log.warning("instance %s gave no response (%s); retrying elsewhere",
                            instance.ident, exc)
                self.on_suspect(instance)
                continue
            except asyncio.TimeoutError:
                raise self._timed_out(instance) from None
            finally:
                instance.inflight -= 1
            return 200, self._answer_headers(variant, response), response.body

    @staticmethod
    def _answer_headers(variant: Variant, response: Message) -> list[tuple[str, str]]:
        out = [("x-Amzn-Invoked-Production-Variant", variant.name)]
        out.extend((title, response.headers[name]) for name, title in ECHOED
                   if name in response.headers)
        return out

    def _timed_out(self, instance: Instance) -> RouterError:
        name = instance.containers[-1].hostname
        return RouterError(
            "ModelError", 424, f"Received server error (0) from {name} with message "
            f"\"Your invocation timed out while waiting for a response from container "
            f"{name}\" (after {REQUEST_TIMEOUT:.0f} s).", OriginalStatusCode=0,
            OriginalMessage="invocation timed out", LogStreamArn=self._log_of(instance))

    async def _through(self, variant: Variant, instance: Instance,
                       forwarded: list[tuple[str, str]], body: bytes,
                       target_model: str | None) -> Message:
        if target_model:
            return await self._invoke_model(variant, instance, forwarded, body, target_model)
        last = len(instance.upstreams) - 1
        headers = forwarded
        response = Message({}, b"")
        for index, upstream in enumerate(instance.upstreams):
            if index:  # a pipeline: the previous response is the next request
                headers = [(k, v) for k, v in forwarded if k not in ("content-type", "accept")]
                if "content-type" in response.headers:
                    headers.append(("content-type", response.headers["content-type"]))
                if index == last and "accept" in dict(forwarded):
                    headers.append(("accept", dict(forwarded)["accept"]))
            elif last and "accept" in dict(forwarded):
                headers = [(k, v) for k, v in forwarded if k != "accept"]
            response = await upstream.request("POST", "/invocations", headers, body)
            self._check(response, instance, index)
            body = response.body
        return response

    async def _invoke_model(self, variant: Variant, instance: Instance,
                            forwarded: list[tuple[str, str]], body: bytes,
                            name: str) -> Message:
        upstream = instance.upstreams[0]
        assert variant.cache is not None
        path = f"/models/{quote(name, safe='/')}/invoke"
        headers = [*forwarded, ("X-Amzn-SageMaker-Target-Model", name)]
        for _ in range(64):
            await self._ensure_loaded(variant, instance, name)
            response = await upstream.request("POST", path, headers, body)
            if response.status == 404:  # unloaded behind our back (e.g. a restarted worker)
                instance.loaded.pop(name, None)
                continue
            if response.status == 507 and self._evict(instance, keep=name) is not None:
                await self._unload_evicted(instance)
                continue
            self._check(response, instance, 0)
            instance.loaded.move_to_end(name)
            return response
        raise RouterError("ModelError", 424, f"TargetModel {name!r} could not be served: the "
                          "container kept answering 404/507", OriginalStatusCode=507,
                          OriginalMessage="insufficient memory", LogStreamArn=self._log_of(instance))

    async def _ensure_loaded(self, variant: Variant, instance: Instance, name: str) -> None:
        if name in instance.loaded:
            instance.loaded.move_to_end(name)
            return
        assert variant.cache is not None
        directory = await variant.cache.path(name)
        upstream = instance.upstreams[0]
        url = instance.containers[0].model_url(directory)  # the container's view of it
        payload = json.dumps({"model_name": name, "url": url}).encode()
        while True:
            response = await upstream.request("POST", "/models",
                                              [("Content-Type", "application/json")], payload)
            if response.status in (200, 409):
                instance.loaded[name] = None
                return
            if response.status == 507 and self._evict(instance, keep=name) is not None:
                await self._unload_evicted(instance)
                continue
            self._check(response, instance, 0)

    def _evict(self, instance: Instance, keep: str) -> str | None:
        """Mark the least recently used model (other than ``keep``) for unloading."""
        for candidate in instance.loaded:
            if candidate != keep:
                del instance.loaded[candidate]
                instance.evicted.append(candidate)
                return candidate
        return None

    async def _unload_evicted(self, instance: Instance) -> None:
        upstream = instance.upstreams[0]
        evicted, instance.evicted = instance.evicted, []
        for name in evicted:
            response = await upstream.request("DELETE", f"/models/{quote(name, safe='/')}", [])
            log.info("instance %s: unloaded model %s (least recently used) -> %d",
                     instance.ident, name, response.status)

    def _check(self, response: Message, instance: Instance, index: int) -> None:
        if not 200 <= response.status < 300:
            raise self._model_error(response, instance, index)

    def _model_error(self, response: Message, instance: Instance, index: int) -> RouterError:
        """The service's ModelError for a container's own non-2xx answer."""
        name = instance.containers[index].hostname
        text = response.body.decode("utf-8", "replace")[:MAX_MESSAGE_CHARS]
        kind = "client" if response.status < 500 else "server"
        return RouterError("ModelError", 424, f"Received {kind} error ({response.status}) from "
                           f"{name} with message \"{text}\". See {self._log_of(instance)} for "
                           "more information.", OriginalStatusCode=response.status,
                           OriginalMessage=text, LogStreamArn=self._log_of(instance))

    def _log_of(self, instance: Instance) -> str:
        return str(self.log_dir / f"{instance.ident}.log")
