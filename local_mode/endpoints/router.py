"""The endpoint's front door on 127.0.0.1: what the service does between InvokeEndpoint and the
containers.

- weighted choice of a production variant (``InitialVariantWeight``), or the request's
  ``X-Amzn-SageMaker-Target-Variant``;
- least-outstanding-requests balancing over the variant's healthy instances;
- an inference pipeline's containers called in order, each response the next request;
- multi-model: ``X-Amzn-SageMaker-Target-Model`` loaded on first use through ``POST /models``
  (least recently used models unloaded when a container answers 507);
- the 6 MiB request limit and the 60 s invocation timeout: a deadline set when the request
  arrives, carried by every exchange with a container that answering it takes;
- a request whose instance vanished without answering is retried on another instance (of
  the new fleet, when an update replaced its own meanwhile).

Two front doors share one planning step (:meth:`Router.plan`: variant, instance, target
model, deadline): the common invocation is forwarded from the parser's callback
(:meth:`Router.dispatch`), anything else runs as a coroutine (:meth:`Router.invoke`). Header
fields stay bytes from the client's request to the container's and back.

Errors come back in the service's shape: header ``x-amzn-ErrorType`` and a JSON body, with
``OriginalStatusCode`` / ``OriginalMessage`` for a container's own error (``ModelError``).
Instances are added, marked healthy and retired by the runner's supervisor; this module only
reads those flags, on the one event-loop thread.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from local_mode.cloudwatch.recorder import VariantMeter
from local_mode.endpoints.backends import Container
from local_mode.endpoints.http import (
    HTTPProtocolError,
    Message,
    PayloadTooLarge,
    Reply,
    Response,
    ServerConnection,
    StaleConnection,
    Upstream,
    UpstreamUnavailable,
)
from local_mode.endpoints.invocation import (
    ACCEPT,
    CONTENT_TYPE,
    ECHOED,
    ERROR_TYPE,
    INVOCATION_TIMEOUT,
    INVOKED_VARIANT,
    MAX_REQUEST_BYTES,
    PASSED_THROUGH,
    TARGET_MODEL,
    TARGET_VARIANT,
)
from local_mode.endpoints.spec import ModelSpec, VariantSpec
from local_mode.loopback import LOOPBACK

log = logging.getLogger("optml.local.router")

MAX_MESSAGE_CHARS = 1024
_JSON = CONTENT_TYPE.line(b"application/json")
_UNANSWERED = (UpstreamUnavailable, HTTPProtocolError)
"""What an exchange ends with when the container gave no usable response: try elsewhere."""


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
        return self.status, _JSON + ERROR_TYPE.line(self.code.encode("latin-1")), \
            json.dumps(body).encode()


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
    setup_counted: bool = False
    """Its start-up time went into ModelSetupTime (a health flap does not count it again)."""
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
        self._fetches: dict[str, asyncio.Future[Path]] = {}
        """One download per model, running or done, however many invocations wait for it."""

    async def path(self, name: str) -> Path:
        fetch = self._fetches.get(name)
        if fetch is None:
            parts = name.split("/")
            if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise RouterError("ValidationError", 400, f"TargetModel {name!r} is not a "
                                  "valid relative key under the model's S3 prefix")
            fetch = self._fetches[name] = asyncio.ensure_future(self._download(name))
            fetch.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen
        # shielded: an invocation that gives up (its deadline) leaves the download to finish
        # for the next, rather than a half-written directory another download would race
        return await asyncio.shield(fetch)

    async def _download(self, name: str) -> Path:
        dest = self.root / quote(name, safe="")
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, self._fetch, self.prefix + name, dest)
        except Exception as exc:  # noqa: BLE001 - StagingError and friends
            del self._fetches[name]  # a later invocation tries again
            raise RouterError("ValidationError", 400, f"Failed to download model data "
                              f"for TargetModel {name!r}: {exc}") from None
        return dest


@dataclass(eq=False)
class Variant:
    spec: VariantSpec
    model: ModelSpec
    instances: list[Instance] = field(default_factory=list)
    cache: ModelCache | None = None
    meter: VariantMeter | None = None
    """Where its invocations are counted (None: endpoint metrics are off)."""
    serving: int = 0
    """Its healthy instances when the last first attempt was routed (what an invocation's
    InvocationsPerInstance divides by), kept by :meth:`pick` at no extra cost."""
    desired_count: int = 0
    """The instances it should have: the config's count, then what autoscaling or
    UpdateEndpointWeightsAndCapacities set."""
    weight: float = -1.0
    """Its share of the traffic: the config's, then UpdateEndpointWeightsAndCapacities'."""
    _turn: int = 0

    def __post_init__(self) -> None:
        if not self.desired_count:
            self.desired_count = self.spec.instance_count
        if self.weight < 0:
            self.weight = self.spec.weight

    @property
    def name(self) -> str:
        return self.spec.name

    @functools.cached_property
    def invoked_line(self) -> bytes:
        """The header line that names this variant in each answer."""
        return INVOKED_VARIANT.line(self.name.encode("latin-1"))

    def healthy(self) -> list[Instance]:
        return [i for i in self.instances if i.healthy and not (i.retired or i.draining)]

    def pick(self, exclude: AbstractSet[Instance]) -> Instance | None:
        """The healthy instance with the fewest requests in flight (round robin on ties)."""
        candidates = [i for i in self.healthy() if i not in exclude]
        if not exclude:
            self.serving = len(candidates)
        if len(candidates) < 2:
            return candidates[0] if candidates else None
        self._turn += 1
        start = self._turn % len(candidates)
        ordered = candidates[start:] + candidates[:start]
        return min(ordered, key=lambda i: i.inflight)


_NOTHING_TRIED: frozenset[Instance] = frozenset()


@dataclass(slots=True)
class Plan:
    """Where one attempt at an invocation goes, as :meth:`Router.plan` decided it."""

    variant: Variant
    instance: Instance
    target_model: str | None
    deadline: float
    """``time.monotonic()`` past which the invocation has timed out (retries share it)."""

    @property
    def direct(self) -> bool:
        """One container, no model to load: the fast path can forward it as it is."""
        return self.target_model is None and len(self.instance.upstreams) == 1


def _text(value: bytes | None) -> str | None:
    """A header value as text; None when absent or empty."""
    if value is None:
        return None
    return value.strip(b" \t").decode("latin-1") or None


def _count(plan: Plan, status: int, sent: float) -> None:
    """Count one answered invocation into its variant's meter: ``status`` is the model's (0:
    none in time), ``sent`` when the containers were first asked."""
    meter = plan.variant.meter
    if meter is not None:
        answered = time.monotonic()
        arrived = plan.deadline - INVOCATION_TIMEOUT  # the deadline was set on arrival
        meter.invocation(status, plan.variant.serving, answered - sent, answered - arrived)


def container_fields(raw: dict[bytes, bytes], content_type: bytes | None,
                     accept: bool) -> bytes:
    """The header lines one container gets: ``content_type`` (the request's, or in a pipeline
    the previous container's answer's), the caller's Accept when this container's answer is
    the one the caller gets (``accept``), and the fields passed through unchanged."""
    lines: list[bytes] = []
    if content_type is not None:
        lines += (CONTENT_TYPE.prefix, content_type, b"\r\n")
    if accept and (value := raw.get(ACCEPT.key)) is not None:
        lines += (ACCEPT.prefix, value, b"\r\n")
    for passed in PASSED_THROUGH:
        if (value := raw.get(passed.key)) is not None:
            lines += (passed.prefix, value, b"\r\n")
    return b"".join(lines)


class Router:
    """Routes invocations for one endpoint; see the module docstring."""

    def __init__(self, endpoint_name: str, log_dir: Path) -> None:
        self.endpoint_name = endpoint_name
        self.log_dir = log_dir
        self.variants: list[Variant] = []
        self.on_suspect: Callable[[Instance], None] = lambda instance: None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- serving ---------------------------------------------------------------------------
    async def start(self, host: str = LOOPBACK) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ServerConnection(self.dispatch, MAX_REQUEST_BYTES, _refuse, _bad_request),
            host, 0, backlog=1024)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    def dispatch(self, request: Message, reply: Reply) -> None:
        """Answer one request through ``reply``.

        The common invocation (a :attr:`Plan.direct` one, with an idle pooled connection to the
        chosen instance) is forwarded right here and answered from the container's response
        callback; anything else, and any retry, goes to :meth:`handle`.
        """
        if request.method != "POST" or request.target != "/invocations":
            reply(*self._other(request))
            return
        try:
            plan = self.plan(request, time.monotonic() + INVOCATION_TIMEOUT)
        except RouterError as exc:
            reply(*exc.render())
            return
        if not (plan.direct and self._forward(plan, request, reply)):
            self._spawn(request, reply, plan.deadline, set(), plan)

    def _forward(self, plan: Plan, request: Message, reply: Reply) -> bool:
        """The fast path: send on an idle connection, answer from its callback; False when
        there is none (nothing was sent)."""
        instance = plan.instance
        raw = request.raw
        sent = time.monotonic()

        def done(response: Message | None, error: Exception | None) -> None:
            instance.inflight -= 1
            if response is not None:
                answer = self._answer(plan, response)
                _count(plan, response.status, sent)
                reply(*answer)
            elif isinstance(error, StaleConnection):  # never reached the container
                self._spawn(request, reply, plan.deadline, set())
            elif isinstance(error, TimeoutError):
                _count(plan, 0, sent)
                reply(*self._timed_out(instance).render())
            else:
                self._unanswered(instance, error)
                self._spawn(request, reply, plan.deadline, {instance})

        fields = container_fields(raw, raw.get(CONTENT_TYPE.key), True)
        if not instance.upstreams[0].send("POST", "/invocations", fields, request.body, done,
                                          plan.deadline):
            return False
        instance.inflight += 1
        return True

    def _spawn(self, request: Message, reply: Reply, deadline: float, tried: set[Instance],
               plan: Plan | None = None) -> None:
        async def run() -> None:
            reply(*await self.handle(request, tried, plan, deadline))

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _other(self, request: Message) -> Response:
        if request.method == "GET" and request.target == "/ping":
            ok = any(v.healthy() for v in self.variants)
            return (200 if ok else 503), b"", b""
        return RouterError("UnknownOperationException", 404,
                           f"no route {request.method} {request.target}").render()

    async def handle(self, request: Message, tried: set[Instance], plan: Plan | None,
                     deadline: float) -> Response:
        """The response to one request, by the general (coroutine) path; ``plan``: the one
        the fast path made but could not send (no idle connection to its instance)."""
        if request.method != "POST" or request.target != "/invocations":
            return self._other(request)
        try:
            return await self.invoke(request, deadline, tried, plan)
        except RouterError as exc:
            return exc.render()
        except Exception as exc:
            log.exception("router failure")
            return RouterError("InternalFailure", 500, f"router failure: {exc!r}").render()

    # -- routing ---------------------------------------------------------------------------
    def plan(self, request: Message, deadline: float,
             tried: AbstractSet[Instance] = _NOTHING_TRIED) -> Plan:
        """Where ``request`` goes next: its variant (the one it names, else a weighted choice),
        an instance of it not in ``tried``, and its target model; :class:`RouterError` when it
        cannot go anywhere."""
        raw = request.raw
        target = raw.get(TARGET_VARIANT.key)
        target_model = _text(raw.get(TARGET_MODEL.key))
        # no await in here: the variants cannot change while a plan is made
        variants = self.variants
        if target is None and len(variants) == 1 and variants[0].weight > 0:
            variant = variants[0]  # the usual endpoint: nothing to choose
        else:
            variant = self._choose_variant(_text(target))
        if variant.model.multi_model and not target_model:
            raise RouterError("ValidationError", 400, f"Endpoint {self.endpoint_name!r} is "
                              "a multi-model endpoint: TargetModel is required")
        if target_model and not variant.model.multi_model:
            raise RouterError("ValidationError", 400, f"TargetModel given, but endpoint "
                              f"{self.endpoint_name!r} is not a multi-model endpoint")
        instance = variant.pick(tried)
        if instance is not None:
            return Plan(variant, instance, target_model, deadline)
        if target is None and not variant.healthy():
            raise self._unavailable()
        raise RouterError("ServiceUnavailable", 503, f"Variant {variant.name!r} of "
                          f"endpoint {self.endpoint_name!r} has no healthy instance "
                          "right now; retry shortly")

    def _unavailable(self) -> RouterError:
        return RouterError("ServiceUnavailable", 503, f"Endpoint {self.endpoint_name!r} has "
                           "no healthy instance right now; retry shortly")

    def _choose_variant(self, target: str | None) -> Variant:
        if target:
            for variant in self.variants:
                if variant.name == target:
                    return variant
            raise RouterError("ValidationError", 400, f"The variant {target!r} does not exist "
                              f"on endpoint {self.endpoint_name!r}; variants: "
                              f"{[v.name for v in self.variants]}")
        live = [v for v in self.variants if v.weight > 0 and v.healthy()]
        if not live:
            raise self._unavailable()
        if len(live) == 1:
            return live[0]
        return random.choices(live, weights=[v.weight for v in live])[0]  # noqa: S311 - a traffic split, not a secret

    async def invoke(self, request: Message, deadline: float, tried: set[Instance],
                     plan: Plan | None = None) -> Response:
        """Answer ``request`` from the variant's instances, trying another when one gives no
        response, until ``deadline``."""
        while True:
            if plan is None or plan.instance.draining or plan.instance.retired:
                plan = self.plan(request, deadline, tried)  # (re)planned: its instance left
            instance = plan.instance
            tried.add(instance)
            instance.inflight += 1
            sent = time.monotonic()
            try:
                response = await self._through(plan, request)
            except TimeoutError:
                _count(plan, 0, sent)
                raise self._timed_out(instance) from None
            except RouterError as exc:  # a container's error before the last (or a model's)
                status = exc.extra.get("OriginalStatusCode")
                if isinstance(status, int):
                    _count(plan, status, sent)
                raise
            except _UNANSWERED as exc:
                self._unanswered(instance, exc)
                plan = None
                continue
            finally:
                instance.inflight -= 1
            _count(plan, response.status, sent)
            return self._answer(plan, response)

    def _unanswered(self, instance: Instance, error: Exception | None) -> None:
        log.warning("instance %s gave no response (%s); retrying elsewhere", instance.ident,
                    error)
        self.on_suspect(instance)

    def _answer(self, plan: Plan, response: Message) -> Response:
        """The caller's answer to the last container's ``response``."""
        if not 200 <= response.status < 300:
            return self._model_error(response, plan.instance,
                                     len(plan.instance.upstreams) - 1).render()
        lines = [plan.variant.invoked_line]
        answer = response.raw
        for echoed in ECHOED:
            if (value := answer.get(echoed.key)) is not None:
                lines += (echoed.prefix, value, b"\r\n")
        return 200, b"".join(lines), response.body

    def _timed_out(self, instance: Instance) -> RouterError:
        name = instance.containers[-1].hostname
        return RouterError(
            "ModelError", 424, f"Received server error (0) from {name} with message "
            f"\"Your invocation timed out while waiting for a response from container "
            f"{name}\" (after {INVOCATION_TIMEOUT:.0f} s).", OriginalStatusCode=0,
            OriginalMessage="invocation timed out", LogStreamArn=self._log_of(instance))

    async def _through(self, plan: Plan, request: Message) -> Message:
        """The last container's response (a pipeline's containers called in order)."""
        if plan.target_model is not None:
            return await self._invoke_model(plan, request)
        instance, raw, body = plan.instance, request.raw, request.body
        last = len(instance.upstreams) - 1
        content_type = raw.get(CONTENT_TYPE.key)
        response = Message({}, b"")
        for index, upstream in enumerate(instance.upstreams):
            if index:  # a pipeline: the previous response is the next request
                content_type, body = response.raw.get(CONTENT_TYPE.key), response.body
            response = await upstream.request(
                "POST", "/invocations", container_fields(raw, content_type, index == last),
                body, deadline=plan.deadline)
            if index < last:
                self._check(response, instance, index)
        return response

    async def _invoke_model(self, plan: Plan, request: Message) -> Message:
        instance, name = plan.instance, plan.target_model
        assert name is not None
        upstream = instance.upstreams[0]
        path = f"/models/{quote(name, safe='/')}/invoke"
        raw = request.raw
        fields = container_fields(raw, raw.get(CONTENT_TYPE.key), True) + \
            TARGET_MODEL.line(name.encode("latin-1"))
        for _ in range(64):
            await self._ensure_loaded(plan)
            response = await upstream.request("POST", path, fields, request.body,
                                              deadline=plan.deadline)
            if response.status == 404:  # unloaded behind our back (e.g. a restarted worker)
                instance.loaded.pop(name, None)
                continue
            if response.status == 507 and self._evict(instance, keep=name) is not None:
                await self._unload_evicted(instance, plan.deadline)
                continue
            if 200 <= response.status < 300:
                instance.loaded.move_to_end(name)
            return response
        raise RouterError("ModelError", 424, f"TargetModel {name!r} could not be served: the "
                          "container kept answering 404/507", OriginalStatusCode=507,
                          OriginalMessage="insufficient memory", LogStreamArn=self._log_of(instance))

    async def _ensure_loaded(self, plan: Plan) -> None:
        instance, name, cache = plan.instance, plan.target_model, plan.variant.cache
        assert name is not None and cache is not None
        if name in instance.loaded:
            instance.loaded.move_to_end(name)
            return
        try:  # the download counts against the invocation's deadline too
            directory = await asyncio.wait_for(cache.path(name), plan.deadline - time.monotonic())
        except asyncio.TimeoutError:
            raise TimeoutError(f"TargetModel {name!r}: not downloaded before the deadline") \
                from None
        upstream = instance.upstreams[0]
        url = instance.containers[0].model_url(directory)  # the container's view of it
        payload = json.dumps({"model_name": name, "url": url}).encode()
        while True:
            response = await upstream.request("POST", "/models", _JSON, payload,
                                              deadline=plan.deadline)
            if response.status in (200, 409):
                instance.loaded[name] = None
                return
            if response.status == 507 and self._evict(instance, keep=name) is not None:
                await self._unload_evicted(instance, plan.deadline)
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

    async def _unload_evicted(self, instance: Instance, deadline: float) -> None:
        upstream = instance.upstreams[0]
        evicted, instance.evicted = instance.evicted, []
        for name in evicted:
            response = await upstream.request("DELETE", f"/models/{quote(name, safe='/')}", b"",
                                              deadline=deadline)
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
