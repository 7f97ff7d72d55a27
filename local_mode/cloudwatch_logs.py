"""A client shaped like boto3's ``logs`` (CloudWatch Logs) over the local jobs' log files.

The SageMaker SDK streams a job's output by polling CloudWatch Logs (``fit(logs=True)``,
``logs="All"``, live logging while an endpoint deploys); this client answers those calls from the
state directory, so the same code prints local jobs' output. Log groups are the service's:

- ``/aws/sagemaker/TrainingJobs``: every training job's per-host log, stream
  ``<job>/<host>-<CreationTime in epoch seconds>`` (``myjob/algo-1-1764748800``);
- ``/aws/sagemaker/TransformJobs``: every transform job's per-instance log, stream
  ``<job>/instance-<n>``;
- ``/aws/sagemaker/Endpoints/<endpoint>``: that endpoint's per-instance logs, stream
  ``<variant>/<variant>-<n>``.

The job groups exist while at least one job of their kind does (the service creates them when
the first job logs), an endpoint's group while the endpoint does; a stream exists once its log
file does. Anything else is the service's ResourceNotFoundException.

Events. Each complete line of a file is an event (the message is the line without its newline,
UTF-8 with replacement); a line still missing its newline is not an event yet. Empty lines are
skipped (the service stores no empty message) and a line longer than :data:`MAX_EVENT_BYTES`
becomes several events, cut on character boundaries, as a log agent splits it.

Timestamps. The files hold no per-line times, so the client records when it saw them: the bytes
present when it first reads a file get the file's modification time then, and bytes appended
later get the modification time at the first read that saw them (the time of the last write, an
upper bound of theirs). An event's timestamp is that of the read that saw its newline. So the
lines of a finished job read for the first time all share one timestamp, and lines of a running
job are timed to within the SDK's polling interval; timestamps never decrease along a stream.
``ingestionTime`` is the timestamp. What was seen lives in the client instance (shared safely by
threads), so another client (a restarted server) may time the same lines differently;
GetLogEvents' tokens and the event ids are byte offsets and stay valid across clients.

Tokens. GetLogEvents' ``nextForwardToken`` / ``nextBackwardToken`` are ``f/<offset>/<tag>`` and
``b/<offset>/<tag>``, the tag naming the stream and its file, so a token of another stream is the
service's InvalidParameterException. At the end of a stream the token given comes back with no
events, which is how the SDK knows to stop. FilterLogEvents returns a ``nextToken`` whenever a
page has events (more may still arrive) or its search stopped early, and none on an empty page
with nothing left to search, so botocore's paginators end.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import hashlib
import heapq
import json
import os
import re
import threading
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from local_mode.client_base import LocalClient
from local_mode.errors import ResourceNotFound, error_class
from local_mode.state import ResourceDir, StateStore
from toolkit.settings import Settings

SERVICE = "logs"
TRAINING_GROUP = "/aws/sagemaker/TrainingJobs"
TRANSFORM_GROUP = "/aws/sagemaker/TransformJobs"
ENDPOINT_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
JOB_GROUPS = {TRAINING_GROUP: "training-jobs", TRANSFORM_GROUP: "transform-jobs"}

MAX_EVENTS = 10_000
"""GetLogEvents / FilterLogEvents: the default and largest number of events in a page."""
MAX_PAGE_BYTES = 1_048_576
"""A page holds at most this many bytes of messages (and always at least one event)."""
MAX_EVENT_BYTES = 256 * 1024 - 26
"""The longest event: the service's event size less its per-event overhead."""
MAX_STREAMS = 50
"""DescribeLogStreams / DescribeLogGroups: the default and largest page."""
SEARCH_BUDGET = 16 * MAX_PAGE_BYTES
"""FilterLogEvents reads at most about this many bytes before returning a (partial) page."""
DESCENDING_SINCE = 1_704_067_200_000
"""FilterLogEvents newest-first needs a startTime on or after 2024-01-01 (epoch ms)."""
READ_BLOCK = 1 << 20
SEARCH_BATCH = 256

InvalidParameterException = error_class("InvalidParameterException")
ResourceNotFoundException = error_class("ResourceNotFoundException")

