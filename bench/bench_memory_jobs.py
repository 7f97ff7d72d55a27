"""Memory as data grows: a batch transform of ONE large file, and a training job's log capture.

    .venv/bin/python bench/bench_memory_jobs.py [--sizes 0.5,1.5,4] [--log-sizes 0.1,0.3,1]
        [--only transform,logs] [--json PATH]

Each size runs in a fresh child process (``bench/memory/harness.py``): the child is what a user
runs -- ``local_mode.client("sagemaker", backend="process")``, a create call, a waiter -- so the
measured tree is that client, the job's runner it starts, and everything the runner starts.
The figure is the peak RSS summed over that tree (sampled from /proc every 20 ms) next to the
wall time and the job's own time ("work s": from the create call until the runner has exited;
the time verdict uses it, so the child's interpreter start-up is left out). The child also
reports the runner alone (its kernel high-water mark, VmHWM, read
every 50 ms while it runs: exact, not sampled), the runner's tree (runner plus the model server,
or plus the training program) and the CPU seconds of the runner and what it started: on a
shared machine CPU time says more than wall time. Target: peak RSS flat within 10 % across the
sizes, time linear in size.

Workloads:

* ``transform``: one CSV file of ``--sizes`` GB (default 0.5, 1.5, 4; 100-byte lines, made
  with the harness) transformed with ``SplitType=Line``, ``BatchStrategy=MultiRecord``,
  ``MaxPayloadInMB=6``, ``AssembleWith=Line`` by a trivial model served by ``optml serve`` on the
  process backend (one worker): it answers ``1`` per record, so the output (2 % of the input)
  costs little disk and the model's own work is negligible -- what is measured is the runner
  splitting, batching, sending and writing. The job costs about 10 CPU seconds a GB (runner
  and model server together), and writing the file takes about as long again; so that both
  workloads fit in about 5 minutes, the default largest size is 4 GB. ``--sizes 0.5,2,8`` runs
  the issue's sizes.
* ``logs``: a training job whose program prints ``--log-sizes`` GB (default 0.1, 0.3, 1) of
  100-byte lines to stdout, with two MetricDefinitions tried on every line: one matches every
  line (a point in the series per line: the worst case), the other one line in 100. The
  runner copies every line into all.log (with its time), the host's log, and the metrics
  series. Checked at the end: the host's log holds every byte printed, and both metrics' final
  values are in FinalMetricDataList.

One data set on disk at a time, under /tmp after a free-disk check, deleted after each size; on
Ctrl-C or SIGTERM the job's runner (its own session, so the harness's process-group kill does not
reach it) is stopped through local mode's own stop path before the data is deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for bench.memory

from bench.memory import harness

TRANSFORM_SIZES = (0.5, 1.5, 4.0)
LOG_SIZES = (0.1, 0.3, 1.0)
LINE_BYTES = 100
RUNNER_SAMPLE = 0.05
JOB = "bench-mem"

# What runs in the measured child: shared by both workloads (where the runner's figures come
# from), then the workload's own part.
WATCH = r"""
import json, os, resource, sys, tarfile, io, textwrap, threading, time
from pathlib import Path
sys.path.insert(0, os.environ["BENCH_ROOT"])
from bench.memory import harness
import local_mode
from local_mode import runners

root = Path(sys.argv[1])
sm = local_mode.client("sagemaker", state_dir=str(root / "state"), backend="process")


