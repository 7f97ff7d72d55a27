"""ScalingStore: targets, policies and activities in private files, read back whole; activities
fold their updates, skip a torn line, and go after six weeks."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from local_mode.autoscaling.decide import Decision
from local_mode.autoscaling.policies import (
    ScalableTarget,
    SuspendedState,
    make_policy,
)
from local_mode.autoscaling.store import ACTIVITY_RETENTION, ScalingStore

NOW = 1_700_000_000.0


def target(resource: str = "endpoint/ep/variant/v", low: int = 1, high: int = 3) -> ScalableTarget:
    return ScalableTarget(resource, low, high, f"arn:t:{resource}", "arn:role", NOW,
                          SuspendedState(dynamic_in=True), (("team", "ml"),))


def test_targets_round_trip_and_are_found_by_endpoint(tmp_path: Path) -> None:
    store = ScalingStore(tmp_path)
    store.put_target(target())
    store.put_target(target("endpoint/ep/variant/w"))
    store.put_target(target("endpoint/other/variant/v"))
    assert store.target("endpoint/ep/variant/v") == target()
    assert [t.variant_name for t in store.targets_for_endpoint("ep")] == ["v", "w"]
    assert store.targets_for_endpoint("missing") == []


def test_deleting_a_target_returns_and_forgets_its_policies(tmp_path: Path) -> None:
    store = ScalingStore(tmp_path)
    store.put_target(target())
    store.put_target(target("endpoint/ep/variant/w"))
    policy = make_policy("p", "endpoint/ep/variant/v", "arn:p", "StepScaling", NOW, {
        "AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
            {"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}]})
    assert store.put_policy(policy)
    assert store.put_policy(make_policy("q", "endpoint/ep/variant/w", "arn:q", "StepScaling",
                                        NOW, json.loads(policy.configuration)))
    assert store.policies("endpoint/ep/variant/v") == [policy]
    removed = store.delete_target("endpoint/ep/variant/v")
    assert removed is not None and removed[1] == [policy]
    assert store.policies() == [store.policy("endpoint/ep/variant/w", "q")]
    assert store.delete_target("endpoint/ep/variant/v") is None
    # a policy for a target no longer registered is not stored
    assert not store.put_policy(policy)


def test_files_are_private(tmp_path: Path) -> None:
    store = ScalingStore(tmp_path)
    store.put_target(target())
    store.start_activity(target(), Decision(2, "c", "d", None, "bounds"), NOW)
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    for path in (store.targets_file, store.activities_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_activities_fold_updates_newest_first(tmp_path: Path) -> None:
    store = ScalingStore(tmp_path)
    first = store.start_activity(target(), Decision(2, "c1", "d1", "p", "out"), NOW)
    second = store.start_activity(target("endpoint/ep/variant/w"),
                                  Decision(1, "c2", "d2", None, "bounds"), NOW + 10)
    store.finish_activity("endpoint/ep/variant/v", first, "Successful", "done", NOW + 5)
    found = store.activities()
    assert [a.activity_id for a in found] == [second, first]
    assert (found[1].status_code, found[1].status_message, found[1].end, found[1].desired) == (
        "Successful", "done", NOW + 5, 2)
    assert found[0].status_code == "InProgress" and found[0].end is None
    assert [a.activity_id for a in store.activities("endpoint/ep/variant/v")] == [first]


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    store = ScalingStore(tmp_path)
    kept = store.start_activity(target(), Decision(2, "c", "d", None, "bounds"), NOW)
    with store.activities_file.open("ab") as handle:
        handle.write(b'{"ActivityId": "torn", "Reso')
    assert [a.activity_id for a in store.activities()] == [kept]


def test_activities_older_than_six_weeks_go(tmp_path: Path) -> None:
    store = ScalingStore(tmp_path)
    old = store.start_activity(target(), Decision(2, "c", "d", None, "bounds"), NOW)
    store.finish_activity("endpoint/ep/variant/v", old, "Successful", "ok", NOW + 1)
    later = NOW + ACTIVITY_RETENTION + 10
    assert store.activities(now=later) == []
    new = store.start_activity(target(), Decision(3, "c", "d", None, "bounds"), later)
    assert [a.activity_id for a in store.activities()] == [new]  # pruned from the file too
    assert old.encode() not in store.activities_file.read_bytes()