_RESOURCE_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
_HOST_LOG = re.compile(r"(.+)\.log")
_INSTANCE_LOG = re.compile(r"(instance-[0-9]+)\.log")
_VARIANT_LOG = re.compile(r"((.+)-[0-9]+)\.log")
_STREAM_TOKEN = re.compile(r"([fb])/([0-9]{1,19})/([0-9a-f]{12})")
_NOT_VALID = "The specified nextToken is not valid."

__all__ = ["FilterPattern", "InvalidParameterException", "LogsClient",
           "ResourceNotFoundException", "parse_filter_pattern"]


# -- filter patterns -------------------------------------------------------------------------
@dataclass(frozen=True)
class FilterPattern:
    """A filter pattern for unstructured events: an event matches when it contains every
    ``required`` term, none of the ``excluded`` ones and, if there are any, one of ``any_of``.
    Terms match as case-sensitive substrings."""

    required: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    def matches(self, message: str) -> bool:
        return (all(term in message for term in self.required)
                and not any(term in message for term in self.excluded)
                and (not self.any_of or any(term in message for term in self.any_of)))


def parse_filter_pattern(text: str) -> FilterPattern:
    """CloudWatch's term syntax: space-separated terms that must all appear, ``"quoted
    phrases"``, ``?term`` alternatives (one of them must appear) and ``-term`` exclusions.
    JSON (``{ ... }``), space-delimited (``[ ... ]``) and regex (``% ... %``) patterns are
    InvalidParameterException, as is a pattern that does not parse: local mode does not
    evaluate them, and matching them as plain text would return the wrong events."""
    kinds: dict[str, list[str]] = {"": [], "?": [], "-": []}
    at, size = 0, len(text)
    while at < size:
        if text[at].isspace():
            at += 1
            continue
        kind = ""
        if text[at] in "?-":
            kind, at = text[at], at + 1
            if at == size or text[at].isspace():
                raise _bad_pattern(text, f"{kind!r} must be followed by a term")
        if text[at] == '"':
            close = text.find('"', at + 1)
            if close < 0:
                raise _bad_pattern(text, "a quoted phrase has no closing quote")
            term, at = text[at + 1:close], close + 1
            if at < size and not text[at].isspace():
                raise _bad_pattern(text, "a quoted phrase must be followed by a space")
        else:
            end = at
            while end < size and not text[end].isspace():
                end += 1
            term, at = text[at:end], end
            if term[0] in "{[%":
                raise InvalidParameterException(
                    f"Unsupported filter pattern {text!r}: local mode evaluates terms, "
                    '"quoted phrases", ?alternatives and -exclusions, not JSON ({ ... }), '
                    "space-delimited ([ ... ]) or regex (% ... %) patterns")
            if '"' in term:
                raise _bad_pattern(text, f"a quote inside the term {term!r}")
        kinds[kind].append(term)
    return FilterPattern(tuple(kinds[""]), tuple(kinds["?"]), tuple(kinds["-"]))


def _bad_pattern(text: str, why: str) -> Exception:
    return InvalidParameterException(f"Invalid filter pattern {text!r}: {why}")


# -- one log file --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Stream:
    group: str
    name: str
    path: Path


class _Event(NamedTuple):
    timestamp: int
    stream: str
    start: int
    size: int
    message: str
    tag: str


