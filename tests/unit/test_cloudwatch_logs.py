"""The local ``logs`` client: the service's log groups and streams over the state directory's
log files, read while they grow, with the service's paging, tokens, errors and shapes, and read
by the SageMaker SDK's own log reader as fit(logs=True) and ProcessingJob.wait(logs=True) read
it."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sagemaker.logs import Position, multi_stream_iter
from sagemaker.session import _flush_log_streams, _live_logging_deploy_done, _logs_init
from sagemaker.utils import create_paginator_config

import local_mode
from local_mode import log_events
from local_mode.cloudwatch_logs import (
    InvalidParameterException,
    LogsClient,
    ResourceNotFoundException,
)
from local_mode.log_events import MAX_EVENT_BYTES, MAX_PAGE_BYTES
from local_mode.shapes import response_errors
from local_mode.state import ResourceDir, StateStore

TRAINING = "/aws/sagemaker/TrainingJobs"
PROCESSING = "/aws/sagemaker/ProcessingJobs"
TRANSFORM = "/aws/sagemaker/TransformJobs"
CREATED = datetime(2025, 12, 3, 8, 0, tzinfo=timezone.utc)  # epoch seconds 1764748800
T1 = 1_764_748_801_000  # file modification times the tests set, in epoch ms
T2 = T1 + 5_000
T3 = T1 + 9_000


# -- a state directory as the api modules leave it -------------------------------------------
def training_job(store: StateStore, name: str, created: datetime = CREATED) -> ResourceDir:
    arn = f"arn:aws:sagemaker:local:000000000000:training-job/{name}"
    return store.create("training-jobs", name, {
        "TrainingJobName": name, "TrainingJobArn": arn, "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Starting", "CreationTime": created, "LastModifiedTime": created,
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 2,
                           "VolumeSizeInGB": 1}}, {"TrainingJobName": name})


def processing_job(store: StateStore, name: str, created: datetime = CREATED) -> ResourceDir:
    arn = f"arn:aws:sagemaker:local:000000000000:processing-job/{name}"
    return store.create("processing-jobs", name, {
        "ProcessingJobName": name, "ProcessingJobArn": arn, "ProcessingJobStatus": "InProgress",
        "CreationTime": created, "LastModifiedTime": created,
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "local", "InstanceCount": 2,
                                                  "VolumeSizeInGB": 1}}},
        {"ProcessingJobName": name})


HOST_JOBS: dict[str, Callable[..., ResourceDir]] = {TRAINING: training_job,
                                                    PROCESSING: processing_job}
"""The groups whose streams are a job's hosts' logs, and how a test makes a job of each."""


def transform_job(store: StateStore, name: str) -> ResourceDir:
    return store.create("transform-jobs", name, {
        "TransformJobName": name, "TransformJobStatus": "InProgress", "CreationTime": CREATED,
        "TransformResources": {"InstanceType": "local", "InstanceCount": 2}},
        {"TransformJobName": name})


def endpoint(store: StateStore, name: str) -> ResourceDir:
    return store.create("endpoints", name, {
        "EndpointName": name, "EndpointStatus": "Creating", "CreationTime": CREATED,
        "LastModifiedTime": CREATED}, {"EndpointName": name})


def write(path: Path, data: bytes, mtime_ms: int | None = None, *, append: bool = True) -> None:
    """Write (append) ``data`` as a job's runner does, then date the file ``mtime_ms``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab" if append else "wb") as handle:
        handle.write(data)
    if mtime_ms is not None:
        os.utime(path, ns=(mtime_ms * 1_000_000, mtime_ms * 1_000_000))


@pytest.fixture()
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state")


@pytest.fixture()
def logs(store: StateStore) -> LogsClient:
    client = local_mode.client("logs", state_dir=store.root)
    assert isinstance(client, LogsClient)
    return client


def call(client: LogsClient, method: str, **request: Any) -> dict[str, Any]:
    """The call, its response checked against botocore's output shape."""
    response: dict[str, Any] = getattr(client, method)(**request)
    assert response_errors(client.OPERATIONS[method], response, service="logs") == []
    return response


def events(client: LogsClient, group: str, stream: str, **request: Any) -> dict[str, Any]:
    return call(client, "get_log_events", logGroupName=group, logStreamName=stream, **request)


def messages(response: dict[str, Any]) -> list[str]:
    return [event["message"] for event in response["events"]]


def sdk_read(client: LogsClient, group: str, stream: str, start_time: int = 0) -> Iterator[
        dict[str, Any]]:
    """The SDK's loop: from the head, each page's nextForwardToken, until a page is empty."""
    token: str | None = None
    while True:
        page = events(client, group, stream, startTime=start_time, startFromHead=True,
                      **({"nextToken": token} if token else {}))
        if not page["events"]:
            assert page["nextForwardToken"] == (token or page["nextForwardToken"])
            return
        token = page["nextForwardToken"]
        yield from page["events"]


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


