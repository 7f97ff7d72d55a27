"""How much CPU and GPU this container may really use.

The reference toolkit reports ``os.cpu_count()``, which ignores ``docker run --cpus`` and CPU
affinity, so users start 64 workers in a 2-CPU container. We take the smallest of the affinity
mask and the cgroup (v2 or v1) CPU quota, rounded up.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

_CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_v2_quota(root: Path) -> float | None:
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _cgroup_v1_quota(root: Path) -> float | None:
    for directory in (root / "cpu", root / "cpu,cpuacct", root):
        try:
            q = int((directory / "cpu.cfs_quota_us").read_text().strip())
            p = int((directory / "cpu.cfs_period_us").read_text().strip())
        except (OSError, ValueError):
            continue
        return q / p if q > 0 and p > 0 else None
    return None


def cgroup_cpu_limit(cgroup_root: Path = _CGROUP_ROOT) -> float | None:
    """The CPU quota in CPUs (may be fractional), or ``None`` when unlimited or unknown."""
    v2 = _cgroup_v2_quota(cgroup_root)
    return v2 if v2 is not None else _cgroup_v1_quota(cgroup_root)


def cpu_count(cgroup_root: Path = _CGROUP_ROOT) -> int:
    """Usable CPUs: min(affinity mask, ceil(cgroup quota)), at least 1."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        available = os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        available = min(available, max(1, math.ceil(limit)))
    return max(1, available)


def gpu_count(timeout: float = 10.0) -> int:
    """NVIDIA GPUs visible to this container; 0 (never an error) where there are none."""
    proc_dir = Path("/proc/driver/nvidia/gpus")
    smi = shutil.which("nvidia-smi")
    if smi is None:
        try:
            return sum(1 for _ in proc_dir.iterdir())
        except OSError:
            return 0
    try:
        out = subprocess.run([smi, "--list-gpus"],  # noqa: S603 - argv list, no shell
                             capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    if out.returncode != 0:
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