class _LogFile:
    """What the client has seen of one log file: its events as byte ranges, each with the time
    of the read that completed it (see the module's docstring). Use under ``lock``."""

    def __init__(self, identity: tuple[int, int], tag: str) -> None:
        self.lock = threading.Lock()
        self.identity = identity
        self.tag = tag
        self.reset()

    def reset(self) -> None:
        """Forget everything (the file was truncated)."""
        self.starts = array("q")
        self.ends = array("q")  # past the event's bytes, its newline included when it has one
        self.times = array("q")
        self.scanned = 0  # bytes read so far
        self.line_start = 0  # where the line still missing its newline starts
        self.last_ms = 0
        self.first_seen_ms: int | None = None

    def __len__(self) -> int:
        return len(self.starts)

    def observe(self, fd: int, size: int, mtime_ms: int) -> None:
        """Index the bytes appended since the last read; they were written by ``mtime_ms``."""
        if self.first_seen_ms is None:
            self.first_seen_ms = mtime_ms
        if size <= self.scanned:
            return
        stamp = self.last_ms = max(mtime_ms, self.last_ms)
        position = self.scanned
        while position < size:
            block = os.pread(fd, min(READ_BLOCK, size - position), position)
            if not block:
                break
            newline = block.find(b"\n")
            while newline >= 0:
                end = position + newline + 1
                self._add_line(fd, self.line_start, end, stamp)
                self.line_start = end
                newline = block.find(b"\n", newline + 1)
            position += len(block)
        self.scanned = position

    def _add_line(self, fd: int, start: int, end: int, stamp: int) -> None:
        text_end = end - 1
        if text_end == start:
            return
        while text_end - start > MAX_EVENT_BYTES:
            cut = _character_boundary(fd, start + MAX_EVENT_BYTES)
            self._append(start, cut, stamp)
            start = cut
        self._append(start, end, stamp)

    def _append(self, start: int, end: int, stamp: int) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.times.append(stamp)

    def size(self, index: int) -> int:
        return self.ends[index] - self.starts[index]

    def messages(self, fd: int, lo: int, hi: int) -> list[str]:
        """The messages of events ``lo`` to ``hi`` (exclusive)."""
        hi = min(hi, len(self))
        if lo >= hi:
            return []
        base, span = self.starts[lo], self.ends[hi - 1] - self.starts[lo]
        if span <= 4 * MAX_PAGE_BYTES:  # one read, unless long runs of blank lines lie between
            data = os.pread(fd, span, base)
            raws = [data[self.starts[i] - base:self.ends[i] - base] for i in range(lo, hi)]
        else:
            raws = [os.pread(fd, self.size(i), self.starts[i]) for i in range(lo, hi)]
        return [_message(raw) for raw in raws]

    def first_at(self, stamp: int | None, default: int, *, after: bool = False) -> int:
        """The index of the first event timed at or after ``stamp`` (after it: ``after``)."""
        if stamp is None:
            return default
        return (bisect.bisect_right if after else bisect.bisect_left)(self.times, stamp)

    def before(self, name: str, key: tuple[int, str, int], *, inclusive: bool = False) -> int:
        """How many events sort before ``key`` (or at it: ``inclusive``) in FilterLogEvents'
        order, (timestamp, stream name, offset), this file being the stream ``name``."""
        search = bisect.bisect_right if inclusive else bisect.bisect_left
        return search(range(len(self)), key,
                      key=lambda i: (self.times[i], name, self.starts[i]))

    def fitting(self, indices: range) -> int:
        """How many of ``indices`` (in their order) fit in a page: at least one, if any."""
        count = total = 0
        for index in indices:
            total += self.size(index)
            if count and total > MAX_PAGE_BYTES:
                break
            count += 1
        return count

    def token(self, direction: str, offset: int) -> str:
        return f"{direction}/{offset}/{self.tag}"


def _character_boundary(fd: int, cut: int) -> int:
    """``cut`` moved back (by at most 3 bytes) to the start of a UTF-8 character."""
    tail = os.pread(fd, 4, cut - 3)
    for back in range(min(len(tail), 4)):
        if tail[len(tail) - 1 - back] & 0xC0 != 0x80:
            return cut - back
    return cut


def _message(raw: bytes) -> str:
    return raw.removesuffix(b"\n").decode("utf-8", "replace")


# -- listing tokens --------------------------------------------------------------------------
def _listing_token(kind: str, query: Any, key: Any) -> str:
    payload = json.dumps([query, key], separators=(",", ":")).encode()
    return f"{kind}/" + base64.urlsafe_b64encode(payload).decode()


def _listing_key(token: str | None, kind: str, query: Any,
                 valid: Callable[[Any], bool]) -> Any:
    """The key a listing token resumes after (None: no token); a token of another listing or
    query, a key ``valid`` refuses, or garbage, is InvalidParameterException."""
    if token is None:
        return None
    try:
        if not token.startswith(f"{kind}/"):
            raise ValueError(token)
        payload = base64.b64decode(token[len(kind) + 1:], altchars=b"-_", validate=True)
        decoded = json.loads(payload)
    except (ValueError, binascii.Error, RecursionError):
        raise InvalidParameterException(_NOT_VALID) from None
    if not (isinstance(decoded, list) and len(decoded) == 2 and decoded[0] == query
            and valid(decoded[1])):
        raise InvalidParameterException(_NOT_VALID)
    return decoded[1]


