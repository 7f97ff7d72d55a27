"""/dev/shm sizes for local containers: half the memory, never Docker's 64 MiB default."""

from __future__ import annotations

from local_mode.instance_types import GIB, Machine, ResourceLimits, limits_for


def test_half_the_instance_memory() -> None:
    machine = Machine(cpus=64, memory_bytes=512 * GIB)
    limits = limits_for("ml.m5.large", machine)  # 8 GiB
    assert limits.memory_bytes == 8 * GIB
    assert limits.shm_bytes(machine) == 4 * GIB


def test_unlimited_types_get_half_the_machine() -> None:
    machine = Machine(cpus=2, memory_bytes=24 * GIB)
    assert ResourceLimits().shm_bytes(machine) == 12 * GIB
    assert limits_for("local", machine).shm_bytes(machine) == 12 * GIB


def test_unknown_memory_leaves_the_engine_default() -> None:
    assert ResourceLimits().shm_bytes(Machine(cpus=1, memory_bytes=0)) is None
