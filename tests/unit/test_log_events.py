"""The per-file event index: a growing log file read as events (complete lines, long ones split
between characters), timed by the read that saw them, with the pages, tokens and event ids the
logs API hands out, and no more files remembered than the bound."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode import log_events
from local_mode.log_events import (
    KEPT_FILES,
    Event,
    InvalidParameterException,
    LogFile,
    LogFiles,
    filter_page,
    filter_position,
    get_events_page,
    listing_key,
    listing_token,
    read_events,
)

T1 = 1_764_748_801_000  # file modification times the tests set, in epoch ms
T2 = T1 + 5_000
T3 = T1 + 9_000
GROUP = "/aws/sagemaker/TrainingJobs"


def write(path: Path, data: bytes, mtime_ms: int | None = None, *, append: bool = True) -> None:
    """Write (append) ``data`` as a job's runner does, then date the file ``mtime_ms``."""
    with path.open("ab" if append else "wb") as handle:
        handle.write(data)
    if mtime_ms is not None:
        os.utime(path, ns=(mtime_ms * 1_000_000, mtime_ms * 1_000_000))


def seen(files: LogFiles, path: Path, name: str = "j/algo-1") -> list[tuple[int, str]]:
    """Every event of the file as it is now: (timestamp, message)."""
    with files.observed(path, GROUP, name) as (record, fd):
        return list(zip(record.times, record.messages(fd, 0, len(record))))


def page(files: LogFiles, path: Path, name: str = "j/algo-1", **request: Any) -> dict[str, Any]:
    with files.observed(path, GROUP, name) as (record, fd):
        return get_events_page(record, fd, **request)


@pytest.fixture()
def log(tmp_path: Path) -> Path:
    path = tmp_path / "algo-1.log"
    path.touch()
    return path


# -- events and their times ------------------------------------------------------------------
def test_complete_lines_are_events_timed_by_the_read_that_saw_their_newline(log: Path) -> None:
    files = LogFiles()
    write(log, b"first\n\nsecond \xff\r\nthird, still being wr", T1)
    assert seen(files, log) == [(T1, "first"), (T1, "second \ufffd\r")]
    write(log, b"itten\nfourth\n", T2)
    assert seen(files, log) == [(T1, "first"), (T1, "second \ufffd\r"),
                                (T2, "third, still being written"), (T2, "fourth")]
    write(log, b"", T3)  # touched, nothing new: the times stay
    assert [stamp for stamp, _ in seen(files, log)] == [T1, T1, T2, T2]
    write(log, b"fifth\n", T1)  # a clock set back: times still never decrease
    assert seen(files, log)[-1] == (T2, "fifth")
    with files.observed(log, GROUP, "j/algo-1") as (record, _):
        assert record.first_seen_ms == T1 and record.line_start == log.stat().st_size
    # another index (a restarted server) sees it all for the first time, at the file's mtime
    assert {stamp for stamp, _ in seen(LogFiles(), log)} == {T1}


def test_a_truncated_file_is_indexed_afresh(log: Path) -> None:
    files = LogFiles()
    write(log, b"a long first line\nsecond\n", T1)
    assert len(seen(files, log)) == 2
    write(log, b"short\n", T2, append=False)
    assert seen(files, log) == [(T2, "short")]


def test_a_replaced_file_is_a_new_record_whose_tokens_are_its_own(log: Path) -> None:
    files = LogFiles()
    write(log, b"old\n", T1)
    old = page(files, log)
    replacement = log.with_suffix(".new")
    write(replacement, b"new\n", T2)
    os.replace(replacement, log)
    assert page(files, log)["events"] == [{"timestamp": T2, "message": "new",
                                           "ingestionTime": T2}]
    with pytest.raises(InvalidParameterException):
        page(files, log, token=old["nextForwardToken"])


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.text(st.characters(exclude_characters="\n\ufffd",
                                            exclude_categories=["Cs"]), max_size=12),
                      max_size=8),
       cuts=st.lists(st.integers(0, 200), max_size=4))