class RunnerWatch:
    '''The runner's VmHWM (kernel high-water mark: exact) and its tree's sampled peak.'''

    def __init__(self, kind, name):
        self.kind, self.name = kind, name
        self.hwm = 0
        self.pid = None
        self.tree = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        pid = None
        while pid is None and not self.stop.is_set():
            try:
                pid = sm.store.get(self.kind, self.name).runner_pid()
            except Exception:
                pid = None
            if pid is None:
                time.sleep(0.005)
        if pid is None:
            return
        self.pid = pid
        self.tree = harness.TreeRssSampler(pid).start()
        while not self.stop.is_set():
            try:
                with open(f"/proc/{pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            self.hwm = max(self.hwm, int(line.split()[1]) * 1024)
            except OSError:
                break
            self.stop.wait(RUNNER_SAMPLE)

    def figures(self, lifecycle):
        resource = sm.store.get(self.kind, self.name)
        deadline = time.monotonic() + 120
        while not runners.ended(resource, lifecycle):  # the runner's teardown counts too
            if time.monotonic() > deadline:
                raise SystemExit("the runner did not exit")
            time.sleep(0.01)
        job_seconds = time.perf_counter() - STARTED
        self.stop.set()
        self.thread.join()
        if self.tree is not None:
            self.tree.stop()
        while self.pid is not None and os.path.exists(f"/proc/{self.pid}"):  # until reaped
            if time.monotonic() > deadline:
                raise SystemExit("the runner was never reaped")
            time.sleep(0.01)
        usage = resource_usage()
        return {"job_seconds": round(job_seconds, 3), "runner_hwm": self.hwm,
                "runner_tree_peak": self.tree.peak_bytes if self.tree else 0,
                "runner_cpu_s": usage}


def resource_usage():
    # the runner is this process's child (reaped by the client's thread), its own children
    # are reaped by it: RUSAGE_CHILDREN covers the runner and everything it started
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(used.ru_utime + used.ru_stime, 2)
"""

TRANSFORM = WATCH + r"""
MODEL = '''
def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    if isinstance(body, str):
        body = body.encode()
    return b"1\\n" * body.count(b"\\n"), "text/csv"
'''
data = root / "in" / "data.csv"
tar_path = root / "model.tar.gz"
with tarfile.open(tar_path, "w:gz") as tar:
    payload = MODEL.encode()
    info = tarfile.TarInfo("code/inference.py")
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))
sm.create_model(ModelName="count", PrimaryContainer={
    "Image": "optml-bench", "ModelDataUrl": tar_path.as_uri(),
    "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "OPTML_INSTALL_REQUIREMENTS": "false"}})
STARTED = time.perf_counter()
sm.create_transform_job(
    TransformJobName=JOB, ModelName="count", BatchStrategy="MultiRecord", MaxPayloadInMB=6,
    TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                    "S3Uri": data.parent.as_uri()}},
                    "ContentType": "text/csv", "SplitType": "Line"},
    TransformOutput={"S3OutputPath": (root / "out").as_uri(), "AssembleWith": "Line",
                     "Accept": "text/csv"},
    TransformResources={"InstanceType": "local", "InstanceCount": 1})
watch = RunnerWatch("transform-jobs", JOB)
sm.get_waiter("transform_job_completed_or_stopped").wait(
    TransformJobName=JOB, WaiterConfig={"Delay": 0.1, "MaxAttempts": 10**6})
described = sm.describe_transform_job(TransformJobName=JOB)
figures = watch.figures(runners.TRANSFORM)
if described["TransformJobStatus"] != "Completed":
    raise SystemExit(f"transform job: {described['TransformJobStatus']}: "
                     f"{described.get('FailureReason')}")
lines = os.path.getsize(data) // LINE_BYTES
out = (root / "out" / "data.csv.out").stat().st_size
if out != 2 * lines:
    raise SystemExit(f"output is {out} bytes, expected {2 * lines} (one '1\\n' per record)")
