"""What a client needs to reach a wire-API server: the variables (as botocore itself resolves
them), their shell form, and the owner-only record a server keeps in its state directory."""

from __future__ import annotations

import http.server
import json
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import botocore.session
import pytest

from local_mode.wire.endpoint import (
    HEALTH_PATH,
    RECORD_NAME,
    SERVED,
    ApiEndpoint,
    endpoint_variable,
)

URL = "http://127.0.0.1:45678"
S3_URL = "http://127.0.0.1:45679"
SECRET = "a'b\"c$d`e\\f g!h*i;j&k|l<m>n(o)p{q}r~s#t%u^v"
"""Every character a POSIX shell would act on, in one secret."""


def _endpoint(**changes: object) -> ApiEndpoint:
    endpoint = ApiEndpoint(URL, "eu-west-1", "LOCLABCDEFGHIJKLMNOP", SECRET, S3_URL, os.getpid(),
                           "/tmp/state dir/it's sagemaker-sdk-config.yaml")
    return replace(endpoint, **changes)  # type: ignore[arg-type]


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.fixture()
def clean_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No AWS variable of the caller's, and no config or credentials file of theirs."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "SAGEMAKER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    yield


def test_the_variable_names_are_botocores() -> None:
    env = _endpoint().environ()
    assert {name for name in env if name.startswith("AWS_ENDPOINT_URL_")} == {
        "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_ENDPOINT_URL_CLOUDWATCH",
        "AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING", "AWS_ENDPOINT_URL_STS",
        "AWS_ENDPOINT_URL_S3"}
    assert env["AWS_ENDPOINT_URL_S3"] == S3_URL
    assert env["SAGEMAKER_USER_CONFIG_OVERRIDE"] == "/tmp/state dir/it's sagemaker-sdk-config.yaml"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == \
        ("LOCLABCDEFGHIJKLMNOP", SECRET)
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert [endpoint_variable(service) for service in SERVED] == [
        "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_ENDPOINT_URL_CLOUDWATCH",
        "AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING", "AWS_ENDPOINT_URL_STS"]


def test_without_an_s3_url_s3_is_left_to_botocore() -> None:
    env = _endpoint(s3_url=None, sdk_config=None).environ()
    assert "AWS_ENDPOINT_URL_S3" not in env and "SAGEMAKER_USER_CONFIG_OVERRIDE" not in env


@pytest.mark.usefixtures("clean_aws_environment")
def test_botocore_resolves_the_variables_to_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = _endpoint()
    for name, value in endpoint.environ().items():
        monkeypatch.setenv(name, value)
    session = botocore.session.Session()
    for service in (*SERVED, "s3"):
        client = session.create_client(service)
        expected = S3_URL if service == "s3" else URL
        assert client.meta.endpoint_url == expected, service
        assert client.meta.region_name == "eu-west-1"
    credentials = session.get_credentials()
    assert credentials is not None
    assert (credentials.access_key, credentials.secret_key) == ("LOCLABCDEFGHIJKLMNOP", SECRET)


@pytest.mark.usefixtures("clean_aws_environment")
def test_without_an_s3_url_botocore_reaches_aws_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _endpoint(s3_url=None).environ().items():
        monkeypatch.setenv(name, value)
    session = botocore.session.Session()
    assert session.create_client("logs").meta.endpoint_url == URL
    assert "amazonaws.com" in session.create_client("s3").meta.endpoint_url


def test_client_args_reach_the_server_or_its_s3() -> None:
    endpoint = _endpoint()
    session = botocore.session.Session()
    assert session.create_client("sagemaker", **endpoint.client_args("sagemaker")) \
        .meta.endpoint_url == URL
    assert session.create_client("s3", **endpoint.client_args("s3")).meta.endpoint_url == S3_URL


def test_the_shell_form_round_trips_through_bash(tmp_path: Path) -> None:
    endpoint = _endpoint()
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "X": endpoint.shell(),
            "AWS_SESSION_TOKEN": "stale", "AWS_SECURITY_TOKEN": "stale",
            "AWS_PROFILE": "someone-else"}
    run = subprocess.run(["bash", "-c", 'eval "$X"; env -0'], env=base, capture_output=True,
                         check=True)
    seen = dict(item.split("=", 1) for item in run.stdout.decode().split("\0") if "=" in item)
    for name, value in endpoint.environ().items():
        assert seen.get(name) == value, name
    assert not {"AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"} & set(seen)