def test_lines_written_in_any_pieces_become_the_same_events(lines: list[str],
                                                            cuts: list[int]) -> None:
    """However the writes fall between reads, the events are the non-empty lines, each cut
    into pieces of at most MAX_EVENT_BYTES that end between characters."""
    data = b"".join(line.encode() + b"\n" for line in lines)
    bounds = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    with tempfile.TemporaryDirectory() as folder, \
            mock.patch.object(log_events, "MAX_EVENT_BYTES", 7), \
            mock.patch.object(log_events, "READ_BLOCK", 5):
        path = Path(folder) / "algo-1.log"
        path.touch()
        files = LogFiles()
        for stamp, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
            write(path, data[lo:hi], T1 + stamp)
            seen(files, path)
        with files.observed(path, GROUP, "j/algo-1") as (record, fd):
            pieces = record.messages(fd, 0, len(record))
            sizes = [record.size(i) for i in range(len(record))]
            stamps = list(record.times)
    assert stamps == sorted(stamps)
    assert "\ufffd" not in "".join(pieces)
    assert all(size <= 7 + 1 for size in sizes)  # the newline rides with the last piece
    rebuilt, line = [], ""
    for piece, end in zip(pieces, record.ends):
        line += piece
        if data[end - 1:end] == b"\n":
            rebuilt.append(line)
            line = ""
    assert rebuilt == [line for line in lines if line]


# -- GetLogEvents' pages and tokens ------------------------------------------------------------
def test_pages_go_back_from_the_tail_and_forward_from_the_head(log: Path) -> None:
    files = LogFiles()
    write(log, b"".join(b"line %d\n" % i for i in range(10)), T1)

    def texts(response: dict[str, Any]) -> list[str]:
        return [event["message"] for event in response["events"]]

    tail = page(files, log, limit=3)
    assert texts(tail) == ["line 7", "line 8", "line 9"]
    back = page(files, log, limit=5, token=tail["nextBackwardToken"])
    assert texts(back) == ["line 2", "line 3", "line 4", "line 5", "line 6"]
    head = page(files, log, limit=2, start_from_head=True)
    assert texts(head) == ["line 0", "line 1"]
    rest = page(files, log, start_from_head=True, token=head["nextForwardToken"])
    assert texts(rest) == [f"line {i}" for i in range(2, 10)]
    end = page(files, log, token=rest["nextForwardToken"])
    assert end["events"] == [] and end["nextForwardToken"] == rest["nextForwardToken"]
    write(log, b"line 10\n", T2)
    assert texts(page(files, log, token=rest["nextForwardToken"])) == ["line 10"]
    assert texts(page(files, log, start_time=T2, start_from_head=True)) == ["line 10"]
    assert texts(page(files, log, end_time=T2, limit=1)) == ["line 9"]


def test_a_page_holds_at_most_a_megabyte(log: Path) -> None:
    write(log, (b"x" * 250_000 + b"\n") * 6, T1)
    response = page(LogFiles(), log, start_from_head=True)
    assert len(response["events"]) == 4
    assert sum(len(e["message"]) for e in response["events"]) <= log_events.MAX_PAGE_BYTES


def test_a_token_names_its_stream_and_file(log: Path) -> None:
    files = LogFiles()
    write(log, b"a\nb\n", T1)
    token = page(files, log)["nextForwardToken"]
    with files.observed(log, GROUP, "j/algo-1") as (record, _):
        assert record.position(token) == (True, 4)
        assert record.position(record.token("b", 2)) == (False, 2)
        for bad in (token.replace("/4/", "/5/"),  # past what was read
                    token + "0", "f/4", "garbage", ""):
            with pytest.raises(InvalidParameterException, match="nextToken is not valid"):
                record.position(bad)
    other = LogFiles()  # the same file, another index: the same tag, so the token still works
    assert page(other, log, token=token)["events"] == []
    with pytest.raises(InvalidParameterException):  # the same file as another stream
        page(LogFiles(), log, name="j/algo-2", token=token)


@given(st.text(max_size=40))
def test_any_text_is_a_position_or_the_services_invalid_parameter(token: str) -> None:
    record = LogFile((0, 0), "0123456789ab")
    record.scanned = 1_000
    try:
        forward, offset = record.position(token)
    except InvalidParameterException as exc:
        assert exc.response["Error"]["Code"] == "InvalidParameterException"
    else:
        assert record.token("f" if forward else "b", offset) == token
        assert 0 <= offset <= 1_000


# -- FilterLogEvents' pages and tokens ---------------------------------------------------------
def _events(count: int, size: int = 10) -> list[Event]:
    return [Event(T1 + i, "j/algo-1", i * size, size, f"message {i}", "0123456789ab")
            for i in range(count)]


