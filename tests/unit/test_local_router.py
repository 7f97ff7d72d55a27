"""The router's HTTP parsing and routing decisions (no processes: real asyncio streams)."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_mode.endpoints.http import (
    HTTPProtocolError,
    PayloadTooLarge,
    parse_head,
    read_request,
    render_response,
)
from local_mode.endpoints.router import Instance, ModelCache, Router, RouterError, Variant
from local_mode.endpoints.spec import ModelSpec, VariantSpec, variants_from_config
from local_mode.errors import ValidationException


def _read(data: bytes, limit: int | None = 1024):
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_request(reader, limit)
    return asyncio.run(go())


header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True)
header_values = st.from_regex(r"[ -~]{0,40}", fullmatch=True).map(str.strip)


@given(st.dictionaries(header_names, header_values, max_size=8), st.binary(max_size=300))
def test_request_round_trip(headers: dict[str, str], body: bytes) -> None:
    headers = {k: v for k, v in headers.items()
               if k.lower() not in ("content-length", "transfer-encoding", "connection")}
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    raw = f"POST /invocations HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
    message = _read(raw + body)
    assert message is not None and message.body == body and message.target == "/invocations"
    for name, value in headers.items():
        assert message.headers[name.lower()] == value or \
            sum(1 for k in headers if k.lower() == name.lower()) > 1


def test_chunked_limits_and_errors() -> None:
    chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert _read(chunked).body == b"abcde"  # type: ignore[union-attr]
    with pytest.raises(PayloadTooLarge) as too_large:
        _read(b"POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n")
    assert too_large.value.declared == 2000
    with pytest.raises(HTTPProtocolError):
        _read(b"NONSENSE\r\n\r\n")
    with pytest.raises(HTTPProtocolError):
        parse_head(b"GET / HTTP/1.1\r\nno colon here")
    assert _read(b"") is None
    assert _read(b"GET /ping HTTP/1.0\r\n\r\n").keep_alive is False  # type: ignore[union-attr]


def test_render_response() -> None:
    raw = render_response(424, [("x-amzn-ErrorType", "ModelError")], b"{}", close=True)
    assert raw.startswith(b"HTTP/1.1 424 Failed Dependency\r\n")
    assert b"Content-Length: 2\r\n" in raw and b"Connection: close\r\n" in raw
    assert raw.endswith(b"\r\n\r\n{}")


def _variant(name: str, weight: float, healthy: int) -> Variant:
    spec = VariantSpec(name, "m", healthy, "local", weight, 600)
    model = ModelSpec.from_request({"ModelName": "m", "PrimaryContainer": {"Image": "x"}})
    variant = Variant(spec, model)
    for n in range(healthy):
        variant.instances.append(Instance(f"{name}-{n}", [], [], healthy=True))
    return variant


def test_least_outstanding_then_round_robin() -> None:
    variant = _variant("A", 1, 3)
    a, b, c = variant.instances
    picks = {variant.pick(set()).ident for _ in range(6)}  # type: ignore[union-attr]
    assert picks == {"A-0", "A-1", "A-2"}
    a.inflight, b.inflight = 2, 1
    assert variant.pick(set()) is c
    assert variant.pick({c}) is b
    c.healthy = False
    b.retired = True
    assert variant.pick(set()) is a
    assert variant.pick({a}) is None


def test_variant_choice() -> None:
    router = Router("e", __import__("pathlib").Path("/tmp"))
    router.variants = [_variant("A", 1, 1), _variant("B", 0, 1), _variant("C", 5, 0)]
    assert {router._choose_variant(None).name for _ in range(20)} == {"A"}
    assert router._choose_variant("B").name == "B"
    with pytest.raises(RouterError) as unknown:
        router._choose_variant("Z")
    status, headers, body = unknown.value.render()
    assert status == 400 and ("x-amzn-ErrorType", "ValidationError") in headers
    assert "does not exist" in json.loads(body)["Message"]
    router.variants = [_variant("A", 1, 0)]
    with pytest.raises(RouterError, match="no healthy instance"):
        router._choose_variant(None)


@pytest.mark.parametrize("name", ["../x", "/abs", "a//b", "a/./b", ""])
def test_model_cache_refuses_unsafe_names(name: str, tmp_path) -> None:
    cache = ModelCache("file:///models", tmp_path, lambda url, dest: dest)
    with pytest.raises(RouterError, match="not a valid"):
        asyncio.run(cache.path(name))


def test_model_cache_fetches_once(tmp_path) -> None:
    calls: list[str] = []

    def fetch(url: str, dest):
        calls.append(url)
        return dest

    cache = ModelCache("s3://b/models", tmp_path, fetch)

    async def go() -> None:
        await asyncio.gather(*(cache.path("a.tar.gz") for _ in range(5)))

    asyncio.run(go())
    assert calls == ["s3://b/models/a.tar.gz"]


def test_specs_are_checked() -> None:
    with pytest.raises(ValidationException, match="unique"):
        variants_from_config({"ProductionVariants": [
            {"VariantName": "a", "ModelName": "m"}, {"VariantName": "a", "ModelName": "m"}]})
    with pytest.raises(ValidationException, match="positive"):
        variants_from_config({"ProductionVariants": [
            {"VariantName": "a", "ModelName": "m", "InitialVariantWeight": 0}]})
    with pytest.raises(ValidationException, match="at most 15"):
        ModelSpec.from_request({"ModelName": "m", "Containers": [{"Image": "x"}] * 16})
    with pytest.raises(ValidationException, match="S3 prefix"):
        ModelSpec.from_request({"ModelName": "m", "PrimaryContainer": {"Image": "x",
                                                                       "Mode": "MultiModel"}})
    pipeline = ModelSpec.from_request({"ModelName": "m", "Containers": [{"Image": "a"},
                                                                         {"Image": "b"}]})
    assert [c.hostname for c in pipeline.containers] == ["container-1", "container-2"]