# -- groups and streams ----------------------------------------------------------------------
def test_log_groups_are_the_services_and_exist_with_their_resources(
        store: StateStore, logs: LogsClient) -> None:
    assert call(logs, "describe_log_groups")["logGroups"] == []
    with pytest.raises(ResourceNotFoundException,
                       match="The specified log group does not exist."):
        logs.describe_log_streams(logGroupName=TRAINING)
    training_job(store, "job-a")
    transform_job(store, "batch")
    endpoint(store, "ep")
    groups = call(logs, "describe_log_groups")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [
        "/aws/sagemaker/Endpoints/ep", TRAINING, TRANSFORM]
    assert groups[1]["creationTime"] == int(CREATED.timestamp() * 1000)
    assert groups[1]["arn"] == f"arn:aws:logs:local:000000000000:log-group:{TRAINING}:*"
    assert groups[1]["logGroupArn"] == f"arn:aws:logs:local:000000000000:log-group:{TRAINING}"
    prefixed = call(logs, "describe_log_groups", logGroupNamePrefix="/aws/sagemaker/T")
    assert [g["logGroupName"] for g in prefixed["logGroups"]] == [TRAINING, TRANSFORM]
    pattern = call(logs, "describe_log_groups", logGroupNamePattern="Transform")
    assert [g["logGroupName"] for g in pattern["logGroups"]] == [TRANSFORM]
    pages = list(logs.get_paginator("describe_log_groups").paginate(
        PaginationConfig={"PageSize": 1}))
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == [
        g["logGroupName"] for g in groups]
    with pytest.raises(InvalidParameterException, match="mutually exclusive"):
        logs.describe_log_groups(logGroupNamePrefix="/a", logGroupNamePattern="b")
    for unknown in ("/aws/sagemaker/Endpoints/other", "/aws/sagemaker/ProcessingJobs",
                    "/aws/sagemaker/Endpoints/..", "nope"):
        with pytest.raises(ClientError) as info:
            logs.get_log_events(logGroupName=unknown, logStreamName="x")
        assert error_code(info) == "ResourceNotFoundException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "The specified log group does not exist." in str(info.value)


def test_the_processing_group_exists_with_a_processing_job(store: StateStore,
                                                           logs: LogsClient) -> None:
    training_job(store, "train")
    with pytest.raises(ResourceNotFoundException, match="log group does not exist"):
        logs.describe_log_streams(logGroupName=PROCESSING)
    processing_job(store, "prep", datetime(2025, 12, 2, tzinfo=timezone.utc))
    processing_job(store, "prep-2")
    groups = call(logs, "describe_log_groups", logGroupNamePrefix="/aws/sagemaker/")
    assert [(g["logGroupName"], g["creationTime"]) for g in groups["logGroups"]] == [
        (PROCESSING, 1_764_633_600_000), (TRAINING, int(CREATED.timestamp() * 1000))]
    assert call(logs, "describe_log_streams", logGroupName=PROCESSING)["logStreams"] == []
    store.delete("processing-jobs", "prep")
    store.delete("processing-jobs", "prep-2")
    with pytest.raises(ResourceNotFoundException, match="log group does not exist"):
        logs.get_log_events(logGroupName=PROCESSING, logStreamName="prep/algo-1-1764633600")


@pytest.mark.parametrize("group", sorted(HOST_JOBS))
def test_host_streams_are_each_hosts_log_named_as_the_service_names_them(
        store: StateStore, logs: LogsClient, group: str) -> None:
    """Training and processing jobs: a stream per host, ``<job>/<host>-<creation epoch>``."""
    job = HOST_JOBS[group](store, "myjob")
    other = HOST_JOBS[group](store, "myjob2", datetime(2025, 12, 4, tzinfo=timezone.utc))
    write(job.logs_dir / "all.log", b"algo-1 | merged view\n")
    assert call(logs, "describe_log_streams", logGroupName=group)["logStreams"] == []
    write(job.logs_dir / "algo-1.log", b"one\n", T1)
    write(job.logs_dir / "algo-2.log", b"", T1)
    write(other.logs_dir / "algo-1.log", b"x\n", T2)
    streams = call(logs, "describe_log_streams", logGroupName=group,
                   logStreamNamePrefix="myjob/", orderBy="LogStreamName", limit=2)
    assert "nextToken" not in streams  # the SDK loops while there is one, without passing it
    first, second = streams["logStreams"]
    assert first == {
        "logStreamName": "myjob/algo-1-1764748800", "creationTime": T1,
        "firstEventTimestamp": T1, "lastEventTimestamp": T1, "lastIngestionTime": T1,
        "storedBytes": 0,
        "arn": f"arn:aws:logs:local:000000000000:log-group:{group}:log-stream:"
               "myjob/algo-1-1764748800"}
    assert second["logStreamName"] == "myjob/algo-2-1764748800"
    assert "firstEventTimestamp" not in second and "lastEventTimestamp" not in second
    everything = call(logs, "describe_log_streams", logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in everything] == [
        "myjob/algo-1-1764748800", "myjob/algo-2-1764748800", "myjob2/algo-1-1764806400"]
    assert messages(events(logs, group, "myjob/algo-1-1764748800")) == ["one"]
    with pytest.raises(ResourceNotFoundException,
                       match="The specified log stream does not exist."):
        logs.get_log_events(logGroupName=group, logStreamName="myjob/algo-3-1764748800")
    with pytest.raises(ResourceNotFoundException, match="log stream"):
        logs.get_log_events(logGroupName=group, logStreamName="myjob/all-1764748800")
    # each kind's streams are its own group's only
    (elsewhere,) = set(HOST_JOBS) - {group}
    with pytest.raises(ResourceNotFoundException, match="log group does not exist"):
        logs.describe_log_streams(logGroupName=elsewhere)


