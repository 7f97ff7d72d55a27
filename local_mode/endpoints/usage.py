"""What an endpoint instance's containers use: CPU seconds and resident memory, read where each
backend keeps them (``/proc`` for a process group, the engine's stats for a container), and the
percentages the service publishes as ``CPUUtilization`` and ``MemoryUtilization``.

The service's CPU utilization is the sum over the instance's cores (400 % is four busy cores);
its memory utilization is the share of the instance's memory in use. A percentage needs two
readings, so :class:`UsageSampler` keeps each instance's previous one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Usage:
    """One reading: CPU seconds used so far, bytes resident now, and the memory the instance
    has (its type's, or what is there when the type sets none)."""

    cpu_seconds: float
    memory_bytes: int
    memory_limit: int


def process_tree_usage(pid: int, memory_limit: int) -> Usage | None:
    """The summed CPU time and resident memory of process ``pid`` and its descendants (a
    server and its workers), from ``/proc``; None when it is gone or there is no procfs.

    Descendants are found through each thread's ``children`` list, so a reading opens a few
    files per process of the tree rather than every process on the machine."""
    cpu = 0.0
    rss = 0
    found = False
    pending = [pid]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(f"/proc/{current}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if len(fields) < 22 or fields[0] == b"Z":
            continue
        found = True
        # after the command: state ppid pgrp ... utime(11) stime(12) ... rss(21)
        cpu += (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        rss += int(fields[21]) * _PAGE
        pending.extend(_children(current))
    return Usage(cpu, rss, memory_limit) if found else None


def _children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (a worker may be forked from any thread)."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children", "rb") as handle:
                found.extend(int(child) for child in handle.read().split())
        except (OSError, ValueError):
            continue
    return found


def docker_stats_usage(stats: Mapping[str, Any]) -> Usage | None:
    """A reading from the engine's one-shot stats of a container (``docker stats``)."""
    try:
        cpu_ns = int(stats["cpu_stats"]["cpu_usage"]["total_usage"])
        memory = stats["memory_stats"]
        used = int(memory["usage"])
        limit = int(memory.get("limit") or 0)
    except (KeyError, TypeError, ValueError):
        return None  # the container has exited: the engine reports no figures
    # what the docker CLI shows as used: the page cache it could drop is not the program's
    inactive = (memory.get("stats") or {}).get("inactive_file", 0)
    return Usage(cpu_ns / 1e9, max(0, used - int(inactive or 0)), limit)


def combined(readings: list[Usage]) -> Usage | None:
    """An instance's reading from its containers' (a pipeline has several); the memory it has
    is its largest container's limit (all share the instance's)."""
    if not readings:
        return None
    return Usage(sum(r.cpu_seconds for r in readings), sum(r.memory_bytes for r in readings),
                 max(r.memory_limit for r in readings))


class UsageSampler:
    """Turns successive readings per instance into (CPU %, memory %)."""

    def __init__(self) -> None:
        self._previous: dict[str, tuple[float, Usage]] = {}

    def sample(self, ident: str, usage: Usage, when: float) -> tuple[float, float] | None:
        """(CPU %, memory %) since this instance's previous reading; None on its first."""
        previous = self._previous.get(ident)
        self._previous[ident] = (when, usage)
        if previous is None:
            return None
        then, before = previous
        elapsed = when - then
        if elapsed <= 0:
            return None
        cpu = max(0.0, usage.cpu_seconds - before.cpu_seconds) / elapsed * 100.0
        memory = 100.0 * usage.memory_bytes / usage.memory_limit if usage.memory_limit else 0.0
        return cpu, memory

    def forget(self, keep: set[str]) -> None:
        """Drop the readings of instances that are gone."""
        for ident in [i for i in self._previous if i not in keep]:
            del self._previous[ident]
