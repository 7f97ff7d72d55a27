"""Memory bounds of a Pipe channel and of File-mode staging, on the smallest benchmark size.

Not timed: ``bench/bench_memory_channels.py`` measures time and three sizes; these tests check
that memory is bounded by a ceiling that does not depend on the data:

* a Pipe channel streams 0.5 GB (the benchmark's smallest size) through the feeder local mode
  runs and a reader, and the two processes together stay under a third of that;
* staging small objects allocates a bounded amount of Python memory however many objects there
  are: one directory's listing, never a record per object (the listing is consumed as copying
  goes), and the lazy listing keeps the exact order of the sorted one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench.bench_memory_channels import PIPE_FEEDER, PIPE_READER, _child_env
from bench.memory import harness
from local_mode.storage import S3PrefixSource
from toolkit.channels.listing import iter_files, list_files
from toolkit.channels.plan import Distribution, epoch_order, iter_epoch_order
from toolkit.channels.sources import LocalFileSource, ObjectInfo, iter_objects

PIPE_BYTES = 500_000_000
PIPE_CEILING = 160_000_000
"""Peak RSS of reader + feeder (two Python processes, ~40 MB each): a third of the data."""

STAGE_OBJECTS = 3_000
STAGE_TRACED_CEILING = 2_500_000
"""Peak Python allocations while staging: 1.8 MB here whatever the count (the 1 MiB copy
buffer, one directory's 1,000 long names). A listing held whole, as before, took 3.7 MB at
3,000 of these objects and 7.2 MB at 6,000 (~1.2 KB an object)."""
STAGE_RSS_CEILING = 80_000_000

STAGER_TRACED = r"""
import sys, time, tracemalloc
from pathlib import Path
from local_mode.cluster import Host
from local_mode.cluster.staging import stage_objects
from toolkit.layout import Layout

target = Path(sys.argv[2])
host = Host("algo-1", 0, 1, Layout(target.parent / "opt_ml"))
tracemalloc.start()
total = stage_objects(sys.argv[1], "S3Prefix", "FullyReplicated", host, target, {})
print(total, tracemalloc.get_traced_memory()[1])
"""


def test_pipe_channel_rss_is_bounded_below_the_data_size(tmp_path: Path) -> None:
    objects = tmp_path / "objects"
    written = harness.write_objects(objects, PIPE_BYTES // (1 << 20), 1 << 20)
    m = harness.measure_command(
        [sys.executable, "-c", PIPE_READER, str(objects), str(tmp_path), PIPE_FEEDER],
        env=_child_env(), timeout=120)
    got, records, _seconds = m.stdout.split()
    assert int(got) == written and int(records) == PIPE_BYTES // (1 << 20)
    assert m.peak_processes == 2  # reader and feeder were both measured
    assert m.peak_rss < PIPE_CEILING, f"peak RSS {m.peak_rss / 1e6:.0f} MB streaming " \
        f"{written / 1e6:.0f} MB"


def _long_named_objects(root: Path, count: int, per_dir: int = 1000) -> int:
    payload = b"x" * 512
    for i in range(count):
        sub = root / f"partition={i // per_dir:04d}"
        sub.mkdir(exist_ok=True)
        (sub / f"{'object-with-a-long-name-' * 6}{i:08d}.json").write_bytes(payload)
    return count * len(payload)


def test_staging_memory_does_not_hold_a_record_per_object(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    written = _long_named_objects(source, STAGE_OBJECTS)
    m = harness.measure_command(
        [sys.executable, "-c", STAGER_TRACED, f"file://{source}", str(tmp_path / "staged")],
        env=_child_env(), timeout=120)
    copied, traced_peak = (int(x) for x in m.stdout.split())
    assert copied == written
    assert len(list_files(tmp_path / "staged")) == STAGE_OBJECTS
    assert traced_peak < STAGE_TRACED_CEILING, f"{traced_peak / 1e6:.2f} MB traced"
    assert m.peak_rss < STAGE_RSS_CEILING


def test_lazy_listing_is_the_sorted_listing(tmp_path: Path) -> None:
    # names around '/' (0x2f) in code point order: '-' and '.' sort before it, '0' after
    for rel in ["a-b", "a.txt", "a/x", "a/y/z", "a0", "ab/c", "b", "é/1", "z/.hidden",
                "sub/deep/er/file", "sub-file", "sub0"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())
    keys = [f.key for f in iter_files(tmp_path)]
    assert keys == sorted(keys)
    assert "z/.hidden" not in keys and len(keys) == 11
    assert [o.key for o in iter_objects(LocalFileSource(tmp_path))] == keys


def test_one_pass_epoch_order_matches_epoch_order() -> None:
    items = [f"k{i:03d}" for i in range(50)]
    for seed in (None, 7):
        for host in range(3):
            expected = epoch_order(items, 2, seed=seed, distribution=Distribution.SHARDED_BY_S3_KEY,
                                   host_index=host, host_count=3)
            got = list(iter_epoch_order(iter(items), 2, seed=seed,
                                        distribution=Distribution.SHARDED_BY_S3_KEY,
                                        host_index=host, host_count=3))
            assert got == expected


class _Pages:
    """A paginator over fixed pages, as boto3's list_objects_v2 returns them."""

    def __init__(self, pages: list[list[str]]) -> None:
        self.pages = pages

    def paginate(self, **_kwargs: Any) -> Any:
        return ({"Contents": [{"Key": key, "Size": 1} for key in page]} for page in self.pages)


class _Client:
    def __init__(self, pages: list[list[str]]) -> None:
        self.pages = pages

    def get_paginator(self, name: str) -> _Pages:
        assert name == "list_objects_v2"
        return _Pages(self.pages)


def test_s3_lazy_listing_is_the_sorted_listing() -> None:
    pages = [["p/a", "p/b"], ["p/c", "p/dir/"], ["p/d"]]
    source = S3PrefixSource("bucket", "p/", _Client(pages))
    assert list(source.iter_objects()) == source.list_objects() == [
        ObjectInfo(key, 1) for key in ("p/a", "p/b", "p/c", "p/d")]


def test_s3_lazy_listing_out_of_order_gives_every_object_once() -> None:
    source = S3PrefixSource("bucket", "p/", _Client([["p/a", "p/c"], ["p/b", "p/e", "p/d"]]))
    assert [o.key for o in source.iter_objects()] == ["p/a", "p/c", "p/b", "p/d", "p/e"]
