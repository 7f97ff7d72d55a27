"""sagemaker-runtime's REST protocol on the wire: the request-line parser, and the header fields
of InvokeEndpoint as botocore's model names them, end to end from a real boto3 client through
the wire application and the local runtime client to an endpoint's router.

The router here is a small HTTP server standing where a local endpoint's router listens (its
port in the endpoint's description): it records what the runtime client forwarded and answers
as a router does, so the test sees both directions without starting a container.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import botocore.session
import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from local_mode.shapes import response_errors
from local_mode.wire.runtime_rest import runtime_operation
from tests.unit.test_wire_app import (
    boto3_client,
    build_app,
    build_services,
    send_signed,
)

ACTIONS = {"invocations": "InvokeEndpoint", "async-invocations": "InvokeEndpointAsync",
           "invocations-response-stream": "InvokeEndpointWithResponseStream"}


# -- the request line ---------------------------------------------------------------------------

_SEGMENT = st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1,
                   max_size=30)


_PATHS = st.one_of(
    st.text(max_size=80),
    st.builds(lambda prefix, name, action: f"{prefix}{name}/{action}",
              st.sampled_from(["/endpoints/", "/endpoints//", "endpoints/", "/x/endpoints/",
                               "/endpoints/a/"]),
              st.text(max_size=20),
              st.sampled_from(list(ACTIONS)) | st.text(max_size=20)))


@settings(max_examples=300, deadline=None)
@given(method=st.sampled_from(["POST", "GET", "PUT"]) | st.text(max_size=10), path=_PATHS)
def test_the_parser_never_raises_and_only_matches_a_post_of_the_three_actions(
        method: str, path: str) -> None:
    parts = path.split("/")
    expected = method == "POST" and len(parts) == 4 and parts[:2] == ["", "endpoints"] and \
        bool(parts[2]) and parts[3] in ACTIONS
    found = runtime_operation(method, path)
    assert (found is not None) == expected, (method, path, found)
    if found is not None:
        assert found[0] == ACTIONS[parts[3]]


@settings(max_examples=300, deadline=None)
@given(name=_SEGMENT, action=st.sampled_from(list(ACTIONS)))
def test_the_endpoint_name_is_unquoted(name: str, action: str) -> None:
    assert runtime_operation("POST", f"/endpoints/{quote(name, safe='')}/{action}") == \
        (ACTIONS[action], name)


@settings(max_examples=200, deadline=None)
@given(name=_SEGMENT.map(lambda s: quote(s, safe="")),
       action=st.text(max_size=30).filter(lambda a: a not in ACTIONS),
       method=st.sampled_from(["GET", "PUT", "post", "HEAD", "DELETE", ""]))
def test_other_actions_and_methods_are_not_the_runtime(name: str, action: str,
                                                       method: str) -> None:
    assert runtime_operation("POST", f"/endpoints/{name}/{action}") is None
    assert runtime_operation(method, f"/endpoints/{name}/invocations") is None


@pytest.mark.parametrize("path", [
    "/endpoints//invocations", "/endpoints/a/invocations/", "/endpoints/a/b/invocations",
    "endpoints/a/invocations", "/Endpoints/a/invocations", "/endpoints/a/Invocations",
    "/endpoints/a/invocations?x=1", "//endpoints/a/invocations", "/endpoints/a",
    "/endpoints/a/invocations\n", "/endpoints/a/invocations%00",
])
def test_near_misses_are_not_the_runtime(path: str) -> None:
    assert runtime_operation("POST", path) is None


def test_a_quoted_slash_stays_in_the_name() -> None:
    assert runtime_operation("POST", "/endpoints/a%2Fb/invocations") == \
        ("InvokeEndpoint", "a/b")


# -- the header fields, from botocore's model -----------------------------------------------------

def _header_members(direction: str) -> dict[str, str]:
    """``{member: header name}`` of InvokeEndpoint's ``direction`` ("input"/"output") shape,
    read from botocore's own model (not the module's)."""
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    shape = getattr(model.operation_model("InvokeEndpoint"), f"{direction}_shape")
    return {name: member.serialization["name"] for name, member in shape.members.items()
            if member.serialization.get("location") == "header"}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_services(tmp_path_factory.mktemp("wire-runtime") / "state")


@pytest.fixture(scope="module")
def web(services: Any) -> Client:
    return Client(build_app(services))


def test_every_header_member_of_the_model_reaches_the_client(web: Client) -> None:
    """Each input header field of botocore's model, too long for its member, sent at once: the
    client's validation names every member, so each field was read as its member."""
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    shape = model.operation_model("InvokeEndpoint").input_shape
    members = _header_members("input")
    assert {"ContentType", "Accept", "CustomAttributes", "TargetModel", "TargetVariant",
            "InferenceId"} <= set(members)
    headers = {header: "a" * (shape.members[member].metadata["max"] + 1)
               for member, header in members.items()}
    answer = send_signed(web, "POST", "/endpoints/any/invocations", "sagemaker", b"{}",
                         headers)
    assert answer.status_code == 400 and "x-amzn-ErrorType" in answer.headers
    message = answer.get_json(force=True)["message"]
    assert [m for m in members if f"'{m}'" not in message] == []