def test_endpoint_and_transform_streams(store: StateStore, logs: LogsClient) -> None:
    ep = endpoint(store, "ep")
    write(ep.logs_dir / "AllTraffic-1.log", b"serving\n", T1)
    write(ep.logs_dir / "AllTraffic-2.log", b"serving too\n", T2)
    write(ep.logs_dir / "blue-green-3.log", b"other variant\n", T1)
    group = "/aws/sagemaker/Endpoints/ep"
    streams = call(logs, "describe_log_streams", logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [
        "AllTraffic/AllTraffic-1", "AllTraffic/AllTraffic-2", "blue-green/blue-green-3"]
    assert messages(events(logs, group, "blue-green/blue-green-3")) == ["other variant"]
    batch = transform_job(store, "batch")
    write(batch.logs_dir / "instance-1.log", b"transforming\n", T1)
    write(batch.logs_dir / "instance-2.log", b"", T1)
    streams = call(logs, "describe_log_streams", logGroupName=TRANSFORM)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["batch/instance-1", "batch/instance-2"]
    assert messages(events(logs, TRANSFORM, "batch/instance-1")) == ["transforming"]


def test_the_group_by_identifier_name_or_arn(store: StateStore, logs: LogsClient) -> None:
    write(training_job(store, "j").logs_dir / "algo-1.log", b"a\n", T1)
    arn = f"arn:aws:logs:local:000000000000:log-group:{TRAINING}"
    for identifier in (TRAINING, arn):
        page = call(logs, "get_log_events", logGroupIdentifier=identifier,
                    logStreamName="j/algo-1-1764748800", startFromHead=True)
        assert messages(page) == ["a"]
    with pytest.raises(ResourceNotFoundException):
        logs.describe_log_streams(
            logGroupIdentifier=f"arn:aws:logs:local:111111111111:log-group:{TRAINING}")
    with pytest.raises(InvalidParameterException, match="mutually exclusive"):
        logs.describe_log_streams(logGroupName=TRAINING, logGroupIdentifier=TRAINING)
    with pytest.raises(InvalidParameterException, match="must be specified"):
        logs.describe_log_streams()


def test_describe_log_streams_orders_and_pages(store: StateStore, logs: LogsClient) -> None:
    job = training_job(store, "j")
    for host, stamp in (("algo-1", T3), ("algo-2", T1), ("algo-3", T2)):
        write(job.logs_dir / f"{host}.log", b"line\n", stamp)
    by_time = call(logs, "describe_log_streams", logGroupName=TRAINING,
                   orderBy="LastEventTime", descending=True)["logStreams"]
    assert [s["lastEventTimestamp"] for s in by_time] == [T3, T2, T1]
    pages = list(logs.get_paginator("describe_log_streams").paginate(
        logGroupName=TRAINING, orderBy="LastEventTime", PaginationConfig={"PageSize": 2}))
    assert [[s["lastEventTimestamp"] for s in p["logStreams"]] for p in pages] == [
        [T1, T2], [T3]]
    for page in pages:
        assert response_errors("DescribeLogStreams", page, service="logs") == []
    names = list(logs.get_paginator("describe_log_streams").paginate(
        logGroupName=TRAINING, descending=True, PaginationConfig={"PageSize": 1}))
    assert [s["logStreamName"] for p in names for s in p["logStreams"]] == [
        "j/algo-3-1764748800", "j/algo-2-1764748800", "j/algo-1-1764748800"]
    with pytest.raises(InvalidParameterException,
                       match="Cannot order by LastEventTime with a logStreamNamePrefix."):
        logs.describe_log_streams(logGroupName=TRAINING, logStreamNamePrefix="j/",
                                  orderBy="LastEventTime")
    token = names[0]["nextToken"]
    with pytest.raises(InvalidParameterException):  # another query's token
        logs.describe_log_streams(logGroupName=TRAINING, nextToken=token)


# -- GetLogEvents ----------------------------------------------------------------------------
def test_events_are_complete_lines_timed_when_first_seen(store: StateStore,
                                                         logs: LogsClient) -> None:
    path = training_job(store, "j").logs_dir / "algo-1.log"
    stream = "j/algo-1-1764748800"
    write(path, b"first\n\nsecond \xff\r\nthird, still being wr", T1)
    page = events(logs, TRAINING, stream, startFromHead=True)
    assert page["events"] == [
        {"timestamp": T1, "message": "first", "ingestionTime": T1},
        {"timestamp": T1, "message": "second \ufffd\r", "ingestionTime": T1}]
    write(path, b"itten\nfourth\n", T2)  # the partial line completes later: it is timed then
    page = events(logs, TRAINING, stream, startFromHead=True, nextToken=page["nextForwardToken"])
    assert page["events"] == [
        {"timestamp": T2, "message": "third, still being written", "ingestionTime": T2},
        {"timestamp": T2, "message": "fourth", "ingestionTime": T2}]
    os.utime(path, ns=(T3 * 1_000_000, T3 * 1_000_000))  # touched, nothing new: times stay
    everything = events(logs, TRAINING, stream, startFromHead=True)
    assert [e["timestamp"] for e in everything["events"]] == [T1, T1, T2, T2]
    # another client (a restarted server) sees it all for the first time, at the file's mtime
    fresh = LogsClient(state_dir=store.root)
    assert {e["timestamp"] for e in events(fresh, TRAINING, stream)["events"]} == {T3}


def test_time_range_start_inclusive_end_exclusive(store: StateStore, logs: LogsClient) -> None:
    path = training_job(store, "j").logs_dir / "algo-1.log"
    stream = "j/algo-1-1764748800"
    write(path, b"a\nb\n", T1)
    events(logs, TRAINING, stream)
    write(path, b"c\n", T2)
    events(logs, TRAINING, stream)
    write(path, b"d\n", T3)
    assert messages(events(logs, TRAINING, stream, startTime=T2, startFromHead=True)) == [
        "c", "d"]
    assert messages(events(logs, TRAINING, stream, startTime=T1, endTime=T2)) == ["a", "b"]
    assert messages(events(logs, TRAINING, stream, startTime=T2, endTime=T2 + 1)) == ["c"]
    assert messages(events(logs, TRAINING, stream, startTime=T3 + 1)) == []


def test_default_is_the_tail_and_backward_tokens_page_back(store: StateStore,
                                                           logs: LogsClient) -> None:
    path = training_job(store, "j").logs_dir / "algo-1.log"
    stream = "j/algo-1-1764748800"
    write(path, b"".join(b"line %d\n" % i for i in range(10)), T1)
    tail = events(logs, TRAINING, stream, limit=3)
    assert messages(tail) == ["line 7", "line 8", "line 9"]
    back = events(logs, TRAINING, stream, limit=3, nextToken=tail["nextBackwardToken"])
    assert messages(back) == ["line 4", "line 5", "line 6"]
    back = events(logs, TRAINING, stream, limit=5, nextToken=back["nextBackwardToken"])
    assert messages(back) == ["line 0", "line 1", "line 2", "line 3"]
    start = events(logs, TRAINING, stream, nextToken=back["nextBackwardToken"])
    assert start["events"] == [] and start["nextBackwardToken"] == back["nextBackwardToken"]
    forward = events(logs, TRAINING, stream, startFromHead=True, limit=4,
                     nextToken=back["nextForwardToken"])
    assert messages(forward) == ["line 4", "line 5", "line 6", "line 7"]


def test_the_sdk_loop_ends_and_reads_every_line_once_while_the_file_grows(
        store: StateStore, logs: LogsClient) -> None:
    path = training_job(store, "j").logs_dir / "algo-1.log"
    stream = "j/algo-1-1764748800"
    write(path, b"".join(b"epoch %d\n" % i for i in range(25_000)), T1)
    pages = []
    token = None
    while True:  # page by page: 10,000 events each at most (the service's default and limit)
        page = events(logs, TRAINING, stream, startFromHead=True,
                      **({"nextToken": token} if token else {}))
        pages.append(len(page["events"]))
        if not page["events"]:
            assert page["nextForwardToken"] == token  # the SAME token: the end, for now
            break
        token = page["nextForwardToken"]
        if len(pages) == 2:
            write(path, b"".join(b"epoch %d\n" % i for i in range(25_000, 25_100)), T2)
    assert pages == [10_000, 10_000, 5_100, 0]
    seen = [e["message"] for e in sdk_read(logs, TRAINING, stream)]
    assert seen == [f"epoch {i}" for i in range(25_100)]
    write(path, b"late\n", T3)
    late = events(logs, TRAINING, stream, startFromHead=True, nextToken=token)
    assert messages(late) == ["late"]


def test_a_page_holds_at_most_a_megabyte_and_long_lines_are_split(
        store: StateStore, logs: LogsClient) -> None:
    path = training_job(store, "j").logs_dir / "algo-1.log"
    stream = "j/algo-1-1764748800"
    big = b"x" * 200_000
    write(path, b"\n".join([big] * 7) + b"\n", T1)
    pages = [messages(events(logs, TRAINING, stream, startFromHead=True))]
    assert sum(len(m) for m in pages[0]) <= MAX_PAGE_BYTES and len(pages[0]) == 5
    long_line = "é" * 200_000 + "!"  # 400,001 bytes: longer than one event
    write(path, long_line.encode() + b"\n", T2)
    read = [e["message"] for e in sdk_read(logs, TRAINING, stream)]
    assert read[:7] == [big.decode()] * 7
    pieces = read[7:]
    assert len(pieces) == 2 and "".join(pieces) == long_line
    assert all(len(p.encode()) <= MAX_EVENT_BYTES for p in pieces)
    assert "\ufffd" not in "".join(pieces)  # cut between characters, never inside one


def test_tokens_of_another_stream_or_garbage_are_invalid(store: StateStore,
                                                         logs: LogsClient) -> None:
    job = training_job(store, "j")
    write(job.logs_dir / "algo-1.log", b"a\n", T1)
    write(job.logs_dir / "algo-2.log", b"b\n", T1)
    token = events(logs, TRAINING, "j/algo-1-1764748800")["nextForwardToken"]
    for bad in (token.replace("/2/", "/9999/"), "f/0", "garbage", token + "0",
                events(logs, TRAINING, "j/algo-2-1764748800")["nextForwardToken"]):
        with pytest.raises(InvalidParameterException):
            logs.get_log_events(logGroupName=TRAINING, logStreamName="j/algo-1-1764748800",
                                nextToken=bad)


def test_a_replaced_file_is_a_new_stream_of_events(store: StateStore, logs: LogsClient) -> None:
    path = training_job(store, "j").logs_dir / "algo-1.log"
    stream = "j/algo-1-1764748800"
    write(path, b"old\n", T1)
    old = events(logs, TRAINING, stream)
    replacement = path.with_suffix(".new")
    write(replacement, b"new\n", T2)
    os.replace(replacement, path)
    assert events(logs, TRAINING, stream)["events"] == [
        {"timestamp": T2, "message": "new", "ingestionTime": T2}]
    with pytest.raises(InvalidParameterException):
        logs.get_log_events(logGroupName=TRAINING, logStreamName=stream,
                            nextToken=old["nextForwardToken"])
    path.unlink()
    with pytest.raises(ResourceNotFoundException, match="log stream"):
        logs.get_log_events(logGroupName=TRAINING, logStreamName=stream)


def test_the_client_remembers_only_the_files_it_read_lately(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """It lives inside a long-running server: the files of deleted jobs, never read again, give
    way to others, and a file read again after that is timed afresh, as a restarted server
    would time it."""
    monkeypatch.setattr(log_events, "KEPT_FILES", 2)
    logs = LogsClient(state_dir=store.root)
    first = training_job(store, "first").logs_dir / "algo-1.log"
    write(first, b"kept\n", T1)
    assert [e["timestamp"] for e in events(logs, TRAINING, "first/algo-1-1764748800")[
        "events"]] == [T1]
    for name in ("gone-1", "gone-2"):
        write(training_job(store, name).logs_dir / "algo-1.log", b"x\n", T1)
        assert messages(events(logs, TRAINING, f"{name}/algo-1-1764748800")) == ["x"]
        store.delete("training-jobs", name)
    os.utime(first, ns=(T3 * 1_000_000, T3 * 1_000_000))
    assert [e["timestamp"] for e in events(logs, TRAINING, "first/algo-1-1764748800")[
        "events"]] == [T3]
    write(first, b"next\n", T3 + 1)  # kept again now: earlier lines keep their times
    assert [(e["timestamp"], e["message"]) for e in events(
        logs, TRAINING, "first/algo-1-1764748800")["events"]] == [(T3, "kept"),
                                                                  (T3 + 1, "next")]


def test_threads_sharing_the_client_read_consistently_while_the_file_grows(
        store: StateStore, logs: LogsClient) -> None:
    path = training_job(store, "j").logs_dir / "algo-1.log"
    stream = "j/algo-1-1764748800"
    write(path, b"", T1)
    done = threading.Event()
    failures: list[BaseException] = []

    def reader() -> None:
        try:
            while True:
                finished = done.is_set()
                seen = [e["message"] for e in sdk_read(logs, TRAINING, stream)]
                assert seen == [f"line {i}" for i in range(len(seen))]
                stamps = [e["timestamp"] for e in logs.get_log_events(
                    logGroupName=TRAINING, logStreamName=stream, startFromHead=True)["events"]]
                assert stamps == sorted(stamps)
                if finished:
                    assert len(seen) == 2_000
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for thread in threads:
        thread.start()
    with path.open("ab") as handle:
        for i in range(2_000):
            handle.write(b"line %d\n" % i)
            handle.flush()
    done.set()
    for thread in threads:
        thread.join(60)
    assert failures == []


# -- FilterLogEvents -------------------------------------------------------------------------
@pytest.fixture()
def two_hosts(store: StateStore, logs: LogsClient) -> ResourceDir:
    job = training_job(store, "j")
    write(job.logs_dir / "algo-1.log", b"INFO start\nERROR disk full\n", T1)
    write(job.logs_dir / "algo-2.log", b"INFO start\n", T1)
    call(logs, "describe_log_streams", logGroupName=TRAINING)  # first seen now, at T1
    write(job.logs_dir / "algo-2.log", b"WARN slow\nERROR oom\n", T2)
    write(job.logs_dir / "algo-1.log", b"INFO done\n", T3)
    return job


def _filtered(logs: LogsClient, **request: Any) -> list[tuple[str, int, str]]:
    response = call(logs, "filter_log_events", logGroupName=TRAINING, **request)
    return [(e["logStreamName"].split("/")[1][:6], e["timestamp"], e["message"])
            for e in response["events"]]


def test_filter_interleaves_streams_by_time_then_stream(two_hosts: ResourceDir,
                                                        logs: LogsClient) -> None:
    assert _filtered(logs) == [
        ("algo-1", T1, "INFO start"), ("algo-1", T1, "ERROR disk full"),
        ("algo-2", T1, "INFO start"), ("algo-2", T2, "WARN slow"), ("algo-2", T2, "ERROR oom"),
        ("algo-1", T3, "INFO done")]
    assert _filtered(logs, filterPattern="ERROR") == [
        ("algo-1", T1, "ERROR disk full"), ("algo-2", T2, "ERROR oom")]
    assert _filtered(logs, filterPattern="?WARN ?oom -ERROR") == [("algo-2", T2, "WARN slow")]
    assert _filtered(logs, filterPattern='"disk full"') == [("algo-1", T1, "ERROR disk full")]
    assert _filtered(logs, filterPattern="INFO", logStreamNames=["j/algo-2-1764748800"]) == [
        ("algo-2", T1, "INFO start")]
    assert _filtered(logs, logStreamNamePrefix="j/algo-2", startTime=T2, endTime=T2) == [
        ("algo-2", T2, "WARN slow"), ("algo-2", T2, "ERROR oom")]  # endTime is inclusive
    limited = call(logs, "filter_log_events", logGroupName=TRAINING, limit=2)
    assert [e["message"] for e in limited["events"]] == ["INFO start", "ERROR disk full"]
    rest = call(logs, "filter_log_events", logGroupName=TRAINING, nextToken=limited["nextToken"])
    assert len(rest["events"]) == 4
    newest = _filtered(logs, startFromHead=False, startTime=T1)
    assert newest == list(reversed(_filtered(logs)))
    ids = [e["eventId"] for e in logs.filter_log_events(logGroupName=TRAINING)["events"]]
    assert len(set(ids)) == len(ids) == 6
    assert ids == [e["eventId"] for e in logs.filter_log_events(logGroupName=TRAINING)["events"]]


def test_filter_pages_through_botocores_paginator(two_hosts: ResourceDir,
                                                  logs: LogsClient) -> None:
    everything = _filtered(logs)
    for size in (1, 2, 4, 100):
        pages = list(logs.get_paginator("filter_log_events").paginate(
            logGroupName=TRAINING, PaginationConfig={"PageSize": size}))
        for page in pages:
            assert response_errors("FilterLogEvents", page, service="logs") == []
        got = [(e["logStreamName"].split("/")[1][:6], e["timestamp"], e["message"])
               for p in pages for e in p["events"]]
        assert got == everything
        assert pages[-1]["events"] == [] and "nextToken" not in pages[-1]
    backwards = list(logs.get_paginator("filter_log_events").paginate(
        logGroupName=TRAINING, startFromHead=False, PaginationConfig={"PageSize": 4}))
    assert [e["message"] for p in backwards for e in p["events"]] == [
        m for _, _, m in reversed(everything)]


def test_filter_resumes_from_its_token_as_the_sdks_live_logging_does(
        two_hosts: ResourceDir, logs: LogsClient) -> None:
    """The SDK prints a page's events only when the page has a nextToken, and resumes from it
    at the next poll: every page with events carries one."""
    first = logs.filter_log_events(logGroupName=TRAINING, logStreamNamePrefix="j/")
    assert len(first["events"]) == 6 and "nextToken" in first
    write(two_hosts.logs_dir / "algo-2.log", b"later\n", T3 + 1)
    later = logs.filter_log_events(logGroupName=TRAINING, logStreamNamePrefix="j/",
                                   nextToken=first["nextToken"])
    assert [e["message"] for e in later["events"]] == ["later"] and "nextToken" in later
    empty = logs.filter_log_events(logGroupName=TRAINING, logStreamNamePrefix="j/",
                                   nextToken=later["nextToken"])
    assert empty["events"] == [] and "nextToken" not in empty


def test_a_long_search_returns_partial_pages_that_resume(
        two_hosts: ResourceDir, logs: LogsClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_events, "SEARCH_BUDGET", 12)  # about one event per call
    first = call(logs, "filter_log_events", logGroupName=TRAINING, filterPattern="oom")
    assert first["events"] == [] and "nextToken" in first  # searched part, found nothing yet
    pages = list(logs.get_paginator("filter_log_events").paginate(
        logGroupName=TRAINING, filterPattern="?oom ?done"))
    assert [e["message"] for p in pages for e in p["events"]] == ["ERROR oom", "INFO done"]
    assert len(pages) > 3


def test_filter_refuses_what_the_service_refuses(two_hosts: ResourceDir,
                                                 logs: LogsClient) -> None:
    for pattern in ('{ $.level = "ERROR" }', "[ip, user, status]", "%ERR[A-Z]+%", '"open',
                    "? alone"):
        with pytest.raises(InvalidParameterException, match="pattern"):
            logs.filter_log_events(logGroupName=TRAINING, filterPattern=pattern)
    with pytest.raises(InvalidParameterException, match="mutually exclusive"):
        logs.filter_log_events(logGroupName=TRAINING, logStreamNames=["a"],
                               logStreamNamePrefix="a")
    with pytest.raises(InvalidParameterException, match="2024"):
        logs.filter_log_events(logGroupName=TRAINING, startFromHead=False, startTime=0)
    with pytest.raises(ParamValidationError):  # what boto3 itself refuses
        logs.filter_log_events(logGroupName=TRAINING, limit=0)


# -- the SageMaker SDK's reader ----------------------------------------------------------------
def test_the_sdks_multi_stream_iter_reads_each_line_once(store: StateStore,
                                                         logs: LogsClient) -> None:
    job = training_job(store, "myjob")
    write(job.logs_dir / "algo-1.log", b"a1\na2\n", T1)
    write(job.logs_dir / "algo-2.log", b"b1\n", T1 + 1)
    streams = [s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName=TRAINING, logStreamNamePrefix="myjob/")["logStreams"]]
    positions = {s: Position(timestamp=0, skip=0) for s in streams}

    def poll() -> list[str]:  # what _flush_log_streams does with each event
        printed = []
        for index, event in multi_stream_iter(logs, TRAINING, streams, positions):
            printed.append(event["message"])
            stamp, count = positions[streams[index]]
            positions[streams[index]] = Position(stamp, count + 1) \
                if event["timestamp"] == stamp else Position(event["timestamp"], 1)
        return printed

    assert poll() == ["a1", "a2", "b1"]
    assert poll() == []
    write(job.logs_dir / "algo-2.log", b"b2\n", T2)
    write(job.logs_dir / "algo-1.log", b"a3\n", T3)
    assert poll() == ["b2", "a3"]
    write(job.logs_dir / "algo-1.log", b"a4\n", T3)  # written within the same mtime tick
    assert poll() == ["a4"]
    assert poll() == []


class _BotoSession:
    """What the SDK's ``_logs_init`` asks of its boto3 session: a ``logs`` client."""

    def __init__(self, logs: LogsClient) -> None:
        self.logs = logs

    def client(self, service: str, config: Any = None) -> LogsClient:
        assert service == "logs"
        return self.logs


@pytest.mark.parametrize(("kind", "description"), [
    ("Training", {"ResourceConfig": {"InstanceCount": 2}}),
    ("Processing", {"ProcessingResources": {"ClusterConfig": {"InstanceCount": 2}}})])
def test_the_sdks_flush_log_streams_prints_a_growing_job_once(
        store: StateStore, logs: LogsClient, kind: str, description: dict[str, Any]) -> None:
    """fit(logs=True)'s and ProcessingJob.wait(logs=True)'s poll, unchanged: the group and the
    instance count are the SDK's own (``_logs_init``), the streams those prefixed ``<job>/``."""
    count, _, positions, client, group, _, _ = _logs_init(_BotoSession(logs), description, kind)
    assert (count, group) == (2, {"Training": TRAINING, "Processing": PROCESSING}[kind])
    job = HOST_JOBS[group](store, "myjob")
    other = HOST_JOBS[group](store, "myjob-2")  # another job whose name starts the same
    printed: list[tuple[int, str]] = []

    def flush() -> None:
        _flush_log_streams([], count, client, group, "myjob", positions, False,
                           lambda index, text: printed.append((index, text)))

    flush()
    assert printed == []
    write(job.logs_dir / "algo-1.log", b"starting\n", T1)
    write(other.logs_dir / "algo-1.log", b"not mine\n", T1)
    write(job.logs_dir / "all.log", b"optml | Starting\nalgo-1 | starting\n", T1)
    flush()
    write(job.logs_dir / "algo-2.log", b"starting\n", T2)
    write(job.logs_dir / "algo-1.log", b"epoch 1\n", T3)
    flush()
    flush()
    assert printed == [(0, "starting"), (1, "starting"), (0, "epoch 1")]


def test_the_sdks_live_logging_of_a_deploying_endpoint(
        store: StateStore, logs: LogsClient, caplog: pytest.LogCaptureFixture) -> None:
    """deploy(wait=True)'s live logging: botocore's paginator, resumed from the last page's
    nextToken (a StartingToken) at every poll."""
    ep = endpoint(store, "ep")

    class Deploying:  # the sagemaker side of the poll; the logs side is the real client
        @staticmethod
        def describe_endpoint(EndpointName: str) -> dict[str, Any]:
            return {"EndpointName": EndpointName, "EndpointStatus": "Creating"}

    paginator = logs.get_paginator("filter_log_events")
    config = create_paginator_config()
    poll = 0.0
    assert _live_logging_deploy_done(Deploying(), "ep", paginator, config, poll) is None
    write(ep.logs_dir / "AllTraffic-1.log",
          b"".join(b"worker %d booted\n" % i for i in range(25)), T1)
    with caplog.at_level(logging.INFO, logger="sagemaker"):
        _live_logging_deploy_done(Deploying(), "ep", paginator, config, poll)
        write(ep.logs_dir / "AllTraffic-1.log", b"listening on 8080\n", T2)
        _live_logging_deploy_done(Deploying(), "ep", paginator, config, poll)
        _live_logging_deploy_done(Deploying(), "ep", paginator, config, poll)
    logged = [r.getMessage() for r in caplog.records if r.name == "sagemaker"]
    assert logged == [f"worker {i} booted" for i in range(25)] + ["listening on 8080"]


# -- properties --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixed_logs(tmp_path_factory: pytest.TempPathFactory) -> LogsClient:
    root = tmp_path_factory.mktemp("tokens") / "state"
    job = training_job(StateStore(root), "j")
    write(job.logs_dir / "algo-1.log", b"".join(b"line %d\n" % i for i in range(30)), T1)
    return LogsClient(state_dir=root)


def _mutations(token: str) -> st.SearchStrategy[str]:
    return st.builds(lambda at, char: (token[:at] + char + token[at + 1:]) or "x",
                     st.integers(0, len(token) - 1), st.characters())


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_token_is_used_or_the_services_invalid_parameter(fixed_logs: LogsClient,
                                                             data: st.DataObject) -> None:
    stream = {"logGroupName": TRAINING, "logStreamName": "j/algo-1-1764748800"}
    valid = {
        "get_log_events": (stream, fixed_logs.get_log_events(limit=3, **stream)),
        "filter_log_events": ({"logGroupName": TRAINING},
                              fixed_logs.filter_log_events(logGroupName=TRAINING, limit=3)),
        "describe_log_streams": ({"logGroupName": TRAINING}, None),
        "describe_log_groups": ({}, None)}
    method = data.draw(st.sampled_from(sorted(valid)))
    request, page = valid[method]
    known = [t for t in (page or {}).values() if isinstance(t, str)]
    token = data.draw(st.one_of(
        st.text(min_size=1, max_size=80),
        st.sampled_from(["f/0/000000000000", "b/99999999999999999999/abc", "e/", "s/e30=",
                         "e/WyJldmVudHMiLFsiZiIsLTEsIngiLDBdXQ=="]),
        *(_mutations(t) for t in known)))
    try:
        response = getattr(fixed_logs, method)(nextToken=token, **request)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "InvalidParameterException", exc
    else:
        assert response_errors(fixed_logs.OPERATIONS[method], response, service="logs") == []


def test_the_factory_makes_it() -> None:
    client = local_mode.client("logs", region_name="eu-west-1", aws_account_id="123456789012")
    assert isinstance(client, LogsClient)
    assert client.meta.service_model.service_name == "logs"
    assert client.OPERATIONS == {
        "describe_log_groups": "DescribeLogGroups", "describe_log_streams": "DescribeLogStreams",
        "filter_log_events": "FilterLogEvents", "get_log_events": "GetLogEvents"}
    assert not hasattr(client, "put_log_events")
    # the service's errors, as client.exceptions names them
    declared = vars(client.exceptions)
    assert declared["ResourceNotFoundException"] is ResourceNotFoundException
    assert declared["InvalidParameterException"] is InvalidParameterException
