"""Memory as data grows: a Pipe-mode channel (feeder -> FIFO -> reader) and File-mode staging.

    .venv/bin/python bench/bench_memory_channels.py [--sizes 0.5,2,8] [--stage-counts ...]
        [--only pipe,stage,stage-s3] [--json PATH]

Each size runs in a fresh child process; the figure is the peak RSS summed over that child and
every process it starts (sampled from /proc every 20 ms, see ``bench/memory/harness.py``), next
to the wall time. Target: peak RSS flat within 10 % across the sizes, time linear in size.

Workloads:

* ``pipe``: ``--sizes`` GB (default 0.5, 2, 8) of ``--pipe-object-kb`` KiB objects (1 MiB: the
  size the Pipe benchmark uses) in a directory. The child starts the feeder local mode starts
  (``local_mode.cluster.staging.pipe_feeder`` over ``file://``, RecordIO wrapping) in a second
  process, as local mode runs it outside the container, and reads epoch 0 with
  ``open_channel(...).open_epoch().records()``; the tree is both processes.
* ``stage``: File-mode staging (``stage_objects``) from a ``file://`` prefix of small objects,
  at ``--stage-counts`` objects (default 25,000 / 100,000 / 200,000) of ``--stage-object-kb``
  KiB (default 4). The object COUNT grows rather than the bytes: copying bytes goes through a
  fixed 1 MiB buffer, so the risk with "100,000 small objects" is per-object bookkeeping (the
  listing, its sort, directory bookkeeping), which only a growing count can show.
* ``stage-s3``: the same from ``s3://`` served by moto's server (the one the tests use) in a
  separate process that is NOT part of the measured tree (it plays the service). Uploading to
  moto is slow (~1-2 ms an object), so its counts are ``--s3-counts`` (default 2,000 / 8,000 /
  32,000); it is off by default (``--only`` names it) to keep a full run within ~5 minutes.

Data is generated on the fly under /tmp after a free-disk check, one data set at a time, and
deleted after each size, also on Ctrl-C or SIGTERM; every process started is killed by group.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for bench.memory

from bench.memory import harness

PIPE_READER = r"""
import subprocess, sys, time
from pathlib import Path
from toolkit.channels import open_channel
from toolkit.layout import Layout

objects, root = sys.argv[1], Path(sys.argv[2])
layout = Layout(root / "opt_ml")
layout.input_data_dir.mkdir(parents=True)
feeder = subprocess.Popen([sys.executable, "-c", sys.argv[3], objects,
                           str(layout.input_data_dir)])
channel = open_channel("train", layout=layout, open_timeout=60, input_data_config={
    "train": {"TrainingInputMode": "Pipe", "RecordWrapperType": "RecordIO"}})
total = records = 0
with channel.open_epoch() as epoch:  # returns once the feeder has made the FIFO
    start = time.perf_counter()
    for record in epoch.records():
        total += len(record)
        records += 1
    seconds = time.perf_counter() - start
feeder.wait(60)
print(total, records, seconds)
"""

PIPE_FEEDER = r"""
import sys, time
from pathlib import Path
from local_mode.cluster import Host
from local_mode.cluster.staging import pipe_feeder
from toolkit.layout import Layout

data_dir = Path(sys.argv[2])
host = Host("algo-1", 0, 1, Layout(data_dir.parent.parent))
feeder = pipe_feeder("file://" + sys.argv[1], "S3Prefix", "FullyReplicated", host, data_dir,
                     "train", {}, reader_timeout=60, record_wrapper="RecordIO")
feeder.start()
while feeder.running and not feeder.results:  # local mode keeps offering epochs; one is enough
    time.sleep(0.01)
feeder.stop()
if feeder.error is not None or feeder.results[0].status.value != "complete":
    sys.exit(f"feeder: {feeder.results} {feeder.error}")
"""

STAGER = r"""
import sys, time
from pathlib import Path
from local_mode.cluster import Host
from local_mode.cluster.staging import stage_objects
from toolkit.layout import Layout

