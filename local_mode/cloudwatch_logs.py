"""A client shaped like boto3's ``logs`` (CloudWatch Logs) over the local jobs' log files.

The SageMaker SDK streams a job's output by polling CloudWatch Logs (``fit(logs=True)``,
``logs="All"``, live logging while an endpoint deploys); this client answers those calls from the
state directory, so the same code prints local jobs' output. This module maps the service's log
groups and streams onto the state directory's log files and answers DescribeLogGroups,
DescribeLogStreams, GetLogEvents and FilterLogEvents. How a file's lines become events, with
their timestamps, ids and page tokens, is :mod:`local_mode.log_events`; the filter-pattern syntax
is :mod:`local_mode.log_patterns`. Log groups are the service's:

- ``/aws/sagemaker/TrainingJobs``: every training job's per-host log, stream
  ``<job>/<host>-<CreationTime in epoch seconds>`` (``myjob/algo-1-1764748800``);
- ``/aws/sagemaker/ProcessingJobs``: every processing job's per-host log, streams named as
  training's (``prep/algo-2-1764748800``);
- ``/aws/sagemaker/TransformJobs``: every transform job's per-instance log, stream
  ``<job>/instance-<n>``;
- ``/aws/sagemaker/Endpoints/<endpoint>``: that endpoint's per-instance logs, stream
  ``<variant>/<variant>-<n>``.

The job groups exist while at least one job of their kind does (the service creates them when
the first job logs), an endpoint's group while the endpoint does; a stream exists once its log
file does. Anything else is the service's ResourceNotFoundException. FilterLogEvents merges the
chosen streams' events by (timestamp, stream name, offset), oldest or newest first.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from local_mode.client_base import StateDirClient
from local_mode.errors import ResourceNotFound, error_class
from local_mode.log_events import (
    MAX_EVENTS,
    LogFile,
    LogFiles,
    filter_page,
    filter_position,
    get_events_page,
    is_count,
    listing_key,
    listing_token,
    read_events,
)
from local_mode.log_patterns import InvalidParameterException, parse_filter_pattern
from local_mode.state import ResourceDir
from toolkit.settings import Settings

SERVICE = "logs"
TRAINING_GROUP = "/aws/sagemaker/TrainingJobs"
PROCESSING_GROUP = "/aws/sagemaker/ProcessingJobs"
TRANSFORM_GROUP = "/aws/sagemaker/TransformJobs"
ENDPOINT_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"

MAX_STREAMS = 50
"""DescribeLogStreams / DescribeLogGroups: the default and largest page."""
DESCENDING_SINCE = 1_704_067_200_000
"""FilterLogEvents newest-first needs a startTime on or after 2024-01-01 (epoch ms)."""

ResourceNotFoundException = error_class("ResourceNotFoundException")

_RESOURCE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
_HOST_LOG = re.compile(r"(?!all\.log\Z)(.+)\.log")
"""A host's log (``all.log``, every host's lines merged, is no stream)."""
_INSTANCE_LOG = re.compile(r"(instance-[0-9]+)\.log")
_VARIANT_LOG = re.compile(r"((.+)-[0-9]+)\.log")


@dataclass(frozen=True)
class _JobGroup:
    """A job kind's log group: where its jobs are in the state directory, which of a job's
    log files are streams, and how a stream is named after its file."""

    kind: str
    log_file: re.Pattern[str]
    """Which files of the job's ``logs`` directory are streams; group 1 names the stream
    within the job."""
    timestamped: bool
    """Whether the stream's name ends ``-<the job's CreationTime in epoch seconds>``, as the
    service names a host's stream (``<job>/algo-1-1764748800``)."""


JOB_GROUPS = {
    TRAINING_GROUP: _JobGroup("training-jobs", _HOST_LOG, timestamped=True),
    PROCESSING_GROUP: _JobGroup("processing-jobs", _HOST_LOG, timestamped=True),
    TRANSFORM_GROUP: _JobGroup("transform-jobs", _INSTANCE_LOG, timestamped=False),
}
"""The job kinds' log groups, by name."""

__all__ = ["InvalidParameterException", "LogsClient", "ResourceNotFoundException"]


@dataclass(frozen=True)
class _Stream:
    group: str
    name: str
    path: Path


