"""The API and endpoint runners write the autoscaling state at once: several processes register
targets, put policies and record activities together, and nothing written is lost or torn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from local_mode.autoscaling.store import ScalingStore

WRITER = """
import sys
from local_mode.autoscaling.decide import Decision
from local_mode.autoscaling.policies import ScalableTarget, make_policy
from local_mode.autoscaling.store import ScalingStore

root, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = ScalingStore(root)
for index in range(count):
    resource = f"endpoint/e{worker}/variant/v{index}"
    target = ScalableTarget(resource, 1, 3, f"arn:{resource}", "arn:role", 1.0)
    store.put_target(target)
    store.put_policy(make_policy("p", resource, f"arn:p:{resource}", "StepScaling", 1.0, {
        "AdjustmentType": "ChangeInCapacity",
        "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}]}))
    started = store.start_activity(target, Decision(2, "c", "d", None, "bounds"),
                                   1_700_000_000.0 + index)
    store.finish_activity(resource, started, "Successful", f"w{worker}", 1_700_000_001.0 + index)
"""
WORKERS, EACH = 6, 25


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(worker),
                                   str(EACH)], cwd=repo)
                 for worker in range(WORKERS)]
    assert [process.wait(timeout=120) for process in processes] == [0] * WORKERS
    store = ScalingStore(tmp_path)
    assert len(store.targets()) == WORKERS * EACH
    assert len(store.policies()) == WORKERS * EACH
    activities = store.activities()
    assert len(activities) == WORKERS * EACH
    assert {a.status_code for a in activities} == {"Successful"}
    assert sorted(a.resource_id for a in activities) == sorted(
        f"endpoint/e{w}/variant/v{i}" for w in range(WORKERS) for i in range(EACH))
