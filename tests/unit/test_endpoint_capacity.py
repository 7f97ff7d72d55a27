"""The capacity log: what an endpoint's hosting bill is integrated from."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_mode.endpoints.capacity import (
    CapacityChange,
    CapacityLog,
    CapacityLogError,
    capacity_file,
    counts_at,
    instance_seconds,
    read_capacity,
)
from local_mode.state import StateStore

M5, C5 = "ml.m5.large", "ml.c5.xlarge"


def test_records_round_trip_in_a_private_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    resource = store.create("endpoints", "ep", {"EndpointName": "ep"}, {})
    path = capacity_file(resource)
    assert path == resource.path / "capacity.jsonl"
    log = CapacityLog(path)
    log.record("AllTraffic", M5, 1, 100.0)
    log.record("AllTraffic", M5, 3, 160)
    log.record("AllTraffic", M5, 0, 400.5)
    assert read_capacity(path) == [CapacityChange(100.0, "AllTraffic", M5, 1),
                                   CapacityChange(160.0, "AllTraffic", M5, 3),
                                   CapacityChange(400.5, "AllTraffic", M5, 0)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_no_file_is_no_record(tmp_path: Path) -> None:
    assert read_capacity(tmp_path / "capacity.jsonl") == []


def test_create_makes_an_empty_private_log_and_keeps_an_existing_one(tmp_path: Path) -> None:
    path = tmp_path / "capacity.jsonl"
    log = CapacityLog(path)
    log.create()
    assert path.read_bytes() == b"" and stat.S_IMODE(path.stat().st_mode) == 0o600
    log.record("v", M5, 1, 5.0)
    log.create()
    assert read_capacity(path) == [CapacityChange(5.0, "v", M5, 1)]


@pytest.mark.parametrize(("variant", "instance_type", "count", "when"), [
    ("", M5, 1, 1.0), ("v", "", 1, 1.0), ("v", M5, -1, 1.0), ("v", M5, 1.5, 1.0),
    ("v", M5, True, 1.0), ("v", M5, 1, float("nan")), ("v", M5, 1, float("inf")),
    ("v", M5, 1, "1"),
])
def test_a_bad_record_is_refused_before_it_is_written(tmp_path: Path, variant: str,
                                                     instance_type: str, count: object,
                                                     when: object) -> None:
    path = tmp_path / "capacity.jsonl"
    with pytest.raises(ValueError):
        CapacityLog(path).record(variant, instance_type, count, when)  # type: ignore[arg-type]
    assert not path.exists()


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "capacity.jsonl"
    CapacityLog(path).record("v", M5, 2, 10.0)
    with path.open("ab") as handle:
        handle.write(b'{"when": 20.0, "variant": "v", "instance_ty')
    assert read_capacity(path) == [CapacityChange(10.0, "v", M5, 2)]


@pytest.mark.parametrize("line", [
    b"not json", b"[1, 2]", b'{"when": 1, "variant": "v", "instance_type": "t"}',
    b'{"when": 1, "variant": "v", "instance_type": "t", "count": -2}', b"\xff\xfe",
])
def test_a_malformed_complete_line_names_the_file_and_line(tmp_path: Path,
                                                           line: bytes) -> None:
    path = tmp_path / "capacity.jsonl"
    CapacityLog(path).record("v", M5, 2, 10.0)
    with path.open("ab") as handle:
        handle.write(line + b"\n")
    with pytest.raises(CapacityLogError, match=rf"^{path}: line 2: not a capacity record"):
        read_capacity(path)


def test_instance_seconds_integrates_each_pair_in_the_window() -> None:
    changes = [CapacityChange(0.0, "A", M5, 1), CapacityChange(100.0, "A", M5, 3),
               CapacityChange(50.0, "B", C5, 2), CapacityChange(200.0, "A", M5, 0),
               CapacityChange(150.0, "B", C5, 0)]
    assert instance_seconds(changes, 0.0, 300.0) == {("A", M5): 100 * 1 + 100 * 3,
                                                      ("B", C5): 100 * 2}
    # a window that cuts segments: [60, 120] -> A: 40 s x 1 + 20 s x 3; B: 60 s x 2
    assert instance_seconds(changes, 60.0, 120.0) == {("A", M5): 100.0, ("B", C5): 120.0}
    # still running: the last count lasts until the end of the window
    assert instance_seconds(changes[:2], 0.0, 160.0) == {("A", M5): 100 + 60 * 3}
    assert instance_seconds(changes, 500.0, 400.0) == {("A", M5): 0.0, ("B", C5): 0.0}
    assert instance_seconds([], 0.0, 10.0) == {}


def test_a_pair_is_counted_apart_from_the_same_variant_on_another_type() -> None:
    """A blue/green update: the old fleet on m5 and the new one on c5 overlap for 30 s."""
    changes = [CapacityChange(0.0, "AllTraffic", M5, 2), CapacityChange(100.0, "AllTraffic", C5, 2),
               CapacityChange(130.0, "AllTraffic", M5, 0)]
    assert instance_seconds(changes, 0.0, 200.0) == {("AllTraffic", M5): 260.0,
                                                      ("AllTraffic", C5): 200.0}
    assert counts_at(changes, 120.0) == {("AllTraffic", M5): 2, ("AllTraffic", C5): 2}
    assert counts_at(changes, 130.0) == {("AllTraffic", M5): 0, ("AllTraffic", C5): 2}
    assert counts_at(changes, -1.0) == {("AllTraffic", M5): 0, ("AllTraffic", C5): 0}


counts = st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 8)), max_size=12)


@given(counts, st.integers(0, 1000), st.integers(0, 1000))
def test_instance_seconds_is_the_sum_of_whole_seconds(steps: list[tuple[int, int]],
                                                      start: int, end: int) -> None:
    """Against a brute-force count of each whole second in the window."""
    changes = [CapacityChange(float(when), "v", M5, count) for when, count in steps]
    expected = 0
    for second in range(start, end):
        # the count during [second, second + 1): the latest record at or before `second`
        expected += counts_at(changes, second).get(("v", M5), 0)
    got = instance_seconds(changes, float(start), float(end)).get(("v", M5), 0.0)
    assert got == expected


def test_a_record_order_within_one_instant_is_kept() -> None:
    changes = [CapacityChange(5.0, "v", M5, 1), CapacityChange(5.0, "v", M5, 4)]
    assert instance_seconds(changes, 0.0, 10.0) == {("v", M5): 20.0}
    assert counts_at(changes, 5.0) == {("v", M5): 4}