def test_a_filter_page_and_its_token(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _events(6)
    first = filter_page(iter(events), lambda m: m != "message 1", 2, False)
    assert [e["message"] for e in first["events"]] == ["message 0", "message 2"]
    assert first["events"][0]["eventId"] == "0123456789ab-0"
    assert filter_position(first["nextToken"]) == (False, (T1 + 2, "j/algo-1", 20))
    # nothing matched and nothing left: no token, so botocore's paginators end
    assert filter_page(iter(events), lambda m: False, 10, False) == {
        "events": [], "searchedLogStreams": []}
    newest = filter_page(iter(reversed(events)), lambda m: True, 1, True)
    assert filter_position(newest["nextToken"]) == (True, (T1 + 5, "j/algo-1", 50))
    monkeypatch.setattr(log_events, "SEARCH_BUDGET", 25)  # three events' worth
    partial = filter_page(iter(events), lambda m: False, 10, False)
    assert partial["events"] == []
    assert filter_position(partial["nextToken"]) == (False, (T1 + 2, "j/algo-1", 20))


def test_events_are_read_in_batches_either_way(log: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_events, "SEARCH_BATCH", 3)
    files = LogFiles()
    write(log, b"".join(b"%d\n" % i for i in range(8)), T1)
    with files.observed(log, GROUP, "j/algo-1") as (record, _):
        pass
    forward = list(read_events(log, "j/algo-1", record, range(1, 8)))
    assert [e.message for e in forward] == [str(i) for i in range(1, 8)]
    assert len({e.event_id for e in forward}) == 7
    backward = list(read_events(log, "j/algo-1", record, range(7, -1, -1)))
    assert [e.message for e in backward] == [str(i) for i in range(7, -1, -1)]
    log.unlink()
    assert list(read_events(log, "j/algo-1", record, range(8))) == []


def test_listing_tokens_belong_to_their_listing_and_query() -> None:
    token = listing_token("s", ["group", ""], ["a", 1])
    assert listing_key(token, "s", ["group", ""], lambda key: True) == ["a", 1]
    assert listing_key(None, "s", ["group", ""], lambda key: True) is None
    def no(key: Any) -> bool:
        return False

    for kind, query, valid in (("g", ["group", ""], bool), ("s", ["other", ""], bool),
                               ("s", ["group", ""], no)):
        with pytest.raises(InvalidParameterException):
            listing_key(token, kind, query, valid)


@given(st.text(max_size=60))
def test_any_text_is_a_filter_position_or_the_services_invalid_parameter(token: str) -> None:
    try:
        descending, (stamp, stream, offset) = filter_position(token)
    except InvalidParameterException as exc:
        assert exc.response["Error"]["Code"] == "InvalidParameterException"
    else:
        assert isinstance(descending, bool) and isinstance(stream, str)
        assert stamp >= 0 and offset >= 0


# -- how many records are kept -----------------------------------------------------------------
def test_records_of_files_not_read_lately_are_dropped(tmp_path: Path) -> None:
    files = LogFiles(capacity=2)
    paths = [tmp_path / f"algo-{i}.log" for i in range(3)]
    for path in paths:
        write(path, b"line\n", T1)
    seen(files, paths[0])
    seen(files, paths[1])
    seen(files, paths[0])  # read again: now the most recent
    seen(files, paths[2])  # one too many: algo-1, read longest ago, goes
    assert len(files) == 2
    for path in paths:
        write(path, b"", T3)
    assert seen(files, paths[0]) == [(T1, "line")]  # kept: timed as first seen
    assert seen(files, paths[2]) == [(T1, "line")]
    assert seen(files, paths[1]) == [(T3, "line")]  # dropped: rebuilt, as a new index would


def test_records_of_deleted_files_do_not_accumulate(tmp_path: Path) -> None:
    """The files of deleted jobs are never read again; their records give way to others."""
    files = LogFiles(capacity=3)
    for job in range(20):
        path = tmp_path / f"job-{job}.log"
        write(path, b"done\n", T1)
        seen(files, path, name=f"job-{job}/algo-1")
        path.unlink()
        assert len(files) == min(job + 1, 3)
    with pytest.raises(FileNotFoundError):  # read once more after deletion: forgotten now
        seen(files, tmp_path / "job-19.log", name="job-19/algo-1")
    assert len(files) == 2


def test_the_bound_is_a_few_hundred_files_and_at_least_one() -> None:
    assert 100 <= KEPT_FILES <= 1_000
    assert LogFiles().capacity == KEPT_FILES
    with pytest.raises(ValueError, match="at least 1"):
        LogFiles(capacity=0)
