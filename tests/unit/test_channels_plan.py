"""Per-epoch object order: sharding and seeded shuffles (pure functions)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.channels.plan import Distribution, epoch_order

KEYS = [f"part-{i:03d}" for i in range(20)]
SHARDED = Distribution.SHARDED_BY_S3_KEY


def test_no_seed_keeps_key_order_every_epoch() -> None:
    assert epoch_order(KEYS, 0) == KEYS
    assert epoch_order(KEYS, 7) == KEYS


def test_fully_replicated_gives_every_host_everything() -> None:
    for host in range(3):
        assert epoch_order(KEYS, 0, host_index=host, host_count=3) == KEYS


def test_sharding_across_three_hosts_is_disjoint_and_complete() -> None:
    shards = [epoch_order(KEYS, 0, distribution=SHARDED, host_index=h, host_count=3)
              for h in range(3)]
    assert sorted(k for shard in shards for k in shard) == KEYS
    assert [len(s) for s in shards] == [7, 7, 6]


def test_same_seed_same_order_and_epochs_differ() -> None:
    first = epoch_order(KEYS, 0, seed=42)
    assert first == epoch_order(KEYS, 0, seed=42)
    assert sorted(first) == KEYS
    assert first != KEYS
    assert epoch_order(KEYS, 1, seed=42) != first
    assert epoch_order(KEYS, 0, seed=43) != first


def test_order_is_the_same_in_another_process() -> None:
    """No salted hash(): a fresh interpreter (new PYTHONHASHSEED) computes the same order."""
    code = ("import json; from toolkit.channels.plan import epoch_order; "
            f"print(json.dumps(epoch_order({KEYS!r}, 3, seed=9)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env={"PYTHONHASHSEED": "123"}).stdout
    assert json.loads(out) == epoch_order(KEYS, 3, seed=9)


def test_bad_host_index_is_rejected() -> None:
    with pytest.raises(ValueError, match="host_index"):
        epoch_order(KEYS, 0, host_index=3, host_count=3)


@settings(deadline=None)  # lazy imports and a shared, loaded machine
@given(n=st.integers(0, 60), hosts=st.integers(1, 7), epoch=st.integers(0, 50),
       seed=st.none() | st.integers(-(2**63), 2**63))
def test_every_object_exactly_once_across_hosts(n: int, hosts: int, epoch: int,
                                                seed: int | None) -> None:
    items = list(range(n))
    shards = [epoch_order(items, epoch, seed=seed, distribution=SHARDED, host_index=h,
                          host_count=hosts) for h in range(hosts)]
    assert sorted(x for shard in shards for x in shard) == items
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
