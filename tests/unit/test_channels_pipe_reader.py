"""The Pipe-mode reader on real FIFOs: waits, timeouts, the early-EOF trap, epoch counting."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolkit.channels import Channel, ChannelError, open_channel
from toolkit.channels.fifo import FifoReader, wait_for_fifo
from toolkit.layout import Layout


@pytest.fixture()
def layout(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path / "opt_ml")
    layout.input_data_dir.mkdir(parents=True)
    return layout


@pytest.fixture()
def threads() -> Iterator[list[threading.Thread]]:
    started: list[threading.Thread] = []
    yield started
    for thread in started:
        thread.join(10)
        assert not thread.is_alive()


def write_later(path: Path, data: bytes, threads: list[threading.Thread]) -> None:
    def run() -> None:
        fd = os.open(path, os.O_WRONLY)  # blocks until the reader has it open
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run)
    thread.start()
    threads.append(thread)


def pipe_channel(layout: Layout, **options: float) -> Channel:
    return open_channel("train", layout=layout, input_data_config={"train": {
        "TrainingInputMode": "Pipe"}}, **options)


def test_waiting_for_a_missing_fifo_times_out_naming_it(layout: Layout) -> None:
    channel = pipe_channel(layout, open_timeout=0.2)
    with pytest.raises(ChannelError, match="did not appear within 0.2 s") as info:
        channel.open_epoch()
    assert info.value.path == str(layout.channel_fifo("train", 0))
    assert channel.next_epoch == 0  # a failed open does not use up the epoch


def test_a_regular_file_where_the_fifo_should_be_is_reported(layout: Layout) -> None:
    layout.channel_fifo("train", 0).write_bytes(b"")
    with pytest.raises(ChannelError, match="not a FIFO"):
        wait_for_fifo(layout.channel_fifo("train", 0), 1)


def test_an_early_empty_read_is_not_taken_for_eof(
        layout: Layout, threads: list[threading.Thread]) -> None:
    path = layout.channel_fifo("train", 0)
    os.mkfifo(path)
    reader = FifoReader(path, open_timeout=1, read_timeout=30)
    try:
        # The trap: no writer yet, and a plain non-blocking read says "EOF".
        assert os.read(reader.fileno(), 10) == b""
        write_later(path, b"hello", threads)
        assert reader.read() == b"hello"
        assert reader.read() == b""
    finally:
        reader.close()


def test_a_writer_that_sends_nothing_gives_an_empty_epoch(
        layout: Layout, threads: list[threading.Thread]) -> None:
    path = layout.channel_fifo("train", 0)
    os.mkfifo(path)
    channel = pipe_channel(layout)
    with channel.open_epoch() as epoch:
        write_later(path, b"", threads)
        assert list(epoch.records()) == []


def test_a_stalled_writer_hits_the_read_timeout(layout: Layout) -> None:
    path = layout.channel_fifo("train", 0)
    os.mkfifo(path)
    channel = pipe_channel(layout, read_timeout=0.3)
    with channel.open_epoch() as epoch:
        fd = os.open(path, os.O_WRONLY)
        try:
            with pytest.raises(ChannelError, match="no data from the writer for 0.3 s"):
                list(epoch.records())
        finally:
            os.close(fd)


def test_the_epoch_counter_is_shared_by_every_channel_object_and_thread(
        layout: Layout) -> None:
    for epoch in range(8):
        os.mkfifo(layout.channel_fifo("train", epoch))
    first, second = pipe_channel(layout), pipe_channel(layout)
    opened = [first.open_epoch(), second.open_epoch()]
    assert [e.number for e in opened] == [0, 1]
    lock = threading.Lock()

    def open_one() -> None:
        epoch = pipe_channel(layout).open_epoch()
        with lock:
            opened.append(epoch)

    workers = [threading.Thread(target=open_one) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert sorted(e.number for e in opened) == [0, 1, 2, 3, 4, 5]
    assert opened[-1].path.name.startswith("train_")
    for epoch in opened:
        epoch.close()
    assert first.next_epoch == 6


def test_start_epoch_seek_and_explicit_epoch(layout: Layout) -> None:
    for epoch in range(6):
        os.mkfifo(layout.channel_fifo("train", epoch))
    channel = pipe_channel(layout, start_epoch=3)
    with channel.open_epoch() as epoch:
        assert epoch.number == 3
        assert epoch.path == layout.channel_fifo("train", 3)
    channel.seek_epoch(1)
    with channel.open_epoch() as epoch:
        assert epoch.number == 1
    with channel.open_epoch(5) as epoch:
        assert epoch.number == 5
    assert channel.next_epoch == 6
    with pytest.raises(ValueError):
        channel.seek_epoch(-1)


def test_counters_are_per_channel_and_per_data_directory(tmp_path: Path) -> None:
    one, two = Layout(tmp_path / "one"), Layout(tmp_path / "two")
    for layout in (one, two):
        layout.input_data_dir.mkdir(parents=True)
        for name in ("train", "val"):
            os.mkfifo(layout.channel_fifo(name, 0))
    for layout in (one, two):
        for name in ("train", "val"):
            channel = open_channel(name, layout=layout, mode="Pipe")
            with channel.open_epoch() as epoch:
                assert epoch.number == 0