class _Router(BaseHTTPRequestHandler):
    """Answers ``POST /invocations`` as an endpoint's router; remembers what it was sent."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Router.seen.append((self.path, dict(self.headers.items()), body))
        if body == b"fail":
            reply = json.dumps({"Message": "Received server error (500) from primary",
                                "OriginalStatusCode": 500, "OriginalMessage": "boom",
                                "LogStreamArn": "arn:aws:logs:us-east-1:000000000000:log-group"
                                                ":/aws/sagemaker/Endpoints/e"}).encode()
            self._answer(424, reply, {"Content-Type": "application/json",
                                      "x-amzn-ErrorType": "ModelError"})
            return
        echoed = {"Content-Type": "application/x-answer",
                  "x-Amzn-Invoked-Production-Variant": "AllTraffic"}
        attributes = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if attributes is not None:
            echoed["X-Amzn-SageMaker-Custom-Attributes"] = f"echo:{attributes}"
        self._answer(200, b"answer:" + body, echoed)

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        return None


@pytest.fixture()
def endpoint(services: Any) -> Iterator[str]:
    """An InService endpoint whose router is :class:`_Router`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Router)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Router.seen = []
    name = f"ep-{uuid.uuid4().hex[:8]}"
    store = services.runtime.client.store
    store.create("endpoints", name, {"EndpointName": name, "EndpointStatus": "InService",
                                     "RouterPort": server.server_port}, {})
    try:
        yield name
    finally:
        services.runtime.client.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_header_members_travel_both_ways(web: Client, endpoint: str) -> None:
    runtime, bridge = boto3_client(web, "sagemaker-runtime")
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint, Body=b"1,2,3", ContentType="text/csv", Accept="application/json",
        CustomAttributes="trace=1", TargetVariant="AllTraffic", InferenceId="inference-7")
    assert response_errors("InvokeEndpoint", answer, "sagemaker-runtime") == []
    assert answer["Body"].read() == b"answer:1,2,3"
    assert answer["ContentType"] == "application/x-answer"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["CustomAttributes"] == "echo:trace=1"

    sent_on_wire = {name.lower() for name in bridge.sent[0].headers}
    inputs = _header_members("input")
    for member in ("ContentType", "Accept", "CustomAttributes", "TargetVariant",
                   "InferenceId"):
        assert inputs[member].lower() in sent_on_wire  # boto3 sent them as the model says
    ((path, forwarded, body),) = _Router.seen
    forwarded = {name.lower(): value for name, value in forwarded.items()}
    assert (path, body) == ("/invocations", b"1,2,3")
    assert {member: forwarded.get(inputs[member].lower()) for member in (
        "ContentType", "Accept", "CustomAttributes", "TargetVariant", "InferenceId")} == {
        "ContentType": "text/csv", "Accept": "application/json",
        "CustomAttributes": "trace=1", "TargetVariant": "AllTraffic",
        "InferenceId": "inference-7"}
    outputs = _header_members("output")
    assert {"ContentType", "InvokedProductionVariant", "CustomAttributes"} <= set(outputs)


def test_a_model_error_keeps_its_members_where_boto3_reads_them(web: Client,
                                                                endpoint: str) -> None:
    runtime, _ = boto3_client(web, "sagemaker-runtime")
    with pytest.raises(ClientError) as failed:
        runtime.invoke_endpoint(EndpointName=endpoint, Body=b"fail")
    error = failed.value
    assert isinstance(error, runtime.exceptions.ModelError)
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error.response["OriginalStatusCode"] == 500
    assert error.response["OriginalMessage"] == "boom"
    assert error.response["LogStreamArn"].endswith(":/aws/sagemaker/Endpoints/e")


@pytest.mark.parametrize("action", ["async-invocations", "invocations-response-stream"])
def test_the_other_runtime_actions_are_unknown_operations(web: Client, action: str) -> None:
    answer = send_signed(web, "POST", f"/endpoints/e/{action}", "sagemaker", b"x",
                         {"Content-Type": "text/csv"})
    assert answer.status_code == 400
    assert answer.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert ACTIONS[action] in answer.get_json(force=True)["message"]
