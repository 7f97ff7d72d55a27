"""toolkit.resources: CPU count from a (fake) cgroup tree and the affinity mask; GPU count."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolkit.resources import cgroup_cpu_limit, cpu_count, gpu_count

AFFINITY = len(os.sched_getaffinity(0))


@pytest.fixture()
def one_cpu_affinity() -> Iterator[int]:
    """Pin this process to one CPU for the test, and restore the mask afterwards."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -- cgroup v2 -------------------------------------------------------------------------------

@pytest.mark.parametrize(("cpu_max", "limit"), [
    ("150000 100000\n", 1.5),
    ("200000 100000", 2.0),
    ("50000 100000\n", 0.5),
    ("400000 100000\n", 4.0),
])
def test_v2_quota(tmp_path: Path, cpu_max: str, limit: float) -> None:
    _write(tmp_path, "cpu.max", cpu_max)
    assert cgroup_cpu_limit(tmp_path) == limit


def test_v2_fractional_quota_rounds_up(tmp_path: Path) -> None:
    _write(tmp_path, "cpu.max", "150000 100000\n")
    assert cpu_count(tmp_path) == min(AFFINITY, 2)


def test_v2_quota_below_one_cpu_still_gives_one(tmp_path: Path) -> None:
    _write(tmp_path, "cpu.max", "10000 100000\n")
    assert cpu_count(tmp_path) == 1


def test_v2_max_means_the_affinity_mask(tmp_path: Path) -> None:
    _write(tmp_path, "cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    assert cpu_count(tmp_path) == AFFINITY


def test_v2_quota_never_raises_the_affinity_count(tmp_path: Path) -> None:
    _write(tmp_path, "cpu.max", "6400000 100000\n")
    assert cpu_count(tmp_path) == AFFINITY


@pytest.mark.parametrize("cpu_max", ["", "garbage", "150000", "a b", "0 100000", "100000 0"])
def test_v2_unreadable_quota_is_ignored(tmp_path: Path, cpu_max: str) -> None:
    _write(tmp_path, "cpu.max", cpu_max)
    assert cgroup_cpu_limit(tmp_path) is None
    assert cpu_count(tmp_path) == AFFINITY


# -- cgroup v1 -------------------------------------------------------------------------------

@pytest.mark.parametrize("directory", ["cpu", "cpu,cpuacct", "."])
def test_v1_quota_in_each_known_directory(tmp_path: Path, directory: str) -> None:
    _write(tmp_path, f"{directory}/cpu.cfs_quota_us", "150000\n")
    _write(tmp_path, f"{directory}/cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5
    assert cpu_count(tmp_path) == min(AFFINITY, 2)


def test_v1_unlimited_quota(tmp_path: Path) -> None:
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "-1\n")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    assert cpu_count(tmp_path) == AFFINITY


def test_v1_quota_without_period_is_ignored(tmp_path: Path) -> None:
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "50000\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_v2_wins_over_v1(tmp_path: Path) -> None:
    _write(tmp_path, "cpu.max", "100000 100000\n")
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "800000\n")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.0


def test_no_cgroup_files_means_no_limit(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path) is None
    assert cgroup_cpu_limit(tmp_path / "missing") is None
    assert cpu_count(tmp_path / "missing") == AFFINITY


# -- affinity --------------------------------------------------------------------------------

def test_affinity_mask_is_honoured(tmp_path: Path, one_cpu_affinity: int) -> None:
    _write(tmp_path, "cpu.max", "max 100000\n")
    assert cpu_count(tmp_path) == 1
    _write(tmp_path, "cpu.max", "400000 100000\n")
    assert cpu_count(tmp_path) == 1


def test_the_real_cgroup_gives_a_sane_count() -> None:
    count = cpu_count()
    assert 1 <= count <= AFFINITY


# -- GPUs ------------------------------------------------------------------------------------

def test_gpu_count_is_zero_without_gpus() -> None:
    # This machine has neither nvidia-smi nor /proc/driver/nvidia: 0, never an error.
    assert gpu_count() == 0
