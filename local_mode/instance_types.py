"""What an ``ml.*`` instance type gives a job, and the container limits that emulate it here.

A local job asks for ``ResourceConfig.InstanceType``; running it as the service would means the
container sees that many CPUs and that much memory, so code that sizes its worker pools or
batches from ``SM_NUM_CPUS`` / cgroup limits behaves as it will in the cloud. This machine may be
smaller than the type: then each limit is capped to the machine (a container cannot be given
more than exists), and the caller logs one warning. ``local``, ``local_gpu`` and unknown types
get no limit at all, as the SDK's local mode does.

The table lists the common training types with their published vCPU count and memory (GiB).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

GIB = 1 << 30


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_gib: float


def _family(prefix: str, sizes: Mapping[str, tuple[int, float]]) -> dict[str, InstanceType]:
    return {f"{prefix}.{size}": InstanceType(f"{prefix}.{size}", cpus, mem)
            for size, (cpus, mem) in sizes.items()}


_GENERAL = {"large": (2, 8), "xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64),
            "8xlarge": (32, 128), "12xlarge": (48, 192), "16xlarge": (64, 256),
            "24xlarge": (96, 384)}
_COMPUTE = {"large": (2, 4), "xlarge": (4, 8), "2xlarge": (8, 16), "4xlarge": (16, 32),
            "9xlarge": (36, 72), "12xlarge": (48, 96), "18xlarge": (72, 144),
            "24xlarge": (96, 192)}
_MEMORY = {"large": (2, 16), "xlarge": (4, 32), "2xlarge": (8, 64), "4xlarge": (16, 128),
           "8xlarge": (32, 256), "12xlarge": (48, 384), "16xlarge": (64, 512),
           "24xlarge": (96, 768)}
_G4DN = {"xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64), "8xlarge": (32, 128),
         "12xlarge": (48, 192), "16xlarge": (64, 256)}

_TABLE: dict[str, InstanceType] = {}
_TABLE.update(_family("ml.t3", {"medium": (2, 4), "large": (2, 8), "xlarge": (4, 16),
                                "2xlarge": (8, 32)}))
_TABLE.update(_family("ml.m4", {"xlarge": (4, 16), "2xlarge": (8, 32), "4xlarge": (16, 64),
                                "10xlarge": (40, 160), "16xlarge": (64, 256)}))
_TABLE.update(_family("ml.m5", {k: v for k, v in _GENERAL.items() if k not in {"8xlarge",
                                                                                 "16xlarge"}}))
_TABLE.update(_family("ml.m6i", {**_GENERAL, "32xlarge": (128, 512)}))
_TABLE.update(_family("ml.c4", {"xlarge": (4, 7.5), "2xlarge": (8, 15), "4xlarge": (16, 30),
                                "8xlarge": (36, 60)}))
_TABLE.update(_family("ml.c5", {k: v for k, v in _COMPUTE.items()
                                if k in {"xlarge", "2xlarge", "4xlarge", "9xlarge",
                                         "18xlarge"}}))
_TABLE.update(_family("ml.c5n", {"xlarge": (4, 10.5), "2xlarge": (8, 21), "4xlarge": (16, 42),
                                 "9xlarge": (36, 96), "18xlarge": (72, 192)}))
_TABLE.update(_family("ml.c6i", {**{k: v for k, v in _COMPUTE.items()
                                    if k not in {"9xlarge", "18xlarge"}},
                                 "8xlarge": (32, 64), "16xlarge": (64, 128),
                                 "32xlarge": (128, 256)}))
_TABLE.update(_family("ml.r5", {k: v for k, v in _MEMORY.items() if k not in {"8xlarge",
                                                                                "16xlarge"}}))
_TABLE.update(_family("ml.p2", {"xlarge": (4, 61), "8xlarge": (32, 488),
                                "16xlarge": (64, 732)}))
_TABLE.update(_family("ml.p3", {"2xlarge": (8, 61), "8xlarge": (32, 244),
                                "16xlarge": (64, 488)}))
_TABLE.update(_family("ml.p3dn", {"24xlarge": (96, 768)}))
_TABLE.update(_family("ml.p4d", {"24xlarge": (96, 1152)}))
_TABLE.update(_family("ml.p5", {"48xlarge": (192, 2048)}))
_TABLE.update(_family("ml.g4dn", _G4DN))
_TABLE.update(_family("ml.g5", {**_G4DN, "24xlarge": (96, 384), "48xlarge": (192, 768)}))
_TABLE.update(_family("ml.trn1", {"2xlarge": (8, 32), "32xlarge": (128, 512)}))

INSTANCE_TYPES: Mapping[str, InstanceType] = MappingProxyType(_TABLE)
"""Every known training instance type by name."""


def lookup(name: str) -> InstanceType | None:
    """The type called ``name``, or ``None`` for ``local``/``local_gpu`` and unknown names."""
    return INSTANCE_TYPES.get(name)


@dataclass(frozen=True)
class Machine:
    """What this machine can give containers."""

    cpus: int
    memory_bytes: int

    @classmethod
    def current(cls, meminfo: Path = Path("/proc/meminfo")) -> Machine:
        """``nproc`` (the CPUs this process may use) and ``MemTotal``."""
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # pragma: no cover - non-Linux
            cpus = os.cpu_count() or 1
        memory = 0
        try:
            for line in meminfo.read_text().splitlines():
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError, IndexError):
            memory = 0
        if memory <= 0:  # pragma: no cover - /proc/meminfo is always there on Linux
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return cls(max(1, cpus), memory)


@dataclass(frozen=True)
class ResourceLimits:
    """Per-container limits; ``None`` means unlimited."""

    cpus: float | None = None
    memory_bytes: int | None = None
    warning: str | None = None
    """Set when the type is larger than this machine and the limits were capped."""

    @property
    def nano_cpus(self) -> int | None:
        return None if self.cpus is None else round(self.cpus * 1e9)

    def shm_bytes(self, machine: Machine) -> int | None:
        """The size of ``/dev/shm``: half the container's memory, as a Linux host's tmpfs
        default is half of RAM. Docker's own 64 MiB breaks PyTorch DataLoader workers, NCCL
        and anything else that passes tensors through shared memory; the pages used still
        count against the memory limit, so a larger size reserves nothing. ``None`` when the
        machine's memory is unknown (then the engine's default applies)."""
        memory = self.memory_bytes or machine.memory_bytes
        return memory // 2 if memory else None


def instance_memory(instance_type: str, machine: Machine) -> int:
    """The memory an instance of ``instance_type`` has here: the type's, capped to the
    machine's; the machine's for ``local`` and unknown types."""
    kind = lookup(instance_type)
    if kind is None:
        return machine.memory_bytes
    return min(int(kind.memory_gib * GIB), machine.memory_bytes)


def limits_for(instance_type: str, machine: Machine) -> ResourceLimits:
    """The limits that make a container look like ``instance_type`` on ``machine``."""
    kind = lookup(instance_type)
    if kind is None:
        return ResourceLimits()
    cpus = float(min(kind.vcpus, machine.cpus))
    wanted_memory = int(kind.memory_gib * GIB)
    memory = min(wanted_memory, machine.memory_bytes)
    warning = None
    if cpus < kind.vcpus or memory < wanted_memory:
        warning = (f"{instance_type} has {kind.vcpus} vCPU and {kind.memory_gib:g} GiB; this "
                   f"machine has {machine.cpus} CPU and {machine.memory_bytes / GIB:.1f} GiB, "
                   f"so each host container is limited to {cpus:g} CPU and "
                   f"{memory / GIB:.1f} GiB")
    return ResourceLimits(cpus, memory, warning)
