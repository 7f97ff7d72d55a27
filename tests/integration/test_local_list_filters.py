"""Every filter botocore's model defines for the List* operations is honoured, not just
validated. The operations share one implementation (:mod:`local_mode.listing`);
ListTrainingJobs has every filter any of them has, so each filter is tested on real jobs there,
and the defaults that differ per operation (sort order) on ListModels."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from local_mode.listing import HANDLED, unhandled_members
from local_mode.state import now
from tests.integration.local_training_support import (
    LocalEnv,
    channel,
    make_env,
    request,
    stop_everything,
    write_code,
)

PLAN = "arn:aws:sagemaker:local:000000000000:training-plan/my-plan"


@dataclass
class Jobs:
    env: LocalEnv
    between: datetime
    """After the first job ended, before the second was created."""

    def names(self, **params: Any) -> list[str]:
        response = self.env.client.list_training_jobs(**params)
        return [s["TrainingJobName"] for s in response["TrainingJobSummaries"]]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobs]:
    root = tmp_path_factory.mktemp("filters")
    env = make_env(root)
    data = root / "data"
    data.mkdir()
    (data / "x.csv").write_text("1\n")
    ok = write_code(root / "ok", "print('fine')\n")
    bad = write_code(root / "bad", "raise SystemExit(3)\n")

    def create(name: str, code: Path, **extra: Any) -> None:
        env.client.create_training_job(**request(
            name, code, env.output_uri, channels=[channel("train", data.as_uri())], **extra))
        env.wait(name)

    try:
        create("flt-alpha", ok)
        time.sleep(0.01)
        between = now()
        time.sleep(0.01)
        create("flt-beta", bad)
        create("other-gamma", ok, ResourceConfig={
            "InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1,
            "TrainingPlanArn": PLAN})
        yield Jobs(env, between)
    finally:
        stop_everything(env)


def test_the_jobs_are_as_the_filters_expect(jobs: Jobs) -> None:
    statuses = {s["TrainingJobName"]: s["TrainingJobStatus"] for s in
                jobs.env.client.list_training_jobs()["TrainingJobSummaries"]}
    assert statuses == {"flt-alpha": "Completed", "flt-beta": "Failed",
                        "other-gamma": "Completed"}


CASES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "NameContains": ({"NameContains": "FLT"}, ["flt-alpha", "flt-beta"]),
    "StatusEquals": ({"StatusEquals": "Failed"}, ["flt-beta"]),
    "WarmPoolStatusEquals": ({"WarmPoolStatusEquals": "Available"}, []),  # no warm pools here
    "TrainingPlanArnEquals": ({"TrainingPlanArnEquals": PLAN}, ["other-gamma"]),
    "SortBy": ({"SortBy": "Status"}, ["flt-alpha", "other-gamma", "flt-beta"]),
    "SortOrder": ({"SortOrder": "Descending"}, ["other-gamma", "flt-beta", "flt-alpha"]),
    "MaxResults": ({"MaxResults": 2}, ["flt-alpha", "flt-beta"]),
}
"""Filter -> (params, the names listed). The time filters need the fixture's time, below."""


@pytest.mark.parametrize("member", sorted(CASES))
def test_a_filter(jobs: Jobs, member: str) -> None:
    params, expected = CASES[member]
    assert jobs.names(**params) == expected


@pytest.mark.parametrize(("member", "expected"), [
    ("CreationTimeAfter", ["flt-beta", "other-gamma"]),
    ("CreationTimeBefore", ["flt-alpha"]),
    ("LastModifiedTimeAfter", ["flt-beta", "other-gamma"]),
    ("LastModifiedTimeBefore", ["flt-alpha"]),
])
def test_a_time_filter(jobs: Jobs, member: str, expected: list[str]) -> None:
    assert jobs.names(**{member: jobs.between}) == expected
    # boto3 takes a naive datetime as UTC, and epoch seconds too
    naive = jobs.between.astimezone(timezone.utc).replace(tzinfo=None)
    assert jobs.names(**{member: naive}) == expected
    assert jobs.names(**{member: jobs.between.timestamp()}) == expected


def test_next_token_walks_every_page_once(jobs: Jobs) -> None:
    seen, token = [], None
    while True:
        page = jobs.env.client.list_training_jobs(
            MaxResults=1, SortBy="Name", **({"NextToken": token} if token else {}))
        seen += [s["TrainingJobName"] for s in page["TrainingJobSummaries"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == ["flt-alpha", "flt-beta", "other-gamma"]


def test_filters_combine(jobs: Jobs) -> None:
    assert jobs.names(NameContains="flt", StatusEquals="Completed") == ["flt-alpha"]
    assert jobs.names(CreationTimeAfter=jobs.between, SortBy="Name",
                      SortOrder="Descending") == ["other-gamma", "flt-beta"]


def test_every_filter_here_is_one_the_model_has_and_every_one_is_tested(jobs: Jobs) -> None:
    members = set(jobs.env.client.meta.service_model.operation_model(
        "ListTrainingJobs").input_shape.members)
    tested = set(CASES) | {"CreationTimeAfter", "CreationTimeBefore", "LastModifiedTimeAfter",
                           "LastModifiedTimeBefore", "NextToken"}
    assert tested == members
    assert members <= HANDLED and unhandled_members("ListTrainingJobs") == []
    for operation in ("ListModels", "ListEndpointConfigs", "ListEndpoints",
                      "ListTransformJobs"):  # the others' filters are a subset
        assert set(jobs.env.client.meta.service_model.operation_model(
            operation).input_shape.members) <= members


def test_list_models_defaults_to_newest_first(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"x")
    for name in ("m-1", "m-2", "m-3"):
        env.client.create_model(ModelName=name, PrimaryContainer={
            "Image": "img", "ModelDataUrl": artifact.as_uri()})
    listed = env.client.list_models()["Models"]
    assert [m["ModelName"] for m in listed] == ["m-3", "m-2", "m-1"]  # Descending
    after = listed[1]["CreationTime"]
    assert [m["ModelName"] for m in env.client.list_models(
        CreationTimeAfter=after, SortOrder="Ascending")["Models"]] == ["m-3"]
