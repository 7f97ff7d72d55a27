"""Measure whether a workload's memory stays flat as its data grows.

Every memory benchmark does the same thing: for each data size, generate the data into a scratch
directory under /tmp (only one data set on disk at a time), run the workload in a fresh child
process, sample the peak resident memory of that child and everything it starts, time it, delete
the data, and finally judge the rows: peak RSS flat within 10 % across the sizes, and time linear
in size (seconds per unit at the largest size within 25 % of the smallest's).

Why a fresh child per size: a Python process rarely hands freed heap back to the kernel, so a
workload run in the benchmark's own process would carry the previous size's high-water mark into
the next one. Why a process tree: local mode runs feeders, servers and containers' host-side
helpers as separate processes; memory a child holds counts as much as the parent's.

Typical use (see ``bench/bench_memory_channels.py``)::

    parser = argparse.ArgumentParser()
    harness.add_arguments(parser)                 # --sizes 0.5,2,8  --json PATH  --tmp DIR
    args = parser.parse_args()
    harness.install_signal_cleanup()              # SIGTERM/SIGHUP unwind like Ctrl-C
    rows = []
    for gb in args.sizes:
        nbytes = harness.gb_to_bytes(gb)
        with harness.scratch_dir("bench_mem_", need_bytes=nbytes, base=args.tmp) as tmp:
            harness.write_lines_file(tmp / "data.csv", nbytes)
            m = harness.measure_command([sys.executable, "-c", CODE, str(tmp)])
        rows.append(harness.Row(f"{gb:g} GB", amount=gb, nbytes=nbytes, measurement=m))
    result = harness.report("my workload", rows, unit="GB")
    harness.write_json(args.json, [result])

Only the standard library; Linux only (it reads ``/proc``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

GB = 1_000_000_000
"""Sizes are decimal gigabytes (0.5 GB = 500,000,000 bytes), as MB/s is decimal megabytes."""

DEFAULT_SIZES = (0.5, 2.0, 8.0)
RSS_FLAT_LIMIT = 1.10
"""Peak RSS passes when the largest size's peak is at most 10 % above the smallest one's."""
TIME_LINEAR_TOLERANCE = 0.25
"""Time passes when seconds per unit at the largest size is within 25 % of the smallest's."""
DISK_MARGIN = 2 * 1024**3
"""Free space left over after the data set, so a benchmark never fills the shared disk."""
SAMPLE_INTERVAL = 0.02

_PAGE = os.sysconf("SC_PAGE_SIZE")


class DiskSpaceError(RuntimeError):
    """Not enough free disk for the data set (plus :data:`DISK_MARGIN`)."""


# --------------------------------------------------------------------------- arguments

