"""Memory bounds of two jobs that stream data through local mode's runner (issue 18, part 5b):
a batch transform of one large file (SplitType Line, MultiRecord) and a training job's log and
metrics capture. Not timed: ``bench/bench_memory_jobs.py`` measures time and growth across
sizes; these check that the runner's peak RSS stays far below what holding the data would take,
on a size small enough for a test (the benchmark's sizes start at 0.5 GB and 0.1 GB).

The runner's peak is its kernel high-water mark (``VmHWM`` in ``/proc/<pid>/status``), read
until the runner exits: exact, however short the peak.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from local_mode import runners
from local_mode.state import ResourceDir
from tests.integration.local_training_support import (
    LocalEnv,
    job_name,
    local_env,
    request,
    write_code,
)
from tests.integration.test_local_endpoints_support import Local, local

__all__ = ["local", "local_env"]

MB = 1_000_000
LINE = b"00000000000000000001,0.123456789,0.123456789,0.123456789,0.123456789,0.1234567,0.1\n"

COUNT = """
    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        if isinstance(body, str):
            body = body.encode()
        return b"1\\n" * body.count(b"\\n"), "text/csv"
"""

PRINTER = """
    import os
    import sys

    size = int(os.environ["PRINT_BYTES"])
    line = b"step 0000042 epoch 3 train-loss=0.250000 lr=0.001 val-acc=0.910000 " + b"." * 32 + b"\\n"
    block = line * 1000
    for _ in range(size // len(block)):
        sys.stdout.buffer.write(block)
    sys.stdout.buffer.flush()
"""


class PeakWatch:
    """The highest VmHWM of the runner of ``resource`` until it exits."""

    def __init__(self, resource: ResourceDir) -> None:
        self.resource = resource
        self.peak = 0
        self.seen = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 120
        pid = None
        while pid is None and time.monotonic() < deadline:
            pid = self.resource.runner_pid()
            time.sleep(0.005)
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/status", encoding="ascii") as status:
                    hwm = [line for line in status if line.startswith("VmHWM:")]
            except OSError:
                return  # gone
            if not hwm:
                return  # exited, not yet reaped
            self.peak = max(self.peak, int(hwm[0].split()[1]) * 1024)
            self.seen = True
            time.sleep(0.05)

    def result(self) -> int:
        self._thread.join(130)
        assert self.seen, "the runner's memory was never read"
        return self.peak


def test_transforming_one_large_file_keeps_the_runner_far_below_its_size(
        local: Local, tmp_path: Path) -> None:
    """250 MB of CSV lines in one file, 6 MB batches: the runner streams the file (a runner
    holding it would peak above 250 MB; it needs about 95 MB whatever the size)."""
    size = 250 * MB
    data = tmp_path / "in" / "big.csv"
    data.parent.mkdir()
    block = LINE * 10_000
    with data.open("wb") as out:
        for _ in range(size // len(block)):
            out.write(block)
    records = data.stat().st_size // len(LINE)
    local.model("count", COUNT)
    local.sm.create_transform_job(
        TransformJobName="big", ModelName="count", BatchStrategy="MultiRecord",
        MaxPayloadInMB=6,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": data.parent.as_uri()}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": (tmp_path / "out").as_uri(), "AssembleWith": "Line"},
        TransformResources={"InstanceType": "local", "InstanceCount": 1})
    resource = local.sm.store.get("transform-jobs", "big")
    watch = PeakWatch(resource)
    local.sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName="big", WaiterConfig={"Delay": 0.1, "MaxAttempts": 1800})
    described = local.sm.describe_transform_job(TransformJobName="big")
    assert described["TransformJobStatus"] == "Completed", described
    peak = watch.result()
    data.unlink()  # the disk is shared
    assert (tmp_path / "out" / "big.csv.out").read_bytes() == b"1\n" * records
    assert peak < 160 * MB, f"the transform runner peaked at {peak / MB:.0f} MB"


def test_capturing_a_large_log_with_metrics_keeps_the_runner_far_below_its_size(
        local_env: LocalEnv, tmp_path: Path) -> None:
    """A job printing 30 MB of lines (300,000), every one matched by a MetricDefinition: the
    runner copies them to the logs and the series without keeping them (keeping the lines, or a
    point per line, would add 40 MB or more to the ~24 MB it needs)."""
    size = 30 * MB
    code = write_code(tmp_path / "code", PRINTER)
    name = job_name("log")
    body = request(name, code, local_env.output_uri, max_runtime=600,
                   Environment={"PRINT_BYTES": str(size)})
    body["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "train:loss", "Regex": r"train-loss=([0-9.]+)"},
        {"Name": "validation:acc", "Regex": r"val-acc=([0-9.]+)"}]
    local_env.client.create_training_job(**body)
    watch = PeakWatch(local_env.client.store.get("training-jobs", name))
    described = local_env.wait(name, timeout=300)
    assert described["TrainingJobStatus"] == "Completed", described
    peak = watch.result()
    assert runners.ended(local_env.client.store.get("training-jobs", name), runners.TRAINING)
    logs = local_env.state_dir / "training-jobs" / name / "logs"
    host_log = next(p for p in logs.glob("*.log") if p.name != "all.log")
    printed = size - size % (100 * 1000)
    assert printed <= host_log.stat().st_size < printed + 4096  # and the toolkit's own lines
    assert host_log.read_bytes()[-200:].endswith(b"val-acc=0.910000 " + b"." * 32 + b"\n")
    finals = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert finals == {"train:loss": 0.25, "validation:acc": 0.91}
    assert peak < 48 * MB, f"the training runner peaked at {peak / MB:.0f} MB"
