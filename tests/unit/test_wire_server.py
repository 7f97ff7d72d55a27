"""The wire-API server's life: it serves on a loopback port from a thread, records itself in its
state directory while it runs, refuses to be a second server for that directory, and leaves no
thread, port or record behind when it stops."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import stat
import subprocess
import threading
import urllib.request
from pathlib import Path

import boto3
import pytest

import local_mode
from local_mode.errors import ValidationException
from local_mode.wire.endpoint import RECORD_NAME, ApiEndpoint
from local_mode.wire.sdk_config import CONFIG_NAME
from local_mode.wire.server import ApiServer
from local_mode.wire.sigv4 import Credentials
from toolkit.settings import Settings


def _settings(home: Path) -> Settings:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SAGEMAKER_", "OPTML_"))}
    return Settings.from_environ(env | {"HOME": str(home)})


def _server(tmp_path: Path, **kwargs: object) -> ApiServer:
    # real S3 (not moto's, which takes a second to load), so the credentials are given
    kwargs.setdefault("credentials", Credentials("LOCLTESTKEY", "secret"))
    return ApiServer(_settings(tmp_path), state_dir=tmp_path / "state", backend="process",
                     s3_store="aws", **kwargs)  # type: ignore[arg-type]


def _api_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "optml-api"]


def _accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _health(url: str) -> dict[str, str]:
    with urllib.request.urlopen(f"{url}/_optml/health", timeout=10) as answer:
        result: dict[str, str] = json.load(answer)
        return result


def test_start_serves_and_stop_leaves_nothing(tmp_path: Path) -> None:
    assert _api_threads() == []
    server = _server(tmp_path)
    endpoint = server.start()
    port = int(endpoint.url.rsplit(":", 1)[1])
    try:
        assert endpoint.url.startswith("http://127.0.0.1:") and port > 0
        assert endpoint.pid == os.getpid() and endpoint.region == "us-east-1"
        assert endpoint.s3_url is None  # s3_store="aws": real S3, botocore's own endpoint
        assert _health(endpoint.url)["status"] == "ok"
        assert len(_api_threads()) == 1
        assert server.start() is endpoint  # starting a running server is a no-op
    finally:
        server.stop()
    assert _api_threads() == []
    assert not _accepts(port)
    server.stop()  # stopping a stopped server is a no-op


def test_the_server_binds_127_0_0_1_only(tmp_path: Path) -> None:
    """Bound to 127.0.0.1 itself, not to every address: another address of this machine (here
    127.0.0.2, answered by any wildcard bind on Linux) finds nothing listening."""
    with _server(tmp_path) as server:
        port = int(server.url.rsplit(":", 1)[1])
        assert _accepts(port)
        assert not _accepts(port, "127.0.0.2")


def test_the_record_lives_as_long_as_the_server(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with _server(tmp_path) as server:
        record = state / RECORD_NAME
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
        assert ApiEndpoint.read(state) == server.endpoint
        assert json.loads(record.read_text())["secret_access_key"] == \
            server.credentials.secret_access_key
        sdk_config = server.endpoint.sdk_config
        assert sdk_config == str(state / CONFIG_NAME) and Path(sdk_config).is_file()
    assert not (state / RECORD_NAME).exists()
    assert ApiEndpoint.read(state) is None


def test_a_server_without_a_record_writes_none(tmp_path: Path) -> None:
    with _server(tmp_path, record=False):
        assert not (tmp_path / "state" / RECORD_NAME).exists()


def test_a_second_server_for_the_same_state_is_refused_until_the_first_stops(
        tmp_path: Path) -> None:
    first = _server(tmp_path)
    first.start()
    second = _server(tmp_path)
    try:
        with pytest.raises(ValidationException, match="already serves") as refused:
            second.start()
        assert first.endpoint.url in str(refused.value)
        assert len(_api_threads()) == 1  # the refused one started nothing
        assert ApiEndpoint.read(tmp_path / "state") == first.endpoint
    finally:
        first.stop()
    try:
        endpoint = second.start()
        assert ApiEndpoint.read(tmp_path / "state") == endpoint
    finally:
        second.stop()
    assert _api_threads() == []


def test_a_stale_record_of_a_dead_server_does_not_block(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    ApiEndpoint("http://127.0.0.1:1", "us-east-1", "LOCLX", "s", None, child.pid).write(
        tmp_path / "state")
    with _server(tmp_path) as server:
        assert ApiEndpoint.read(tmp_path / "state") == server.endpoint


def test_given_credentials_are_the_ones_accepted(tmp_path: Path) -> None:
    credentials = Credentials("LOCLGIVENKEY00000000", "given-secret")
    with _server(tmp_path, credentials=credentials) as server:
        assert server.endpoint.access_key_id == "LOCLGIVENKEY00000000"
        args = server.endpoint.client_args("sts")
        assert boto3.session.Session().client("sts", **args).get_caller_identity()[
            "Account"] == "000000000000"


def test_local_mode_server_is_a_context_manager(tmp_path: Path) -> None:
    with local_mode.server(settings=_settings(tmp_path), state_dir=tmp_path / "state",
                           backend="process") as api:
        assert isinstance(api, ApiServer)
        env = api.endpoint.environ()
        assert env["AWS_ENDPOINT_URL_S3"] == api.url  # the embedded store by default
        sts = boto3.session.Session().client("sts", **api.endpoint.client_args("sts"))
        assert sts.get_caller_identity()["Account"] == "000000000000"
        s3 = boto3.session.Session().client("s3", **api.endpoint.client_args("s3"))
        s3.create_bucket(Bucket="context-manager")
        s3.put_object(Bucket="context-manager", Key="k", Body=b"v")
        assert s3.get_object(Bucket="context-manager", Key="k")["Body"].read() == b"v"
        port = int(api.url.rsplit(":", 1)[1])
    assert _api_threads() == [] and not _accepts(port)
    assert not (tmp_path / "state" / RECORD_NAME).exists()


def test_servers_starting_at_once_on_one_state_directory_make_one(tmp_path: Path) -> None:
    """The check for a running server and the record are made under one lock: of servers
    started together, one serves and the others are refused (none is left unrecorded)."""
    servers = [_server(tmp_path) for _ in range(4)]
    barrier = threading.Barrier(len(servers))
    outcomes: list[str] = []

    def start(server: ApiServer) -> None:
        barrier.wait()
        try:
            server.start()
            outcomes.append("serving")
        except ValidationException:
            outcomes.append("refused")

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sorted(outcomes) == ["refused"] * 3 + ["serving"]
        (winner,) = [s for s in servers if s._server is not None]
        assert ApiEndpoint.read(tmp_path / "state") == winner.endpoint
    finally:
        for server in servers:
            server.stop()
    assert _api_threads() == []


def test_the_record_of_another_run_at_the_same_url_is_not_believed(tmp_path: Path) -> None:
    with _server(tmp_path) as server:
        impostor = dataclasses.replace(server.endpoint, instance="another-run")
        impostor.write(tmp_path / "state")
        assert ApiEndpoint.read(tmp_path / "state") is None  # pid alive, URL answers otherwise