def parse_sizes(text: str) -> list[float]:
    """``"0.5,2,8"`` (or spaces) -> ``[0.5, 2.0, 8.0]``; an argparse ``type``."""
    try:
        sizes = [float(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be numbers, e.g. 0.5,2,8: {text!r}") from None
    if not sizes or any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be positive numbers: {text!r}")
    return sizes


def add_arguments(parser: argparse.ArgumentParser,
                  default_sizes: Sequence[float] = DEFAULT_SIZES, unit: str = "GB") -> None:
    """The options every memory benchmark shares: ``--sizes``, ``--json``, ``--tmp``."""
    parser.add_argument("--sizes", type=parse_sizes, default=list(default_sizes),
                        help=f"data sizes in {unit}, comma separated "
                             f"(default {','.join(f'{s:g}' for s in default_sizes)})")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write the raw figures as JSON to PATH")
    parser.add_argument("--tmp", type=Path, default=None, metavar="DIR",
                        help="where scratch data goes (default: the system temp dir, /tmp)")


def gb_to_bytes(gb: float) -> int:
    return int(gb * GB)


# --------------------------------------------------------------------------- cleanup

def install_signal_cleanup() -> None:
    """Make SIGTERM and SIGHUP raise :class:`KeyboardInterrupt` like Ctrl-C does, so every
    ``finally`` (scratch dirs, child process groups) runs whichever way the benchmark is stopped.
    Call it once from ``main``; importing this module changes nothing."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def ensure_free_disk(path: Path, need_bytes: int, margin: int = DISK_MARGIN) -> None:
    """Fail clearly, before writing anything, when ``path``'s file system lacks the room."""
    free = shutil.disk_usage(path).free
    if free < need_bytes + margin:
        raise DiskSpaceError(
            f"{path}: {free / GB:.1f} GB free, the data set needs {need_bytes / GB:.1f} GB plus a "
            f"{margin / GB:.1f} GB margin; pick smaller --sizes or another --tmp")


@contextlib.contextmanager
def scratch_dir(prefix: str, need_bytes: int = 0, base: Path | None = None) -> Iterator[Path]:
    """A fresh directory under ``base`` (default the temp dir) after checking there is room for
    ``need_bytes``; removed on the way out, including on Ctrl-C and errors."""
    parent = Path(base) if base is not None else Path(tempfile.gettempdir())
    ensure_free_disk(parent, need_bytes)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- data

def _pattern(block_bytes: int, seed: int = 0) -> bytes:
    """Incompressible-looking bytes without paying for ``os.urandom`` per block."""
    import random

    return random.Random(seed).randbytes(block_bytes)


def write_bytes_file(path: Path, nbytes: int, block_bytes: int = 1 << 20) -> int:
    """``nbytes`` of binary data (a repeated, rotated random block); bytes written."""
    block = _pattern(block_bytes)
    written = 0
    with open(path, "wb") as out:
        i = 0
        while written < nbytes:
            shift = (i * 4099) % block_bytes
            chunk = (block[shift:] + block[:shift])[: nbytes - written]
            out.write(chunk)
            written += len(chunk)
            i += 1
    return written


def write_lines_file(path: Path, nbytes: int, line_bytes: int = 100) -> int:
    """About ``nbytes`` of CSV-like text lines of ``line_bytes`` each (newline included), every
    line distinct (it starts with its number); bytes written (a whole number of lines)."""
    if line_bytes < 24:
        raise ValueError("line_bytes must be at least 24")
    filler = "0.123456789," * (line_bytes // 12 + 1)
    lines_per_block = max(1, (1 << 20) // line_bytes)
    total_lines = max(1, nbytes // line_bytes)
    written = 0
    with open(path, "w", encoding="ascii", newline="\n") as out:
        for start in range(0, total_lines, lines_per_block):
            stop = min(total_lines, start + lines_per_block)
            block = "".join(
                (f"{n:020d}," + filler)[: line_bytes - 1] + "\n" for n in range(start, stop))
            out.write(block)
            written += len(block)
    return written


def write_objects(directory: Path, count: int, object_bytes: int, per_dir: int = 1000) -> int:
    """``count`` small files of ``object_bytes`` each under ``directory``, ``per_dir`` to a
    subdirectory (``d00000/obj-00000000``), each distinct; bytes written."""
    block = _pattern(max(object_bytes, 64) * 2)
    written = 0
    for i in range(count):
        sub = directory / f"d{i // per_dir:05d}"
        if i % per_dir == 0:
            sub.mkdir(parents=True, exist_ok=True)
        shift = i % max(object_bytes, 1)
        payload = block[shift: shift + object_bytes]
        (sub / f"obj-{i:08d}").write_bytes(payload)
        written += len(payload)
    return written


# --------------------------------------------------------------------------- RSS sampling

def _read_stat(pid: str) -> tuple[int, int] | None:
    """``(ppid, rss_bytes)`` of a process from ``/proc/<pid>/stat``; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()  # after "pid (comm) ": state is fields[0]
    return int(fields[1]), int(fields[21]) * _PAGE


def tree_rss(root: int) -> tuple[int, int]:
    """``(resident bytes, process count)`` summed over ``root`` and all its descendants, from one
    pass over ``/proc`` (this kernel has no ``/proc/<pid>/task/<tid>/children``)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        info = _read_stat(entry)
        if info is None:
            continue
        pid = int(entry)
        children.setdefault(info[0], []).append(pid)
        rss[pid] = info[1]
    if root not in rss:
        return 0, 0
    total, count, stack = 0, 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        count += 1
        stack.extend(children.get(pid, ()))
    return total, count


class TreeRssSampler:
    """Samples the RSS of a process tree every ``interval`` seconds in a daemon thread, keeping
    the peak sum and the most processes seen at once. A context manager; or start()/stop()."""

    def __init__(self, root: int, interval: float = SAMPLE_INTERVAL) -> None:
        self.root = root
        self.interval = interval
        self.peak_bytes = 0
        self.peak_processes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        total, count = tree_rss(self.root)
        self.samples += 1
        self.peak_bytes = max(self.peak_bytes, total)
        self.peak_processes = max(self.peak_processes, count)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def start(self) -> TreeRssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> TreeRssSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclasses.dataclass
class Measurement:
    """One run of a workload: wall seconds, the sampled peak RSS of its process tree, the kernel's
    own high-water mark for the root process alone (a cross-check the 20 ms sampling cannot miss),
    and what the workload printed on stdout (it may report figures of its own there)."""

    seconds: float
    peak_rss: int
    root_maxrss: int
    peak_processes: int
    samples: int
    stdout: str = ""
    cpu_seconds: float = 0.0
    """User + system CPU of the root and every descendant it waited for (``wait4``): on a
    shared machine CPU time tracks the work better than wall time does."""


class WorkloadError(RuntimeError):
    """The measured command failed; carries its exit status and the end of its stderr."""


def measure_command(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                    cwd: Path | None = None, timeout: float | None = None,
                    interval: float = SAMPLE_INTERVAL) -> Measurement:
    """Run ``argv`` as a fresh child in its own session, sampling its tree's RSS until it exits.

    The whole process group is killed on the way out (normal end, error, Ctrl-C, timeout), so
    nothing the workload started outlives the measurement. A non-zero exit raises
    :class:`WorkloadError` with the tail of the child's stderr.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), env=dict(env) if env is not None else None, cwd=cwd,
                                stdout=out, stderr=err, start_new_session=True)
        sampler = TreeRssSampler(proc.pid, interval).start()
        try:
            deadline = None if timeout is None else start + timeout
            while True:
                # wait4 reaps the child and hands back its rusage (ru_maxrss in KiB on Linux)
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if deadline is not None and time.perf_counter() > deadline:
                    raise WorkloadError(f"{argv[0]}: no exit after {timeout:.0f} s")
                time.sleep(0.005)
            seconds = time.perf_counter() - start
        finally:
            sampler.stop()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                proc.wait()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        if proc.returncode != 0:
            tail = err.read()[-4000:].decode(errors="replace")
            raise WorkloadError(f"workload exited {proc.returncode}: {' '.join(argv)[:200]}\n"
                                f"{tail}")
    return Measurement(seconds=seconds, peak_rss=sampler.peak_bytes,
                       root_maxrss=usage.ru_maxrss * 1024, peak_processes=sampler.peak_processes,
                       samples=sampler.samples, stdout=stdout,
                       cpu_seconds=usage.ru_utime + usage.ru_stime)


def measure_call(fn: Callable[[], Any], interval: float = SAMPLE_INTERVAL) -> Measurement:
    """Time ``fn()`` in this process while sampling this process's tree. The peak includes this
    interpreter and whatever it held before; prefer :func:`measure_command` across sizes."""
    with TreeRssSampler(os.getpid(), interval) as sampler:
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
    import resource

    return Measurement(seconds=seconds, peak_rss=sampler.peak_bytes,
                       root_maxrss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                       peak_processes=sampler.peak_processes, samples=sampler.samples)


# --------------------------------------------------------------------------- report

@dataclasses.dataclass
class Row:
    """One size of one workload. ``amount`` is what time should be linear in (GB, or objects),
    ``nbytes`` the payload for MB/s."""

    label: str
    amount: float
    nbytes: int
    measurement: Measurement
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    work_seconds: float | None = None
    """The workload's own timing of its data phase, when it reports one (without interpreter
    start-up and imports, a fixed cost that says nothing about growth); the time verdict and
    MB/s use it when set, the table shows both."""

    @property
    def seconds(self) -> float:
        return self.work_seconds if self.work_seconds is not None else self.measurement.seconds


@dataclasses.dataclass
class Verdicts:
    rss_ratio: float
    rss_flat: bool
    time_ratio: float
    time_linear: bool
    fixed_seconds: float
    seconds_per_unit: float
    time_note: str
    cpu_ratio: float = 0.0
    """CPU seconds per unit at the largest size / at the smallest (informational: start-up CPU
    weighs on the smallest size; 0 when no CPU was measured)."""


def judge(rows: Sequence[Row]) -> Verdicts:
    """RSS flat: max/min peak RSS <= 1.10. Time linear: seconds per unit at the largest amount
    within 25 % of the smallest's; a least-squares fit ``t = fixed + per_unit * amount`` says
    what it is otherwise (a fixed start-up cost makes small sizes look slow per unit)."""
    ordered = sorted(rows, key=lambda row: row.amount)
    peaks = [row.measurement.peak_rss for row in ordered]
    rss_ratio = max(peaks) / max(1, min(peaks))
    small, large = ordered[0], ordered[-1]
    per_small = small.seconds / small.amount
    per_large = large.seconds / large.amount
    time_ratio = per_large / per_small if per_small > 0 else float("inf")
    xs = [row.amount for row in ordered]
    ys = [row.seconds for row in ordered]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var if var else 0.0
    fixed = mean_y - slope * mean_x
    linear = abs(time_ratio - 1.0) <= TIME_LINEAR_TOLERANCE
    if linear:
        note = "linear"
    elif time_ratio > 1:
        note = "super-linear: each unit costs more as the data grows"
    else:
        note = (f"sub-linear per unit: a fixed cost of about {fixed:.2f} s dominates the "
                "smallest size")
    cpu_small = small.measurement.cpu_seconds / small.amount
    cpu_ratio = large.measurement.cpu_seconds / large.amount / cpu_small if cpu_small else 0.0
    return Verdicts(rss_ratio=rss_ratio, rss_flat=rss_ratio <= RSS_FLAT_LIMIT,
                    time_ratio=time_ratio, time_linear=linear, fixed_seconds=fixed,
                    seconds_per_unit=slope, time_note=note, cpu_ratio=cpu_ratio)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cpus"


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:,.1f}"


def report(workload: str, rows: Sequence[Row], unit: str = "GB",
           print_fn: Callable[[str], None] = print) -> dict[str, Any]:
    """Print a table (size, wall time, the workload's own time if any, MB/s, peak RSS of the
    tree, root max RSS, processes) and the two verdicts; return everything as a JSON-ready
    dict."""
    verdicts = judge(rows)
    print_fn(f"\n== {workload}   ({load_average()})")
    print_fn(f"{'size':>14}  {'wall s':>8}  {'work s':>8}  {'CPU s':>8}  {'MB/s':>8}  "
             f"{'peak RSS MB':>11}  {'root max MB':>11}  {'procs':>5}")
    for row in rows:
        m = row.measurement
        rate = row.nbytes / row.seconds / 1e6 if row.seconds > 0 else float("inf")
        work = f"{row.work_seconds:8.2f}" if row.work_seconds is not None else f"{'-':>8}"
        print_fn(f"{row.label:>14}  {m.seconds:8.2f}  {work}  {m.cpu_seconds:8.2f}  {rate:8.1f}  "
                 f"{_mb(m.peak_rss):>11}  {_mb(m.root_maxrss):>11}  {m.peak_processes:5d}")
    flat = "PASS" if verdicts.rss_flat else "FAIL"
    print_fn(f"RSS flat within 10 % across sizes: max/min = {verdicts.rss_ratio:.3f}  [{flat}]")
    lin = "PASS" if verdicts.time_linear else "FAIL"
    print_fn(f"time linear in size: s/{unit} largest vs smallest = {verdicts.time_ratio:.3f} "
             f"(within 25 %: [{lin}]; {verdicts.time_note}; fit: {verdicts.fixed_seconds:.2f} s "
             f"+ {verdicts.seconds_per_unit:.4g} s/{unit})")
    if verdicts.cpu_ratio:
        print_fn(f"CPU per {unit}, largest vs smallest = {verdicts.cpu_ratio:.3f} (whole child, "
                 "start-up included; less load-sensitive than time on a shared machine)")
    return {
        "workload": workload,
        "unit": unit,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "rows": [{"label": row.label, "amount": row.amount, "bytes": row.nbytes,
                  "work_seconds": row.work_seconds,
                  **{k: v for k, v in dataclasses.asdict(row.measurement).items()
                     if k != "stdout"},
                  **row.extra} for row in rows],
        "verdicts": dataclasses.asdict(verdicts),
    }


def write_json(path: Path | None, results: Sequence[Mapping[str, Any]]) -> None:
    """Write the raw figures of every workload to ``path`` (nothing when None)."""
    if path is not None:
        Path(path).write_text(json.dumps(list(results), indent=2) + "\n", encoding="utf-8")
