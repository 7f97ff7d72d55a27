"""What a log file holds as CloudWatch Logs events: an index of each file, read while it grows.

The local jobs write plain log files with no per-line times, ids or sequence, while the logs
API (and the SageMaker SDK's log readers polling it) needs events with timestamps, ids and page
tokens that resume exactly where the previous page stopped. This module derives those from the
files, one :class:`LogFile` index per file, knowing nothing of log groups or streams beyond the
names it is given; :mod:`local_mode.cloudwatch_logs` maps the service's groups and streams onto
the files and answers the operations with the pages built here.

Events. Each complete line of a file is an event (the message is the line without its newline,
UTF-8 with replacement); a line still missing its newline is not an event yet. Empty lines are
skipped (the service stores no empty message) and a line longer than :data:`MAX_EVENT_BYTES`
becomes several events, cut on character boundaries, as a log agent splits it.

Timestamps. The files hold no per-line times, so the index records when it saw them: the bytes
present when it first reads a file get the file's modification time then, and bytes appended
later get the modification time at the first read that saw them (the time of the last write, an
upper bound of theirs). An event's timestamp is that of the read that saw its newline. So the
lines of a finished job read for the first time all share one timestamp, and lines of a running
job are timed to within the SDK's polling interval; timestamps never decrease along a file.
``ingestionTime`` is the timestamp. What was seen lives in a :class:`LogFiles` (shared safely by
threads), so another one (a restarted server) may time the same lines differently; GetLogEvents'
tokens and the event ids are byte offsets and stay valid across them.

Kept records. A :class:`LogFiles` keeps the index of at most :data:`KEPT_FILES` files, dropping
the one read longest ago: the client lives inside a long-running server, and the files of
deleted jobs and endpoints are never read again. A dropped index is rebuilt on the next read as
a fresh :class:`LogFiles` would build it (its lines timed at the file's modification time then).

Tokens. GetLogEvents' ``nextForwardToken`` / ``nextBackwardToken`` are ``f/<offset>/<tag>`` and
``b/<offset>/<tag>``, the tag naming the stream and its file, so a token of another stream is the
service's InvalidParameterException. At the end of a stream the token given comes back with no
events, which is how the SDK knows to stop. FilterLogEvents returns a ``nextToken`` whenever a
page has events (more may still arrive) or its search stopped early, and none on an empty page
with nothing left to search, so botocore's paginators end; its tokens, like the client's listing
tokens, are opaque (:func:`listing_token`) and bound to the query that made them.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import hashlib
import json
import os
import re
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from local_mode.errors import error_class

MAX_EVENTS = 10_000
"""GetLogEvents / FilterLogEvents: the default and largest number of events in a page."""
MAX_PAGE_BYTES = 1_048_576
"""A page holds at most this many bytes of messages (and always at least one event)."""
MAX_EVENT_BYTES = 256 * 1024 - 26
"""The longest event: the service's event size less its per-event overhead."""
SEARCH_BUDGET = 16 * MAX_PAGE_BYTES
"""FilterLogEvents reads at most about this many bytes before returning a (partial) page."""
KEPT_FILES = 256
"""A :class:`LogFiles` keeps the index of at most this many files (the most recently read)."""
READ_BLOCK = 1 << 20
SEARCH_BATCH = 256

InvalidParameterException = error_class("InvalidParameterException")

_STREAM_TOKEN = re.compile(r"([fb])/([0-9]{1,19})/([0-9a-f]{12})")
_NOT_VALID = "The specified nextToken is not valid."

__all__ = ["KEPT_FILES", "MAX_EVENTS", "MAX_EVENT_BYTES", "MAX_PAGE_BYTES", "SEARCH_BUDGET",
           "Event", "InvalidParameterException", "LogFile", "LogFiles", "filter_page",
           "filter_position", "get_events_page", "is_count", "listing_key", "listing_token",
           "read_events"]


# -- one log file --------------------------------------------------------------------------
class Event(NamedTuple):
    """One event as FilterLogEvents merges them: ordered by (timestamp, stream, start)."""

    timestamp: int
    stream: str
    start: int
    size: int
    message: str
    tag: str

    @property
    def event_id(self) -> str:
        """Unique in its log group and stable across reads: the file's tag and byte offset."""
        return f"{self.tag}-{self.start}"


class LogFile:
    """What has been seen of one log file: its events as byte ranges, each with the time of
    the read that completed it (see the module's docstring). Use under ``lock``."""

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
        """GetLogEvents' token at byte ``offset``, ``direction`` ``f`` (forward) or ``b``."""
        return f"{direction}/{offset}/{self.tag}"

    def position(self, token: str) -> tuple[bool, int]:
        """(forward?, byte offset) from a GetLogEvents token of this file; one of another
        stream or file, past what was read, or garbage, is InvalidParameterException."""
        match = _STREAM_TOKEN.fullmatch(token)
        if match is None or match[3] != self.tag or int(match[2]) > self.scanned:
            raise InvalidParameterException(_NOT_VALID)
        return match[1] == "f", int(match[2])


