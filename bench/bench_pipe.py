"""Pipe mode throughput: optml feeder -> FIFO -> channel reader vs ``cat file > fifo``.

Run:  .venv/bin/python bench/bench_pipe.py [--mb 200] [--object-kb 1024] [--repeat 5]

Peer: a real ``cat`` process writing the same bytes into a FIFO while this process does raw
``os.read`` of 1 MiB chunks — the most a Python reader can get from a pipe on this machine.
optml: a :class:`PipeFeeder` in a separate Python process (as local mode runs it, outside the
training container) wraps each object in a RecordIO record; this process reads the epoch with
``open_channel(...).open_epoch().records()`` (RecordIO framing). A third figure reads the same
RecordIO stream with raw framing, to separate transport cost from record-parsing cost, and a
fourth with ``record_views()`` (zero-copy RecordIO records).
The three are interleaved ``--repeat`` times; best and median are printed (shared machine).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from toolkit.channels import open_channel
from toolkit.layout import Layout

FEEDER = """
import sys
from toolkit.channels import LocalFileSource, PipeFeeder
feeder = PipeFeeder(LocalFileSource(sys.argv[1]), sys.argv[2], "train", epochs=int(sys.argv[3]),
                    record_wrapper="RecordIO", reader_timeout=60)
feeder.start()
feeder.wait()
"""


def make_data(root: Path, total_mb: int, object_kb: int) -> tuple[Path, int]:
    objects = root / "objects"
    objects.mkdir()
    size = object_kb * 1024
    count = max(1, total_mb * 1024 * 1024 // size)
    block = os.urandom(size)
    with open(root / "all.bin", "wb") as whole:
        for i in range(count):
            payload = block[i % size:] + block[:i % size]  # distinct objects, no urandom cost
            (objects / f"part-{i:06d}").write_bytes(payload)
            whole.write(payload)
    return objects, count * size


def bench_cat(path: Path, fifo_dir: Path) -> tuple[float, int]:
    fifo = fifo_dir / "cat_fifo"
    os.mkfifo(fifo)
    procs: list[subprocess.Popen[bytes]] = []

    def writer() -> None:
        fd = os.open(fifo, os.O_WRONLY)  # blocks until the reader below opens
        try:
            procs.append(subprocess.Popen(["cat", str(path)], stdout=fd))
        finally:
            os.close(fd)

    thread = threading.Thread(target=writer)
    thread.start()
    start = time.perf_counter()
    fd = os.open(fifo, os.O_RDONLY)
    total = 0
    try:
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - start
    thread.join()
    procs[0].wait(30)
    fifo.unlink()
    return elapsed, total


class OptmlRun:
    """A feeder process serving ``epochs`` epochs, and this process reading them one by one."""

    def __init__(self, objects: Path, root: Path, epochs: int, framing: str) -> None:
        layout = Layout(root / f"opt_ml_{framing}")
        layout.input_data_dir.mkdir(parents=True)
        self.framing = framing
        self.feeder = subprocess.Popen([sys.executable, "-c", FEEDER, str(objects),
                                        str(layout.input_data_dir), str(epochs)])
        self.channel = open_channel("train", layout=layout, open_timeout=60, input_data_config={
            "train": {"TrainingInputMode": "Pipe", "RecordWrapperType": "RecordIO"}})

    def epoch(self) -> tuple[float, int]:
        with self.channel.open_epoch() as epoch:  # returns once the feeder made the FIFO
            start = time.perf_counter()
            total = 0
            records = epoch.record_views() if self.framing == "views" else \
                epoch.records(self.framing)
            for record in records:
                total += len(record)
            return time.perf_counter() - start, total

    def close(self) -> None:
        try:
            self.feeder.wait(60)
        finally:
            if self.feeder.poll() is None:
                self.feeder.kill()
                self.feeder.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--object-kb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cat_runs, rec_runs, view_runs, raw_runs = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench_pipe_") as tmp:
        root = Path(tmp)
        objects, size = make_data(root, args.mb, args.object_kb)
        recordio = OptmlRun(objects, root, args.repeat, "recordio")
        views = OptmlRun(objects, root, args.repeat, "views")
        raw = OptmlRun(objects, root, args.repeat, "raw")
        try:
            for _ in range(args.repeat):  # interleaved, so load changes hit all three alike
                cat_runs.append(bench_cat(root / "all.bin", root))
                rec_runs.append(recordio.epoch())
                view_runs.append(views.epoch())
                raw_runs.append(raw.epoch())
        finally:
            recordio.close()
            views.close()
            raw.close()
    assert all(n == size for _, n in cat_runs), "cat baseline lost data"
    assert all(n == size for _, n in rec_runs + view_runs), "optml lost records"

    def best(runs: list[tuple[float, int]]) -> float:
        return max(n / t for t, n in runs) / 1e6

    def median(runs: list[tuple[float, int]]) -> float:
        return sorted(n / t for t, n in runs)[len(runs) // 2] / 1e6

    print(f"payload: {size / 1e6:.0f} MB in {size // (args.object_kb * 1024)} objects of "
          f"{args.object_kb} KiB; {args.repeat} interleaved runs; cpus={os.cpu_count()}")
    print("                                             best MB/s   median MB/s")
    for label, runs in (("cat file > fifo, raw os.read(1 MiB)      ", cat_runs),
                        ("optml feeder -> FIFO -> records(recordio)", rec_runs),
                        ("optml feeder -> FIFO -> record_views()   ", view_runs),
                        ("optml feeder -> FIFO -> records(raw)     ", raw_runs)):
        print(f"{label}   {best(runs):9.0f}   {median(runs):11.0f}")
    print(f"ratio optml recordio / cat (best)             {best(rec_runs) / best(cat_runs):6.2f}"
          "   (target >= 0.50)")
    print(f"ratio optml recordio / cat (median)           "
          f"{median(rec_runs) / median(cat_runs):6.2f}")
    print(f"ratio optml record_views / cat (best)         "
          f"{best(view_runs) / best(cat_runs):6.2f}")
    print(f"ratio optml record_views / cat (median)       "
          f"{median(view_runs) / median(cat_runs):6.2f}")


if __name__ == "__main__":
    main()
