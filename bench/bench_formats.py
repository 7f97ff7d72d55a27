"""Benchmark of the binary record formats against named peers, measured in one run.

    .venv/bin/python bench/bench_formats.py [--scan-mb 200] [--rows 100000] [--repeat 3]

Peers:
* RecordIO framing scan of a ~200 MB file vs a raw chunked ``read()`` of the same file
  (target: at least 50 % of raw throughput).
* RecordIO-protobuf dense decode of 100,000 x 100 float32 rows (with labels) vs the SDK's
  ``read_records`` plus conversion to numpy (target: at least 20x faster), and encode vs the
  SDK's ``write_numpy_to_dense_tensor`` (target: at least 10x faster).

Each of our figures is the best of ``--repeat`` runs; the SDK peers run once (they take seconds).
All files live in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from toolkit.formats import recordio
from toolkit.formats import recordio_protobuf as rp

CHUNK = recordio.DEFAULT_CHUNK_SIZE


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def write_recordio_file(path: Path, total_mb: int, record_size: int) -> int:
    rng = np.random.default_rng(0)
    block = [rng.integers(0, 256, record_size, dtype=np.uint8).tobytes() for _ in range(64)]
    count = total_mb * (1 << 20) // (record_size + 8)
    with path.open("wb") as out:
        for i in range(count):
            recordio.write_record(out, block[i % 64])
    return count


def raw_read(path: Path) -> int:
    total = 0
    with path.open("rb") as stream:
        while data := stream.read(CHUNK):
            total += len(data)
    return total


def scan(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(len(batch) for batch in recordio.scan_batches(stream, source=str(path)))


def read_each(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for _ in recordio.read_records(stream, source=str(path)))


def row(name: str, ours: float, peer_name: str, peer: float, unit: str, size: float,
        as_percent: bool) -> tuple[str, ...]:
    """One table line; the ratio is ours as % of the peer's throughput, or the speed-up."""
    ratio = f"{100 * peer / ours:5.1f} %" if as_percent else f"{peer / ours:6.1f}x"
    return (name, f"{ours * 1e3:9.1f} ms", f"{size / ours:9.1f} {unit}", peer_name,
            f"{peer * 1e3:9.1f} ms", ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scan-mb", type=int, default=200)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    logging.disable(logging.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sagemaker.amazon import common as sdk

    table: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="optml-bench-formats-") as tmp:
        for record_size in (16 << 10, 1 << 10):
            path = Path(tmp) / f"records-{record_size}.rec"
            count = write_recordio_file(path, args.scan_mb, record_size)
            size_mb = path.stat().st_size / (1 << 20)
            raw_read(path)  # warm the page cache so both sides read from memory
            raw = best_of(args.repeat, lambda p=path: raw_read(p))
            assert scan(path) == count and read_each(path) == count
            label = f"{size_mb:.0f} MB, {count} x {record_size // 1024} KiB"
            table.append(row(f"RecordIO scan_batches ({label})",
                             best_of(args.repeat, lambda p=path: scan(p)), "raw read()", raw,
                             "MB/s", size_mb, True))
            table.append(row(f"RecordIO read_records ({label})",
                             best_of(args.repeat, lambda p=path: read_each(p)), "raw read()", raw,
                             "MB/s", size_mb, True))
            path.unlink()

        rng = np.random.default_rng(1)
        features = rng.standard_normal((args.rows, args.width)).astype(np.float32)
        labels = rng.integers(0, 2, args.rows).astype(np.float32)
        rows_k = args.rows / 1000

        def sdk_encode() -> bytes:
            out = io.BytesIO()
            sdk.write_numpy_to_dense_tensor(out, features, labels)
            return out.getvalue()

        start = time.perf_counter()
        sdk_bytes = sdk_encode()
        sdk_encode_time = time.perf_counter() - start
        ours_bytes = rp.encode_dense(features, labels)
        assert ours_bytes == sdk_bytes, "encoders disagree"
        table.append(row(f"protobuf encode_dense ({args.rows} x {args.width} f32)",
                         best_of(args.repeat, lambda: rp.encode_dense(features, labels)),
                         "SDK write_numpy_to_dense_tensor", sdk_encode_time, "krows/s",
                         rows_k, False))

        path = Path(tmp) / "dense.pbr"
        path.write_bytes(ours_bytes)

        def sdk_decode() -> np.ndarray:
            with path.open("rb") as stream:
                records = sdk.read_records(stream)
            return np.array([r.features["values"].float32_tensor.values for r in records],
                            dtype=np.float32)

        def ours_decode() -> np.ndarray:
            with path.open("rb") as stream:
                return rp.decode(stream, source=str(path)).features

        start = time.perf_counter()
        sdk_matrix = sdk_decode()
        sdk_decode_time = time.perf_counter() - start
        assert np.array_equal(ours_decode(), sdk_matrix), "decoders disagree"
        table.append(row(f"protobuf decode from file ({args.rows} x {args.width} f32)",
                         best_of(args.repeat, ours_decode), "SDK read_records + numpy",
                         sdk_decode_time, "krows/s", rows_k, False))

    headers = ("benchmark", "ours", "throughput", "peer", "peer time", "ours vs peer")
    widths = [max(len(r[i]) for r in [headers, *table]) for i in range(len(headers))]
    for line in [headers, tuple("-" * w for w in widths), *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)))
    print("\nscan rows: 'ours vs peer' = our throughput as % of raw read(); protobuf rows: "
          "speed-up factor over the SDK.")


if __name__ == "__main__":
    main()