def _character_boundary(fd: int, cut: int) -> int:
    """``cut`` moved back (by at most 3 bytes) to the start of a UTF-8 character."""
    tail = os.pread(fd, 4, cut - 3)
    for back in range(min(len(tail), 4)):
        if tail[len(tail) - 1 - back] & 0xC0 != 0x80:
            return cut - back
    return cut


def _message(raw: bytes) -> str:
    return raw.removesuffix(b"\n").decode("utf-8", "replace")


# -- the files' records ----------------------------------------------------------------------
class LogFiles:
    """The :class:`LogFile` of each file read, the ``capacity`` most recently read kept (by
    default :data:`KEPT_FILES`); safe to share between threads."""

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = KEPT_FILES if capacity is None else capacity
        if self.capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {self.capacity}")
        self._records: OrderedDict[Path, LogFile] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    @contextlib.contextmanager
    def observed(self, path: Path, group: str, name: str) -> Iterator[tuple[LogFile, int]]:
        """The file at ``path`` (the stream ``name`` of ``group``) open and freshly indexed,
        its record locked; FileNotFoundError when the file is gone."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            with self._lock:
                self._records.pop(path, None)
            raise
        try:
            status = os.fstat(fd)
            identity = (status.st_dev, status.st_ino)
            with self._lock:
                record = self._records.get(path)
                if record is None or record.identity != identity:  # a new file at that path
                    tag = hashlib.blake2b(f"{group}\n{name}\n{status.st_ino}".encode(),
                                          digest_size=6).hexdigest()
                    record = self._records[path] = LogFile(identity, tag)
                self._records.move_to_end(path)
                while len(self._records) > self.capacity:
                    self._records.popitem(last=False)
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


def read_events(path: Path, name: str, record: LogFile, indices: range) -> Iterator[Event]:
    """The events at ``indices`` (ascending or descending) of ``record``, the stream ``name``
    in the file ``path``, read a batch at a time (none once the file is gone)."""
    for first in range(0, len(indices), SEARCH_BATCH):
        batch = indices[first:first + SEARCH_BATCH]
        lo, hi = min(batch[0], batch[-1]), max(batch[0], batch[-1]) + 1
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            with record.lock:
                messages = record.messages(fd, lo, hi)
                rows = [Event(record.times[i], name, record.starts[i], record.size(i), message,
                              record.tag)
                        for i, message in zip(range(lo, hi), messages)]
        finally:
            os.close(fd)
        yield from (reversed(rows) if batch.step < 0 else rows)


# -- pages -----------------------------------------------------------------------------------
def get_events_page(record: LogFile, fd: int, *, limit: int = MAX_EVENTS,
                    start_time: int | None = None, end_time: int | None = None,
                    start_from_head: bool = False, token: str | None = None) -> dict[str, Any]:
    """GetLogEvents' answer from a freshly observed file (its record locked, ``fd`` open)."""
    count = len(record)
    first = record.first_at(start_time, 0)
    stop = record.first_at(end_time, count)
    offset: int | None
    if token is None:
        forward, offset = start_from_head, None
    else:
        forward, offset = record.position(token)
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


def filter_page(events: Iterator[Event], matches: Callable[[str], bool], limit: int,
                descending: bool) -> dict[str, Any]:
    """FilterLogEvents' page from the merged ``events``: those whose message ``matches``, up to
    ``limit`` and a megabyte, and a token after the last event searched unless the page is
    empty and the search complete (searching stops after about :data:`SEARCH_BUDGET` bytes)."""
    page: list[dict[str, Any]] = []
    size = searched = 0
    last: Event | None = None
    finished = True
    for event in events:
        if searched >= SEARCH_BUDGET:
            finished = False
            break
        if matches(event.message):
            if len(page) == limit or size + event.size > MAX_PAGE_BYTES:
                finished = False
                break
            size += event.size
            page.append({"logStreamName": event.stream, "timestamp": event.timestamp,
                         "message": event.message, "ingestionTime": event.timestamp,
                         "eventId": event.event_id})
        searched += event.size
        last = event
    response: dict[str, Any] = {"events": page, "searchedLogStreams": []}
    if last is not None and (page or not finished):
        response["nextToken"] = listing_token(
            "e", "events", ["b" if descending else "f", *last[:3]])
    return response


def filter_position(token: str) -> tuple[bool, tuple[int, str, int]]:
    """(newest first?, the last event searched) from a FilterLogEvents token."""
    key = listing_key(token, "e", "events", lambda key: (
        isinstance(key, list) and len(key) == 4 and key[0] in ("f", "b")
        and is_count(key[1]) and isinstance(key[2], str) and is_count(key[3])))
    return key[0] == "b", (key[1], key[2], key[3])


# -- opaque tokens ---------------------------------------------------------------------------
def listing_token(kind: str, query: Any, key: Any) -> str:
    """An opaque token of a listing of ``kind`` for ``query``, resuming after ``key`` (both
    JSON values)."""
    payload = json.dumps([query, key], separators=(",", ":")).encode()
    return f"{kind}/" + base64.urlsafe_b64encode(payload).decode()


def listing_key(token: str | None, kind: str, query: Any,
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


def is_count(value: Any) -> bool:
    """Whether a decoded token's ``value`` is a byte offset or time: an int, not negative."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