print(json.dumps({**figures, "records": lines}))
"""

LOGS = WATCH + r"""
SCRIPT = '''
import os, sys
size = int(os.environ["BENCH_LOG_BYTES"])
lines = []
for n in range(1000):
    text = "step %07d epoch 3 train-loss=0.%06d lr=0.001000" % (n, n)
    if n % 100 == 0:
        text += " val-acc=0.%06d" % n
    lines.append((text + " " + "." * LINE_BYTES)[:LINE_BYTES - 1] + "\\n")
block = "".join(lines).encode()
out = sys.stdout.buffer
written = 0
while written + len(block) <= size:
    out.write(block)
    written += len(block)
out.write(block[:size - written])
out.flush()
'''.replace("LINE_BYTES", str(LINE_BYTES))
nbytes = int(sys.argv[2])
nbytes -= nbytes % LINE_BYTES  # whole lines
code = root / "code"
code.mkdir()
(code / "train.py").write_text(SCRIPT)
STARTED = time.perf_counter()
sm.create_training_job(
    TrainingJobName=JOB, RoleArn="arn:aws:iam::000000000000:role/bench",
    AlgorithmSpecification={"TrainingImage": "optml-bench", "TrainingInputMode": "File",
                            "MetricDefinitions": [
                                {"Name": "train:loss", "Regex": r"train-loss=([0-9.]+)"},
                                {"Name": "validation:acc", "Regex": r"val-acc=([0-9.]+)"}]},
    HyperParameters={"sagemaker_program": "train.py", "sagemaker_submit_directory": str(code)},
    Environment={"BENCH_LOG_BYTES": str(nbytes)},
    OutputDataConfig={"S3OutputPath": (root / "out").as_uri()},
    ResourceConfig={"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
    StoppingCondition={"MaxRuntimeInSeconds": 3600})
watch = RunnerWatch("training-jobs", JOB)
sm.get_waiter("training_job_completed_or_stopped").wait(
    TrainingJobName=JOB, WaiterConfig={"Delay": 0.1, "MaxAttempts": 10**6})
described = sm.describe_training_job(TrainingJobName=JOB)
figures = watch.figures(runners.TRAINING)
if described["TrainingJobStatus"] != "Completed":
    raise SystemExit(f"training job: {described['TrainingJobStatus']}: "
                     f"{described.get('FailureReason')}")
logs = sm.store.get("training-jobs", JOB).path / "logs"
host_logs = [p for p in logs.glob("*.log") if p.name != "all.log"]
logged = sum(p.stat().st_size for p in host_logs)
if logged < nbytes:
    raise SystemExit(f"the host's log holds {logged} bytes of the {nbytes} printed")
finals = {m["MetricName"] for m in described.get("FinalMetricDataList", [])}
if finals != {"train:loss", "validation:acc"}:
    raise SystemExit(f"FinalMetricDataList has {sorted(finals)}")
print(json.dumps({**figures, "logged_bytes": logged,
                  "all_log_bytes": (logs / "all.log").stat().st_size}))
"""


def _child_env() -> dict[str, str]:
    """The user's environment without settings that would redirect local mode, plus the repo
    root on the path (the child imports ``bench.memory`` and ``local_mode`` from it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "OPTML_"))}
    root = str(Path(__file__).resolve().parents[1])
    env["BENCH_ROOT"] = root
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _constants() -> str:
    return f"JOB = {JOB!r}\nLINE_BYTES = {LINE_BYTES}\nRUNNER_SAMPLE = {RUNNER_SAMPLE}\n"


def _stop_leftovers(state: Path) -> None:
    """Stop any runner still alive in ``state`` (a Ctrl-C, a failed child): through local
    mode's own stop path, so it takes down the model server or training program with it."""
    if not state.is_dir():
        return
    from local_mode import runners
    from local_mode.state import StateStore

    store = StateStore(state)
    for kind in ("transform-jobs", "training-jobs"):
        for resource in store.list(kind):
            if resource.runner_pid() is not None:
                runners.stop_runner(resource, 15.0)


def _measure(code: str, root: Path, *args: str) -> tuple[harness.Measurement, dict[str, Any]]:
    try:
        m = harness.measure_command([sys.executable, "-c", _constants() + code, str(root), *args],
                                    env=_child_env(), timeout=1800)
    finally:
        _stop_leftovers(root / "state")
    extra = json.loads(m.stdout.strip().splitlines()[-1])
    return m, extra


def run_transform(sizes: list[float], tmp: Path | None) -> list[harness.Row]:
    rows = []
    for gb in sizes:
        nbytes = harness.gb_to_bytes(gb)
        with harness.scratch_dir("bench_mem_transform_", need_bytes=int(nbytes * 1.05),
                                 base=tmp) as root:
            (root / "in").mkdir()
            written = harness.write_lines_file(root / "in" / "data.csv", nbytes, LINE_BYTES)
            m, extra = _measure(TRANSFORM, root)
        rows.append(harness.Row(f"{gb:g} GB", amount=gb, nbytes=written, measurement=m,
                                extra=extra, work_seconds=extra["job_seconds"]))
        _progress(rows[-1])
    return rows