def _filter_position(token: str) -> tuple[bool, tuple[int, str, int]]:
    """(newest first?, the last event searched) from a FilterLogEvents token."""
    key = _listing_key(token, "e", "events", lambda key: (
        isinstance(key, list) and len(key) == 4 and key[0] in ("f", "b")
        and _count(key[1]) and isinstance(key[2], str) and _count(key[3])))
    return key[0] == "b", (key[1], key[2], key[3])


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _name_key(key: Any) -> bool:
    return isinstance(key, str)


def _time_key(key: Any) -> bool:
    return isinstance(key, list) and len(key) == 2 and _count(key[0]) and _name_key(key[1])


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
class LogsClient(LocalClient):
    """The local ``logs`` client: DescribeLogGroups, DescribeLogStreams, GetLogEvents and
    FilterLogEvents over the state directory's log files (see the module's docstring).
    ``settings`` and ``state_dir`` are local mode's own arguments; the others are boto3's client
    arguments (:class:`local_mode.client_base.LocalClient`)."""

    SERVICE = SERVICE

    def __init__(self, settings: Settings | None = None, *,
                 state_dir: str | Path | None = None, **client_args: Any) -> None:
        super().__init__(**client_args)
        self.settings = settings or Settings.from_environ()
        self.store = StateStore(Path(state_dir) if state_dir else self.settings.local.state_dir)
        self._files: dict[Path, _LogFile] = {}
        self._files_lock = threading.Lock()

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
        after = _listing_key(request.get("nextToken"), "g", query, _name_key)
        page, last = _page(items, after, request.get("limit", MAX_STREAMS), False)
        response: dict[str, Any] = {"logGroups": page}
        if last is not None:
            response["nextToken"] = _listing_token("g", query, last)
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
        after = _listing_key(request.get("nextToken"), "s", query,
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
            response["nextToken"] = _listing_token("s", query, last)
        return response

    def get_log_events(self, **request: Any) -> dict[str, Any]:
        stream = self._stream(self._group_of(request), request["logStreamName"])
        try:
            with self._observed(stream) as (record, fd):
                return _events_page(record, fd, request)
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
            descending, after = _filter_position(token)
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
                sources.append(self._events(stream, record, indices))
        return _filtered(heapq.merge(*sources, key=lambda e: e[:3], reverse=descending),
                         pattern, request.get("limit", MAX_EVENTS), descending)

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
        for group, kind in JOB_GROUPS.items():
            resources = self.store.list(kind)
            if resources:
                created = [c for c in map(_created, resources) if c is not None]
                groups.append((group, _epoch_ms(min(created)) if created else 0))
        for resource in self.store.list("endpoints"):
            created_at = _created(resource)
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
        if group in JOB_GROUPS:
            resources = self.store.list(JOB_GROUPS[group])
            if not resources:
                raise _no_group()
            for resource in resources:
                job = resource.name + "/"
                if job.startswith(prefix) or prefix.startswith(job):
                    streams += self._job_streams(group, resource)
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

    def _job_streams(self, group: str, resource: ResourceDir) -> list[_Stream]:
        job = resource.name
        if group == TRANSFORM_GROUP:
            return [_Stream(group, f"{job}/{match[1]}", file)
                    for file, match in _log_files(resource, _INSTANCE_LOG)]
        created = _created(resource)
        if created is None:  # half written, or being deleted
            return []
        seconds = int(created.timestamp())
        return [_Stream(group, f"{job}/{match[1]}-{seconds}", file)
                for file, match in _log_files(resource, _HOST_LOG) if match[1] != "all"]

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
    @contextlib.contextmanager
    def _observed(self, stream: _Stream) -> Iterator[tuple[_LogFile, int]]:
        """The stream's file open and freshly indexed, its record locked; FileNotFoundError
        when the file is gone."""
        try:
            fd = os.open(stream.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            with self._files_lock:
                self._files.pop(stream.path, None)
            raise
        try:
            status = os.fstat(fd)
            identity = (status.st_dev, status.st_ino)
            with self._files_lock:
                record = self._files.get(stream.path)
                if record is None or record.identity != identity:  # a new file at that path
                    tag = hashlib.blake2b(f"{stream.group}\n{stream.name}\n{status.st_ino}"
                                          .encode(), digest_size=6).hexdigest()
                    record = self._files[stream.path] = _LogFile(identity, tag)
            with record.lock:
                # again, under the lock: a size taken before another thread read further
                # must not look like a truncation
                status = os.fstat(fd)
                if status.st_size < record.scanned:
                    record.reset()
                record.observe(fd, status.st_size, status.st_mtime_ns // 1_000_000)
                yield record, fd
        finally:
            os.close(fd)

    def _events(self, stream: _Stream, record: _LogFile, indices: range) -> Iterator[_Event]:
        """The events at ``indices`` (ascending or descending), read a batch at a time."""
        for first in range(0, len(indices), SEARCH_BATCH):
            batch = indices[first:first + SEARCH_BATCH]
            lo, hi = min(batch[0], batch[-1]), max(batch[0], batch[-1]) + 1
            try:
                fd = os.open(stream.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return
            try:
                with record.lock:
                    messages = record.messages(fd, lo, hi)
                    rows = [_Event(record.times[i], stream.name, record.starts[i],
                                   record.size(i), message, record.tag)
                            for i, message in zip(range(lo, hi), messages)]
            finally:
                os.close(fd)
            yield from (reversed(rows) if batch.step < 0 else rows)


def _filtered(events: Iterator[_Event], pattern: FilterPattern, limit: int,
              descending: bool) -> dict[str, Any]:
    """FilterLogEvents' page: the events that match, up to ``limit`` and a megabyte, and a
    token after the last event searched unless the page is empty and the search complete."""
    page: list[dict[str, Any]] = []
    size = searched = 0
    last: _Event | None = None
    finished = True
    for event in events:
        if searched >= SEARCH_BUDGET:
            finished = False
            break
        if pattern.matches(event.message):
            if len(page) == limit or size + event.size > MAX_PAGE_BYTES:
                finished = False
                break
            size += event.size
            page.append({"logStreamName": event.stream, "timestamp": event.timestamp,
                         "message": event.message, "ingestionTime": event.timestamp,
                         "eventId": f"{event.tag}-{event.start}"})
        searched += event.size
        last = event
    response: dict[str, Any] = {"events": page, "searchedLogStreams": []}
    if last is not None and (page or not finished):
        response["nextToken"] = _listing_token(
            "e", "events", ["b" if descending else "f", *last[:3]])
    return response


def _events_page(record: _LogFile, fd: int, request: dict[str, Any]) -> dict[str, Any]:
    """GetLogEvents' answer from a stream's freshly observed file."""
    limit, token = request.get("limit", MAX_EVENTS), request.get("nextToken")
    count = len(record)
    first = record.first_at(request.get("startTime"), 0)
    stop = record.first_at(request.get("endTime"), count)
    if token is None:
        forward, offset = bool(request.get("startFromHead", False)), None
    else:
        forward, offset = _stream_position(token, record)
    if forward:
        lo = first if offset is None else max(first, bisect.bisect_left(record.starts, offset))
        hi = lo + record.fitting(range(lo, min(stop, lo + limit)))
    else:
        hi = stop if offset is None else \
            max(first, min(stop, bisect.bisect_left(record.starts, offset)))
        lo = hi - record.fitting(range(hi - 1, max(first, hi - limit) - 1, -1))
    events = [{"timestamp": record.times[i], "message": message,
               "ingestionTime": record.times[i]}
              for i, message in zip(range(lo, hi), record.messages(fd, lo, hi))]
    if events:
        forward_token = record.token("f", record.ends[hi - 1])
        backward_token = record.token("b", record.starts[lo])
    else:  # nothing more this way: the token given comes back, as the service's does
        if offset is None:
            offset = record.starts[lo] if lo < count else record.line_start
        forward_token = token if token is not None and forward else record.token("f", offset)
        backward_token = token if token is not None and not forward else \
            record.token("b", offset)
    return {"events": events, "nextForwardToken": forward_token,
            "nextBackwardToken": backward_token}


def _stream_position(token: str, record: _LogFile) -> tuple[bool, int]:
    """(forward?, byte offset) from a GetLogEvents token of this stream's file."""
    match = _STREAM_TOKEN.fullmatch(token)
    if match is None or match[3] != record.tag or int(match[2]) > record.scanned:
        raise InvalidParameterException(_NOT_VALID)
    return match[1] == "f", int(match[2])


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
        created = resource.describe()["CreationTime"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return created if isinstance(created, datetime) else None


def _no_group() -> Exception:
    return ResourceNotFoundException("The specified log group does not exist.")


def _no_stream() -> Exception:
    return ResourceNotFoundException("The specified log stream does not exist.")
