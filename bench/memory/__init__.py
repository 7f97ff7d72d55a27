"""Shared measuring code for the memory benchmarks (peak RSS of a process tree, wall time,
data generated on the fly): see :mod:`bench.memory.harness`."""