def run_logs(sizes: list[float], tmp: Path | None) -> list[harness.Row]:
    rows = []
    for gb in sizes:
        nbytes = harness.gb_to_bytes(gb)
        # all.log (prefixed lines) + the host's log + the times sidecar + a series point a line
        with harness.scratch_dir("bench_mem_logs_", need_bytes=int(nbytes * 3.6),
                                 base=tmp) as root:
            m, extra = _measure(LOGS, root, str(nbytes))
        rows.append(harness.Row(f"{gb:g} GB", amount=gb, nbytes=nbytes, measurement=m,
                                extra=extra, work_seconds=extra["job_seconds"]))
        _progress(rows[-1])
    return rows


def _progress(row: harness.Row) -> None:
    print(f"  {row.label}: job {row.seconds:.1f} s, tree peak "
          f"{row.measurement.peak_rss / 1e6:.1f} MB ({harness.load_average()})", flush=True)


def _runner_table(rows: list[harness.Row]) -> dict[str, Any]:
    """The runner's own figures, and whether they are flat too."""
    print(f"{'size':>14}  {'runner VmHWM MB':>15}  {'runner tree MB':>14}  {'CPU s':>7}  "
          f"{'CPU s/GB':>8}")
    for row in rows:
        e = row.extra
        print(f"{row.label:>14}  {e['runner_hwm'] / 1e6:15.1f}  "
              f"{e['runner_tree_peak'] / 1e6:14.1f}  {e['runner_cpu_s']:7.1f}  "
              f"{e['runner_cpu_s'] / row.amount:8.1f}")
    hwms = [row.extra["runner_hwm"] for row in rows]
    ratio = max(hwms) / max(1, min(hwms))
    print(f"runner alone flat within 10 %: max/min VmHWM = {ratio:.3f}  "
          f"[{'PASS' if ratio <= harness.RSS_FLAT_LIMIT else 'FAIL'}]")
    ordered = sorted(rows, key=lambda row: row.amount)
    per_unit = [row.extra["runner_cpu_s"] / row.amount for row in ordered]
    cpu_ratio = per_unit[-1] / per_unit[0] if per_unit[0] > 0 else float("inf")
    linear = abs(cpu_ratio - 1.0) <= harness.TIME_LINEAR_TOLERANCE
    print(f"CPU linear in size (what wall time shows on a quiet machine): CPU s/GB largest vs "
          f"smallest = {cpu_ratio:.3f}  [{'PASS' if linear else 'FAIL'}]")
    return {"runner_hwm_ratio": ratio, "cpu_ratio": cpu_ratio}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_arguments(parser, TRANSFORM_SIZES)
    parser.add_argument("--log-sizes", type=harness.parse_sizes, default=list(LOG_SIZES),
                        help="GB printed by the training job (default 0.1,0.3,1)")
    parser.add_argument("--only", default="transform,logs",
                        help="comma-separated workloads: transform, logs")
    args = parser.parse_args()
    only = {part.strip() for part in args.only.split(",") if part.strip()}
    unknown = only - {"transform", "logs"}
    if unknown:
        parser.error(f"--only: unknown workload(s) {', '.join(sorted(unknown))}")
    harness.install_signal_cleanup()
    print(harness.load_average(), flush=True)
    results = []
    try:
        if "transform" in only:
            print("transform: one file, SplitType=Line, MultiRecord (6 MB batches)", flush=True)
            rows = run_transform(args.sizes, args.tmp)
            result = harness.report("batch transform of one file, Line + MultiRecord", rows)
            result["runner"] = _runner_table(rows)
            results.append(result)
        if "logs" in only:
            print("logs: a training job printing 100-byte lines, MetricDefinitions on every "
                  "line", flush=True)
            rows = run_logs(args.log_sizes, args.tmp)
            result = harness.report("training log + metrics capture", rows)
            result["runner"] = _runner_table(rows)
            results.append(result)
    except KeyboardInterrupt:
        print("interrupted: the job was stopped and its data deleted", file=sys.stderr)
        return 130
    except (harness.WorkloadError, harness.DiskSpaceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    harness.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