def _name_key(key: Any) -> bool:
    return isinstance(key, str)


def _time_key(key: Any) -> bool:
    return isinstance(key, list) and len(key) == 2 and is_count(key[0]) and _name_key(key[1])


def _page(items: Sequence[tuple[Any, Any]], after: Any, limit: int,
          descending: bool) -> tuple[list[Any], Any]:
    """A page of ``(key, value)`` items in key order after the key ``after``: the values and
    the last key when more follow (else None)."""
    ordered = sorted(items, key=lambda item: item[0], reverse=descending)
    if after is not None:
        ordered = [item for item in ordered
                   if (item[0] < after if descending else item[0] > after)]
    page = ordered[:limit]
    return [value for _, value in page], page[-1][0] if len(ordered) > limit else None


def _epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


# -- the client ------------------------------------------------------------------------------
class LogsClient(StateDirClient):
    """The local ``logs`` client: DescribeLogGroups, DescribeLogStreams, GetLogEvents and
    FilterLogEvents over the state directory's log files (see the module's docstring). One
    :class:`~local_mode.log_events.LogFiles` serves all its calls and threads, so an event keeps
    its timestamp from one call to the next (while the file's record is kept: a bounded number
    of the files read most recently). ``settings`` and ``state_dir`` are local mode's own
    arguments; the others are boto3's client arguments
    (:class:`local_mode.client_base.LocalClient`)."""

    SERVICE = SERVICE

    def __init__(self, settings: Settings | None = None, *,
                 state_dir: str | Path | None = None, **client_args: Any) -> None:
        super().__init__(settings, state_dir=state_dir, **client_args)
        self._files = LogFiles()

    # -- operations --------------------------------------------------------------------------
    def describe_log_groups(self, **request: Any) -> dict[str, Any]:
        prefix, pattern = request.get("logGroupNamePrefix"), request.get("logGroupNamePattern")
        identifiers = request.get("logGroupIdentifiers")
        if sum(x is not None for x in (prefix, pattern, identifiers)) > 1:
            raise InvalidParameterException(
                "logGroupNamePrefix, logGroupNamePattern and logGroupIdentifiers are mutually "
                "exclusive parameters.")
        wanted = None if identifiers is None else \
            {name for name in map(self._own_group_name, identifiers) if name is not None}
        items = [(name, self._group_info(name, created)) for name, created in self._groups()
                 if name.startswith(prefix or "") and (pattern or "") in name
                 and (wanted is None or name in wanted)
                 and request.get("logGroupClass", "STANDARD") == "STANDARD"]
        query = [prefix, pattern, sorted(wanted) if wanted is not None else None]
        after = listing_key(request.get("nextToken"), "g", query, _name_key)
        page, last = _page(items, after, request.get("limit", MAX_STREAMS), False)
        response: dict[str, Any] = {"logGroups": page}
        if last is not None:
            response["nextToken"] = listing_token("g", query, last)
        return response

    def describe_log_streams(self, **request: Any) -> dict[str, Any]:
        group = self._group_of(request)
        order, descending = request.get("orderBy", "LogStreamName"), request.get("descending",
                                                                                    False)
        prefix = request.get("logStreamNamePrefix", "")
        if prefix and order == "LastEventTime":
            raise InvalidParameterException(
                "Cannot order by LastEventTime with a logStreamNamePrefix.")
        query = [group, prefix, order, descending]
        after = listing_key(request.get("nextToken"), "s", query,
                             _name_key if order == "LogStreamName" else _time_key)
        limit = request.get("limit", MAX_STREAMS)
        streams = self._streams(group, prefix)
        items: list[tuple[Any, Any]]
        if order == "LogStreamName":
            items = [(stream.name, stream) for stream in streams]
            page, last = _page(items, after, limit, descending)
            infos = [info for info in map(self._stream_info, page) if info is not None]
        else:
            described = [info for info in map(self._stream_info, streams) if info is not None]
            items = [([info.get("lastEventTimestamp", 0), info["logStreamName"]], info)
                     for info in described]
            infos, last = _page(items, after, limit, descending)
        response: dict[str, Any] = {"logStreams": infos}
        if last is not None:
            response["nextToken"] = listing_token("s", query, last)
        return response

    def get_log_events(self, **request: Any) -> dict[str, Any]:
        stream = self._stream(self._group_of(request), request["logStreamName"])
        try:
            with self._observed(stream) as (record, fd):
                return get_events_page(
                    record, fd, limit=request.get("limit", MAX_EVENTS),
                    start_time=request.get("startTime"), end_time=request.get("endTime"),
                    start_from_head=bool(request.get("startFromHead", False)),
                    token=request.get("nextToken"))
        except FileNotFoundError:
            raise _no_stream() from None

    def filter_log_events(self, **request: Any) -> dict[str, Any]:
        group = self._group_of(request)
        names = request.get("logStreamNames")
        if names is not None and "logStreamNamePrefix" in request:
            raise InvalidParameterException(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
        pattern = parse_filter_pattern(request.get("filterPattern", ""))
        start, end = request.get("startTime"), request.get("endTime")
        if not request.get("startFromHead", True) and start is not None and \
                start < DESCENDING_SINCE:
            raise InvalidParameterException(
                "startFromHead false needs a startTime on or after Jan 1, 2024 00:00:00 UTC.")
        token = request.get("nextToken")
        if token is None:
            descending, after = not request.get("startFromHead", True), None
        else:
            descending, after = filter_position(token)
        streams = self._streams(group, request.get("logStreamNamePrefix", ""))
        if names is not None:
            chosen = set(names)
            streams = [stream for stream in streams if stream.name in chosen]
        sources = []
        for stream in streams:
            with contextlib.suppress(FileNotFoundError), self._observed(stream) as (record, _):
                count = len(record)
                lo = record.first_at(start, 0)
                hi = record.first_at(end, count, after=True)  # the service's endTime is inclusive
                if after is not None and descending:
                    hi = min(hi, record.before(stream.name, after))
                elif after is not None:
                    lo = max(lo, record.before(stream.name, after, inclusive=True))
                indices = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
                sources.append(read_events(stream.path, stream.name, record, indices))
        return filter_page(heapq.merge(*sources, key=lambda e: e[:3], reverse=descending),
                           pattern.matches, request.get("limit", MAX_EVENTS), descending)

    # -- groups and streams --------------------------------------------------------------------
    def _group_of(self, request: dict[str, Any]) -> str:
        name, identifier = request.get("logGroupName"), request.get("logGroupIdentifier")
        if name is not None and identifier is not None:
            raise InvalidParameterException(
                "LogGroup name and LogGroup ARN are mutually exclusive parameters.")
        if name is not None:
            return str(name)
        if identifier is None:
            raise InvalidParameterException(
                "Either logGroupName or logGroupIdentifier must be specified.")
        return self._group_name(identifier)

    def _group_name(self, identifier: str) -> str:
        """A log group's name from its name or ARN (``arn:aws:logs:<region>:<account>:
        log-group:<name>``, optionally ending ``:*``)."""
        if not identifier.startswith("arn:"):
            return identifier
        parts = identifier.split(":", 6)
        if len(parts) < 7 or parts[2] != "logs" or parts[5] != "log-group" or not parts[6]:
            raise InvalidParameterException(f"Invalid log group ARN: {identifier}")
        if parts[4] != self.account_id:
            raise _no_group()
        return parts[6].removesuffix(":*")

    def _own_group_name(self, identifier: str) -> str | None:
        """A log group's name from its name or ARN; None for another account's ARN."""
        try:
            return self._group_name(identifier)
        except ResourceNotFoundException:
            return None

    def _groups(self) -> list[tuple[str, int]]:
        """``(name, creation ms)`` of every log group that exists."""
        groups = []
        for group, job_group in JOB_GROUPS.items():
            described = self.store.descriptions(job_group.kind)  # leaves out any just deleted
            if described:
                created = [c for c in (_creation(d) for _, d in described) if c is not None]
                groups.append((group, _epoch_ms(min(created)) if created else 0))
        for resource, description in self.store.descriptions("endpoints"):
            created_at = _creation(description)
            groups.append((ENDPOINT_GROUP_PREFIX + resource.name,
                           _epoch_ms(created_at) if created_at else 0))
        return groups

    def _group_info(self, name: str, created: int) -> dict[str, Any]:
        arn = f"arn:{self.meta.partition}:logs:{self.meta.region_name}:{self.account_id}:" \
              f"log-group:{name}"
        return {"logGroupName": name, "creationTime": created, "metricFilterCount": 0,
                "arn": f"{arn}:*", "logGroupArn": arn, "storedBytes": 0,
                "logGroupClass": "STANDARD"}

    def _streams(self, group: str, prefix: str = "") -> list[_Stream]:
        """The streams of ``group`` whose names start with ``prefix``, by name;
        ResourceNotFoundException when the group does not exist."""
        streams: list[_Stream] = []
        job_group = JOB_GROUPS.get(group)
        if job_group is not None:
            resources = self.store.list(job_group.kind)
            if not resources:
                raise _no_group()
            for resource in resources:
                job = resource.name + "/"
                if job.startswith(prefix) or prefix.startswith(job):
                    streams += _job_streams(group, job_group, resource)
        elif group.startswith(ENDPOINT_GROUP_PREFIX):
            name = group[len(ENDPOINT_GROUP_PREFIX):]
            if not _RESOURCE_NAME.fullmatch(name):
                raise _no_group()
            try:
                resource = self.store.get("endpoints", name)
            except ResourceNotFound:
                raise _no_group() from None
            for file, match in _log_files(resource, _VARIANT_LOG):
                streams.append(_Stream(group, f"{match[2]}/{match[1]}", file))
        else:
            raise _no_group()
        return sorted((s for s in streams if s.name.startswith(prefix)), key=lambda s: s.name)

    def _stream(self, group: str, name: str) -> _Stream:
        for stream in self._streams(group, name):
            if stream.name == name:
                return stream
        raise _no_stream()

    def _stream_info(self, stream: _Stream) -> dict[str, Any] | None:
        """DescribeLogStreams' item for ``stream`` (None: its file went away)."""
        try:
            with self._observed(stream) as (record, _):
                info: dict[str, Any] = {
                    "logStreamName": stream.name, "creationTime": record.first_seen_ms,
                    "arn": f"arn:{self.meta.partition}:logs:{self.meta.region_name}:"
                           f"{self.account_id}:log-group:{stream.group}:log-stream:"
                           f"{stream.name}",
                    "storedBytes": 0}
                if len(record):
                    info["firstEventTimestamp"] = record.times[0]
                    info["lastEventTimestamp"] = info["lastIngestionTime"] = record.times[-1]
                return info
        except FileNotFoundError:
            return None

    # -- reading -----------------------------------------------------------------------------
    def _observed(self, stream: _Stream) -> contextlib.AbstractContextManager[
            tuple[LogFile, int]]:
        """The stream's file open and freshly indexed, its record locked; FileNotFoundError
        when the file is gone."""
        return self._files.observed(stream.path, stream.group, stream.name)


def _job_streams(group: str, job_group: _JobGroup, resource: ResourceDir) -> list[_Stream]:
    """The streams of one job of ``job_group`` (the group named ``group``)."""
    suffix = ""
    if job_group.timestamped:
        created = _created(resource)
        if created is None:  # half written, or being deleted
            return []
        suffix = f"-{int(created.timestamp())}"
    return [_Stream(group, f"{resource.name}/{match[1]}{suffix}", file)
            for file, match in _log_files(resource, job_group.log_file)]


def _log_files(resource: ResourceDir, pattern: re.Pattern[str]) -> list[tuple[Path, re.Match[str]]]:
    """The resource's log files whose names match ``pattern``."""
    try:
        entries = list(os.scandir(resource.logs_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is not None and entry.is_file():
            found.append((Path(entry.path), match))
    return found


def _created(resource: ResourceDir) -> datetime | None:
    try:
        return _creation(resource.describe())
    except (OSError, ValueError):
        return None


def _creation(description: Any) -> datetime | None:
    """A description's ``CreationTime``; None when it has none (written by hand, or older)."""
    created = description.get("CreationTime") if isinstance(description, dict) else None
    return created if isinstance(created, datetime) else None


def _no_group() -> Exception:
    return ResourceNotFoundException("The specified log group does not exist.")


def _no_stream() -> Exception:
    return ResourceNotFoundException("The specified log stream does not exist.")