@pytest.fixture()
def answering() -> Iterator[ApiEndpoint]:
    """An endpoint whose URL answers the health path as that server (instance ``run-1``): a
    real HTTP server on the loopback."""
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok", "instance": "run-1"}).encode()
            self.send_response(200 if self.path == HEALTH_PATH else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield _endpoint(url=f"http://127.0.0.1:{server.server_port}", instance="run-1")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_record_is_owner_only_and_reads_back(tmp_path: Path,
                                                 answering: ApiEndpoint) -> None:
    previous = os.umask(0)  # even where new files would be world-writable
    try:
        path = answering.write(tmp_path / "state")
    finally:
        os.umask(previous)
    assert path == tmp_path / "state" / RECORD_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ApiEndpoint.read(tmp_path / "state") == answering
    assert [p.name for p in (tmp_path / "state").iterdir()] == [RECORD_NAME]  # no temp left
    assert answering.secret_access_key not in repr(answering)


def test_a_record_whose_url_answers_as_another_server_is_no_server(
        tmp_path: Path, answering: ApiEndpoint) -> None:
    """A live pid is not enough (pids are reused): the URL must answer as that run."""
    replace(answering, instance="run-0").write(tmp_path)
    assert ApiEndpoint.read(tmp_path) is None
    _endpoint(url="http://127.0.0.1:1").write(tmp_path)  # nothing answers there
    assert ApiEndpoint.read(tmp_path) is None


def test_a_record_of_a_dead_server_is_no_server(tmp_path: Path) -> None:
    _endpoint(pid=_dead_pid()).write(tmp_path)
    assert ApiEndpoint.read(tmp_path) is None


GARBLED = {
    "empty": "", "not-json": "not json", "list": "[]", "null": "null", "number": "5",
    "string": '"text"', "no-members": "{}", "some-members": '{"url": "http://x"}',
    "extra-member": json.dumps(asdict(_endpoint()) | {"extra": 1}),
    "pid-not-a-number": json.dumps({**asdict(_endpoint()), "pid": "not a pid"}),
    # signal 0 to pid 0 or -1 "succeeds" (a process group, everyone): still no server
    "pid-0": json.dumps({**asdict(_endpoint()), "pid": 0}),
    "pid-minus-1": json.dumps({**asdict(_endpoint()), "pid": -1}),
}


@pytest.mark.parametrize("content", list(GARBLED.values()), ids=list(GARBLED))
def test_a_garbled_record_is_no_server(tmp_path: Path, content: str) -> None:
    (tmp_path / RECORD_NAME).write_text(content)
    assert ApiEndpoint.read(tmp_path) is None


def test_no_record_or_no_directory_is_no_server(tmp_path: Path) -> None:
    assert ApiEndpoint.read(tmp_path) is None
    assert ApiEndpoint.read(tmp_path / "missing") is None


def test_forget_removes_only_its_own_record(tmp_path: Path, answering: ApiEndpoint) -> None:
    mine, theirs = answering, replace(answering, pid=_dead_pid())
    mine.write(tmp_path)
    theirs.forget(tmp_path)
    assert ApiEndpoint.read(tmp_path) == mine
    mine.forget(tmp_path)
    assert not (tmp_path / RECORD_NAME).exists()
    mine.forget(tmp_path)  # nothing to forget: no error


@pytest.mark.parametrize("content", ["not json", "{}", "[]", "null", "5", '"text"'])
def test_forget_leaves_a_garbled_record_alone(tmp_path: Path, content: str) -> None:
    """A record that is not a server's (read() calls it none) is not this server's to remove,
    and finding one must not make stopping fail."""
    (tmp_path / RECORD_NAME).write_text(content)
    _endpoint().forget(tmp_path)
    assert (tmp_path / RECORD_NAME).read_text() == content
