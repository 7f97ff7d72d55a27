"""Which objects a host gets in which order, per epoch — pure functions, no I/O.

``ShuffleConfig.Seed`` reshuffles every epoch: the order is drawn from a generator seeded with
SHA-256 of ``"<seed>:<epoch>"`` (never Python's salted ``hash()``), so every process and every
host computes the same permutation for the same seed and epoch. Sharding happens *after* the
shuffle, over positions (``position % host_count == host_index``): each epoch every object goes to
exactly one host, each host gets ``ceil`` or ``floor`` of 1/N of them, and with a shuffle the
objects a host receives change from epoch to epoch (as the service does).
"""

from __future__ import annotations

import enum
import hashlib
import random
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


class Distribution(str, enum.Enum):
    """``S3DistributionType``."""

    FULLY_REPLICATED = "FullyReplicated"
    SHARDED_BY_S3_KEY = "ShardedByS3Key"


def epoch_rng(seed: int, epoch: int) -> random.Random:
    """A generator that depends only on ``seed`` and ``epoch``."""
    digest = hashlib.sha256(f"{seed}:{epoch}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))  # noqa: S311 - a reproducible shuffle, not a secret


def epoch_order(items: Sequence[T], epoch: int, *, seed: int | None = None,
                distribution: Distribution = Distribution.FULLY_REPLICATED,
                host_index: int = 0, host_count: int = 1) -> list[T]:
    """The items ``host_index`` of ``host_count`` receives in ``epoch``, in sending order.

    ``items`` must already be in canonical (key) order; without a seed that order is kept.
    """
    if host_count < 1 or not 0 <= host_index < host_count:
        raise ValueError(f"host_index must be in [0, {host_count}), got {host_index}")
    ordered = list(items)
    if seed is not None:
        epoch_rng(seed, epoch).shuffle(ordered)
    if Distribution(distribution) is Distribution.SHARDED_BY_S3_KEY and host_count > 1:
        ordered = ordered[host_index::host_count]
    return ordered


def iter_epoch_order(items: Iterable[T], epoch: int, *, seed: int | None = None,
                     distribution: Distribution = Distribution.FULLY_REPLICATED,
                     host_index: int = 0, host_count: int = 1) -> Iterator[T]:
    """:func:`epoch_order` for one pass over an iterable, consumed as it goes when there is no
    shuffle (a shard is a stride of positions); a shuffle needs every item, so with a seed the
    items are gathered first. Same items, same order as :func:`epoch_order`."""
    if host_count < 1 or not 0 <= host_index < host_count:
        raise ValueError(f"host_index must be in [0, {host_count}), got {host_index}")
    if seed is not None:
        yield from epoch_order(list(items), epoch, seed=seed, distribution=distribution,
                               host_index=host_index, host_count=host_count)
        return
    if Distribution(distribution) is Distribution.SHARDED_BY_S3_KEY and host_count > 1:
        for position, item in enumerate(items):
            if position % host_count == host_index:
                yield item
        return
    yield from items