target = Path(sys.argv[2])
host = Host("algo-1", 0, 1, Layout(target.parent / "opt_ml"))
environ = dict(zip(sys.argv[3::2], sys.argv[4::2]))
start = time.perf_counter()
total = stage_objects(sys.argv[1], "S3Prefix", "FullyReplicated", host, target, environ)
print(total, time.perf_counter() - start)
"""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_pipe(sizes: list[float], object_kb: int, tmp: Path | None) -> list[harness.Row]:
    rows = []
    for gb in sizes:
        nbytes = harness.gb_to_bytes(gb)
        with harness.scratch_dir("bench_mem_pipe_", need_bytes=nbytes, base=tmp) as root:
            objects = root / "objects"
            written = harness.write_objects(objects, max(1, nbytes // (object_kb * 1024)),
                                            object_kb * 1024)
            m = harness.measure_command(
                [sys.executable, "-c", PIPE_READER, str(objects), str(root), PIPE_FEEDER],
                env=_child_env(), timeout=600)
        got, records, seconds = m.stdout.split()
        if int(got) != written:
            raise SystemExit(f"pipe: the reader got {got} bytes of {written}")
        rows.append(harness.Row(f"{gb:g} GB", gb, written, m, {"records": int(records)},
                                work_seconds=float(seconds)))
        print(f"  pipe {gb:g} GB: {m.seconds:.1f} s ({float(seconds):.1f} s streaming), "
              f"peak {m.peak_rss / 1e6:.1f} MB", flush=True)
    return rows


def run_stage(counts: list[int], object_kb: int, tmp: Path | None,
              s3: S3Server | None = None) -> list[harness.Row]:
    rows = []
    object_bytes = object_kb * 1024
    for count in counts:
        nbytes = count * object_bytes
        # source + staged copy (+ a block per small file)
        need = 2 * count * max(object_bytes, 4096)
        with harness.scratch_dir("bench_mem_stage_", need_bytes=need, base=tmp) as root:
            source = root / "source"
            written = harness.write_objects(source, count, object_bytes)
            environ: dict[str, str] = {}
            uri = "file://" + str(source)
            if s3 is not None:
                uri, environ = s3.upload(source, f"stage-{count}")
                shutil.rmtree(source)
            m = harness.measure_command(
                [sys.executable, "-c", STAGER, uri, str(root / "staged"),
                 *[part for item in environ.items() for part in item]],
                env=_child_env(), timeout=900)
            if s3 is not None:
                s3.drop(f"stage-{count}")
        copied, seconds = m.stdout.split()
        if int(copied) != written:
            raise SystemExit(f"staging copied {copied} bytes of {written}")
        rows.append(harness.Row(f"{count:,} obj", count, written, m,
                                {"objects": count, "object_bytes": object_bytes},
                                work_seconds=float(seconds)))
        print(f"  stage{'-s3' if s3 else ''} {count:,} objects ({nbytes / 1e6:.0f} MB): "
              f"{m.seconds:.1f} s ({float(seconds):.1f} s staging), "
              f"peak {m.peak_rss / 1e6:.1f} MB", flush=True)
    return rows


class S3Server:
    """moto's S3 server in its own process group (not a child of the measured workloads)."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.environ = {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{self.port}",
                        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                        "AWS_REGION": "us-east-1"}
        from local_mode.storage import s3_client

        self.client = s3_client(self.environ)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client.list_buckets()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise SystemExit("moto server did not start") from None
                time.sleep(0.2)

    def upload(self, source: Path, bucket: str) -> tuple[str, dict[str, str]]:
        from concurrent.futures import ThreadPoolExecutor

        self.client.create_bucket(Bucket=bucket)
        files = sorted(p for p in source.rglob("*") if p.is_file())

        def put(path: Path) -> None:
            self.client.put_object(Bucket=bucket, Key="data/" + path.relative_to(source).as_posix(),
                                   Body=path.read_bytes())

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, files))
        return f"s3://{bucket}/data/", self.environ

    def drop(self, bucket: str) -> None:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        self.client.delete_bucket(Bucket=bucket)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    try:
        yield server
    finally:
        server.close()


def _counts(text: str) -> list[int]:
    return [int(size) for size in harness.parse_sizes(text)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_arguments(parser)
    parser.add_argument("--pipe-object-kb", type=int, default=1024)
    parser.add_argument("--stage-counts", type=_counts, default=[25_000, 100_000, 200_000])
    parser.add_argument("--stage-object-kb", type=int, default=4)
    parser.add_argument("--s3-counts", type=_counts, default=[2_000, 8_000, 32_000])
    parser.add_argument("--only", default="pipe,stage",
                        help="workloads to run, comma separated: pipe, stage, stage-s3")
    args = parser.parse_args()
    chosen = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = chosen - {"pipe", "stage", "stage-s3"}
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    harness.install_signal_cleanup()
    print(f"memory benchmark, channels ({harness.load_average()})", flush=True)
    results = []
    try:
        if "pipe" in chosen:
            rows = run_pipe(args.sizes, args.pipe_object_kb, args.tmp)
            results.append(harness.report(
                f"Pipe channel: feeder -> FIFO -> records(), {args.pipe_object_kb} KiB objects, "
                "RecordIO", rows, unit="GB"))
        if "stage" in chosen:
            rows = run_stage(args.stage_counts, args.stage_object_kb, args.tmp)
            results.append(harness.report(
                f"File-mode staging from file://, {args.stage_object_kb} KiB objects", rows,
                unit="object"))
        if "stage-s3" in chosen:
            with s3_server() as server:
                rows = run_stage(args.s3_counts, args.stage_object_kb, args.tmp, server)
            results.append(harness.report(
                f"File-mode staging from s3:// (moto), {args.stage_object_kb} KiB objects", rows,
                unit="object"))
    except harness.DiskSpaceError as exc:
        raise SystemExit(str(exc)) from None
    except KeyboardInterrupt:
        raise SystemExit("interrupted; scratch data removed") from None
    harness.write_json(args.json, results)


if __name__ == "__main__":
    main()
