"""local_mode.cli.logs: --since parsing, merging instance logs by time, --tail, --timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_mode.cli.logs import LogOptions, LogSet, parse_since, print_logs
from local_mode.log_times import append_line, times_path

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


@given(amount=st.integers(min_value=0, max_value=10_000), unit=st.sampled_from("smhd"))
def test_a_duration_is_back_from_now(amount: int, unit: str) -> None:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit] * amount
    assert parse_since(f"{amount}{unit}", NOW) == NOW - timedelta(seconds=seconds)


def test_an_iso_time_is_taken_as_given_or_as_local_time() -> None:
    assert parse_since("2026-12-03T10:00:00+00:00") == datetime(2026, 12, 3, 10,
                                                                tzinfo=timezone.utc)
    assert parse_since("2026-12-03T10:00:00").tzinfo is not None


@given(text=st.text(max_size=12).filter(lambda t: not t.strip()[:1].isdigit()))
def test_anything_else_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(click.BadParameter) as refused:
        parse_since(text)
    assert refused.value.param_hint == "--since"


def _write(log: Path, lines: list[tuple[float, bytes]]) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle, times_path(log).open("ab") as times:
        for when, line in lines:
            append_line(handle, times, line, when=when)


def _printed(logs: LogSet, options: LogOptions) -> list[str]:
    out: list[str] = []
    print_logs(logs, options, printer=lambda line: out.append(line.decode()))
    return out


def test_instance_logs_are_merged_by_time_and_prefixed(tmp_path: Path) -> None:
    start = NOW.timestamp()
    _write(tmp_path / "AllTraffic-1.log", [(start, b"one\n"), (start + 2, b"three\n")])
    _write(tmp_path / "AllTraffic-2.log", [(start + 1, b"two\n")])
    assert _printed(LogSet(tmp_path, job_log=False), LogOptions()) == [
        "AllTraffic-1 | one\n", "AllTraffic-2 | two\n", "AllTraffic-1 | three\n"]


def test_tail_since_and_timestamps(tmp_path: Path) -> None:
    start = NOW.timestamp()
    _write(tmp_path / "all.log", [(start + i, f"algo-1 | {i}\n".encode()) for i in range(5)])
    assert _printed(LogSet(tmp_path, job_log=True), LogOptions(tail=2)) == [
        "algo-1 | 3\n", "algo-1 | 4\n"]
    since = LogOptions(since=NOW + timedelta(seconds=3))
    assert _printed(LogSet(tmp_path, job_log=True), since) == ["algo-1 | 3\n", "algo-1 | 4\n"]
    stamped = _printed(LogSet(tmp_path, job_log=True), LogOptions(tail=1, timestamps=True))
    local = (NOW + timedelta(seconds=4)).astimezone().strftime("%Y-%m-%dT%H:%M:%S.000")
    assert stamped == [f"{local} algo-1 | 4\n"]
    assert _printed(LogSet(tmp_path, job_log=True), LogOptions(tail=0)) == []


def test_following_reads_to_the_end_and_the_last_partial_line(tmp_path: Path) -> None:
    (tmp_path / "all.log").write_bytes(b"optml | a\noptml | b")
    calls = iter([False, True])
    out: list[bytes] = []
    print_logs(LogSet(tmp_path, job_log=True), LogOptions(),
               follow_until=lambda: next(calls), printer=out.append)
    assert out == [b"optml | a\n", b"optml | b\n"]
