"""Scalable targets, scaling policies and scaling activities under ``<state dir>/autoscaling/``.

Two processes write here: the API (RegisterScalableTarget, PutScalingPolicy, ...) and each
endpoint's runner (the activities of the scaling it does). Layout::

    autoscaling/.lock               flock'ed around every read-modify-write
    autoscaling/targets.json        {resource id: target}
    autoscaling/policies.json       {resource id: {policy name: policy}}
    autoscaling/activities.jsonl    one line per activity started, one per activity finished

Files are private (0600 in 0700 directories) and rewritten atomically, so a reader that takes no
lock still sees a whole file. Activities are appended: a started activity is a whole record, a
finished one a line with its new status that the reader folds into it; a torn last line (a writer
killed mid-line) is skipped. The service keeps six weeks of activities; so does this store, which
drops older lines when it rewrites the file (at most once a day of appends).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_mode.autoscaling import wording
from local_mode.autoscaling.decide import Decision
from local_mode.autoscaling.ids import SCALABLE_DIMENSION, SERVICE_NAMESPACE
from local_mode.autoscaling.policies import ScalableTarget, ScalingPolicy, utc
from local_mode.state import (
    append_private,
    make_private_dir,
    open_private,
    read_json,
    write_json_atomic,
)

ACTIVITY_RETENTION = 6 * 7 * 24 * 3600.0
"""Seconds the service keeps scaling activities: six weeks."""
STATUS_CODES = ("Pending", "InProgress", "Successful", "Overridden", "Unfulfilled", "Failed")


@dataclass(frozen=True)
class ScalingActivity:
    """One scaling activity as DescribeScalingActivities shows it (times in epoch seconds)."""

    activity_id: str
    resource_id: str
    description: str
    cause: str
    start: float
    status_code: str
    status_message: str = ""
    end: float | None = None
    desired: int | None = None
    """The instance count it sets (local bookkeeping, not shown)."""

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "ActivityId": self.activity_id, "ServiceNamespace": SERVICE_NAMESPACE,
            "ResourceId": self.resource_id, "ScalableDimension": SCALABLE_DIMENSION,
            "Description": self.description, "Cause": self.cause,
            "StartTime": utc(self.start), "StatusCode": self.status_code}
        if self.end is not None:
            described["EndTime"] = utc(self.end)
        if self.status_message:
            described["StatusMessage"] = self.status_message
        return described


class ScalingStore:
    """The autoscaling state of one state directory (see the module's docstring)."""

    def __init__(self, state_root: Path) -> None:
        self.root = Path(state_root).absolute() / "autoscaling"

    @property
    def targets_file(self) -> Path:
        return self.root / "targets.json"

    @property
    def policies_file(self) -> Path:
        return self.root / "policies.json"

    @property
    def activities_file(self) -> Path:
        return self.root / "activities.jsonl"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """An exclusive lock over the whole autoscaling state (not reentrant: the methods
        below take it themselves, so do not call them while holding it)."""
        make_private_dir(self.root)
        with os.fdopen(open_private(self.root / ".lock", os.O_WRONLY | os.O_APPEND),
                       "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- raw files -----------------------------------------------------------------------------
    def _read(self, path: Path) -> dict[str, Any]:
        try:
            data = read_json(path)
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    # -- targets -----------------------------------------------------------------------------
    def targets(self) -> list[ScalableTarget]:
        """Every registered target, by resource id."""
        data = self._read(self.targets_file)
        return [ScalableTarget.from_json(data[key]) for key in sorted(data)]

    def target(self, resource_id: str) -> ScalableTarget | None:
        found = self._read(self.targets_file).get(resource_id)
        return None if found is None else ScalableTarget.from_json(found)

    def targets_for_endpoint(self, endpoint_name: str) -> list[ScalableTarget]:
        """The registered variants of ``endpoint_name`` (what its runner scales)."""
        return [t for t in self.targets() if t.endpoint_name == endpoint_name]

    def put_target(self, target: ScalableTarget) -> None:
        with self.locked():
            data = self._read(self.targets_file)
            data[target.resource_id] = target.to_json()
            write_json_atomic(self.targets_file, data)

    def delete_target(self, resource_id: str) -> tuple[ScalableTarget, list[ScalingPolicy]] | None:
        """Forget the target and its policies; returns both (None: no such target). The
        policies' alarms are the caller's to delete."""
        with self.locked():
            targets = self._read(self.targets_file)
            found = targets.pop(resource_id, None)
            if found is None:
                return None
            policies = self._read(self.policies_file)
            removed = policies.pop(resource_id, {})
            write_json_atomic(self.policies_file, policies)
            write_json_atomic(self.targets_file, targets)
        return (ScalableTarget.from_json(found),
                [ScalingPolicy.from_json(removed[name]) for name in sorted(removed)])

    # -- policies ----------------------------------------------------------------------------
    def policies(self, resource_id: str | None = None) -> list[ScalingPolicy]:
        """The policies of ``resource_id`` (every target's when None), by resource id and name."""
        data = self._read(self.policies_file)
        keys = sorted(data) if resource_id is None else [resource_id]
        return [ScalingPolicy.from_json(data[key][name]) for key in keys
                for name in sorted(data.get(key, {}))]

    def policy(self, resource_id: str, name: str) -> ScalingPolicy | None:
        found = self._read(self.policies_file).get(resource_id, {}).get(name)
        return None if found is None else ScalingPolicy.from_json(found)

    def put_policy(self, policy: ScalingPolicy) -> bool:
        """Store ``policy`` (replacing one of that name) if its target is still registered;
        False when it is not (deregistered meanwhile)."""
        with self.locked():
            if policy.resource_id not in self._read(self.targets_file):
                return False
            data = self._read(self.policies_file)
            data.setdefault(policy.resource_id, {})[policy.name] = policy.to_json()
            write_json_atomic(self.policies_file, data)
        return True

    def delete_policy(self, resource_id: str, name: str) -> ScalingPolicy | None:
        """Forget a policy; returns it (None: no such policy)."""
        with self.locked():
            data = self._read(self.policies_file)
            found = data.get(resource_id, {}).pop(name, None)
            if found is None:
                return None
            if not data[resource_id]:
                del data[resource_id]
            write_json_atomic(self.policies_file, data)
        return ScalingPolicy.from_json(found)

    # -- activities --------------------------------------------------------------------------
    def start_activity(self, target: ScalableTarget, decision: Decision, now: float) -> str:
        """Record the scaling ``decision`` starts on ``target`` (InProgress); its id."""
        activity = ScalingActivity(str(uuid.uuid4()), target.resource_id, decision.description,
                                   decision.cause, now, "InProgress",
                                   wording.waiting(decision.desired), desired=decision.desired)
        self._append({"ActivityId": activity.activity_id, "ResourceId": activity.resource_id,
                      "Description": activity.description, "Cause": activity.cause,
                      "StartTime": now, "StatusCode": activity.status_code,
                      "StatusMessage": activity.status_message, "Desired": decision.desired},
                     now)
        return activity.activity_id

    def finish_activity(self, resource_id: str, activity_id: str, status_code: str,
                        status_message: str, now: float) -> None:
        """Record how an activity ended (Successful, Failed, ...) with the service's
        StatusMessage (:mod:`local_mode.autoscaling.wording` has them)."""
        if status_code not in STATUS_CODES:
            raise ValueError(f"status code must be one of {STATUS_CODES}, got {status_code!r}")
        self._append({"ActivityId": activity_id, "ResourceId": resource_id,
                      "StatusCode": status_code, "StatusMessage": status_message, "EndTime": now,
                      "Update": True}, now)

    def activities(self, resource_id: str | None = None,
                   now: float | None = None) -> list[ScalingActivity]:
        """The activities of ``resource_id`` (all when None), newest first; those started more
        than six weeks before ``now`` are left out."""
        merged: dict[str, dict[str, Any]] = {}
        for record in self._lines():
            ident = record.get("ActivityId")
            if not isinstance(ident, str):
                continue
            if record.get("Update"):
                if ident in merged:
                    merged[ident].update({k: v for k, v in record.items() if k != "Update"})
            else:
                merged[ident] = dict(record)
        found = [_activity(r) for r in merged.values()
                 if resource_id is None or r.get("ResourceId") == resource_id]
        if now is not None:
            found = [a for a in found if a.start >= now - ACTIVITY_RETENTION]
        return sorted(found, key=lambda a: (a.start, a.activity_id), reverse=True)

    def _lines(self) -> Iterator[dict[str, Any]]:
        try:
            with self.activities_file.open("rb") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue  # a torn line: its writer was killed mid-write
                    if isinstance(record, dict):
                        yield record
        except FileNotFoundError:
            return

    def _append(self, record: dict[str, Any], now: float) -> None:
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        with self.locked():
            self._prune(now)
            with append_private(self.activities_file) as handle:
                handle.write(line)

    def _prune(self, now: float) -> None:
        """Rewrite the file without activities older than the retention, once it holds any
        (checked at most once a day: the first line is the oldest)."""
        marker = self.root / ".pruned"
        try:
            if now - marker.stat().st_mtime < 24 * 3600:
                return
        except FileNotFoundError:
            pass
        records = list(self._lines())
        started = {r["ActivityId"]: float(r.get("StartTime", now)) for r in records
                   if not r.get("Update") and isinstance(r.get("ActivityId"), str)}
        kept = [r for r in records
                if started.get(r.get("ActivityId"), now) >= now - ACTIVITY_RETENTION]
        if len(kept) != len(records):
            tmp = self.activities_file.with_suffix(".jsonl.tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            with append_private(tmp) as handle:
                handle.writelines(json.dumps(r, separators=(",", ":")).encode() + b"\n"
                                  for r in kept)
            os.replace(tmp, self.activities_file)
        make_private_dir(self.root)
        with append_private(marker):
            pass
        os.utime(marker, (now, now))


def _activity(record: dict[str, Any]) -> ScalingActivity:
    end = record.get("EndTime")
    desired = record.get("Desired")
    return ScalingActivity(str(record["ActivityId"]), str(record.get("ResourceId", "")),
                           str(record.get("Description", "")), str(record.get("Cause", "")),
                           float(record.get("StartTime", 0.0)),
                           str(record.get("StatusCode", "InProgress")),
                           str(record.get("StatusMessage", "")),
                           None if end is None else float(end),
                           None if desired is None else int(desired))
