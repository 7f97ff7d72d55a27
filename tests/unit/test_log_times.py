"""local_mode.log_times: each line's write time beside the log, read back with the line."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode.log_times import append_line, read_times_from, timed_lines, times_path

LINES = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\n"),
                 max_size=20)


@settings(max_examples=50, deadline=None)
@given(lines=LINES, start=st.floats(min_value=1e9, max_value=2e9))
def test_every_line_comes_back_with_its_offset_and_time(tmp_path_factory: object, lines: list[bytes],
                                                       start: float) -> None:
    directory = tmp_path_factory.mktemp("log")  # type: ignore[attr-defined]
    log = directory / "all.log"
    with log.open("ab") as handle, times_path(log).open("ab") as times:
        for index, line in enumerate(lines):
            append_line(handle, times, line, when=start + index)
    read = list(timed_lines(log))
    assert [line for *_, line in read] == lines
    assert [stamp for _, _, stamp, _ in read] == [int((start + i) * 1000)
                                                  for i in range(len(lines))]
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    assert [(begin, end) for begin, end, _, _ in read] == list(zip(offsets, offsets[1:]))


def test_a_log_without_sidecar_has_lines_without_times(tmp_path: Path) -> None:
    log = tmp_path / "instance.log"
    log.write_bytes(b"a\nb\n")
    assert read_times_from(log) == ({}, 0)
    assert [(stamp, line) for _, _, stamp, line in timed_lines(log)] == [(None, b"a\n"),
                                                                           (None, b"b\n")]


def test_a_partial_last_line_waits_until_the_writer_is_gone(tmp_path: Path) -> None:
    log = tmp_path / "all.log"
    log.write_bytes(b"done\nhalf")
    assert [line for *_, line in timed_lines(log)] == [b"done\n"]
    assert [line for *_, line in timed_lines(log, 5, final=True)] == [b"half\n"]


def test_reading_from_an_offset_and_a_missing_log(tmp_path: Path) -> None:
    log = tmp_path / "all.log"
    assert list(timed_lines(log)) == []
    log.write_bytes(b"one\ntwo\n")
    assert [line for *_, line in timed_lines(log, 4)] == [b"two\n"]


def test_a_damaged_sidecar_entry_is_skipped(tmp_path: Path) -> None:
    log = tmp_path / "all.log"
    log.write_bytes(b"one\ntwo\n")
    times_path(log).write_bytes(b"0 1000\ngarbage\n4 2000\n")
    assert read_times_from(log) == ({0: 1000, 4: 2000}, 22)
    assert read_times_from(log, 15) == ({4: 2000}, 22)  # from where the last read ended


def test_an_entry_still_being_written_waits_for_the_next_read(tmp_path: Path) -> None:
    log = tmp_path / "all.log"
    times_path(log).write_bytes(b"0 1000\n4 20")
    assert read_times_from(log) == ({0: 1000}, 7)
    with times_path(log).open("ab") as handle:
        handle.write(b"00\n")
    assert read_times_from(log, 7) == ({4: 2000}, 14)
