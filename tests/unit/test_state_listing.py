"""Listing while something is deleted: a resource may vanish between the store listing it and its
description being read (a concurrent ``rm``, ``prune`` or Delete operation). Every List
operation reads through :meth:`StateStore.descriptions`, which leaves such a resource out rather
than failing with FileNotFoundError. Real stores and the real local clients throughout; the
race is made certain by deleting the resource inside ``describe``, just before it reads."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import local_mode
from local_mode.cloudwatch_logs import LogsClient
from local_mode.errors import ResourceNotFound
from local_mode.sagemaker import SageMakerClient
from local_mode.state import ResourceDir, StateStore
from toolkit.settings import Settings

CREATED = datetime(2024, 5, 1, tzinfo=timezone.utc)
NAMES = ("first", "gone", "last")


def _description(kind: str, name: str, index: int) -> dict[str, Any]:
    """What the runner or Create operation leaves for a resource of ``kind``."""
    created = CREATED + timedelta(minutes=index)
    prefix = {"training-jobs": "TrainingJob", "processing-jobs": "ProcessingJob",
              "transform-jobs": "TransformJob", "models": "Model",
              "endpoint-configs": "EndpointConfig", "endpoints": "Endpoint"}[kind]
    arn_kind = kind[:-1]
    description: dict[str, Any] = {
        f"{prefix}Name": name, f"{prefix}Arn": f"arn:aws:sagemaker:us-east-1:123456789012:"
                                              f"{arn_kind}/{name}",
        "CreationTime": created, "LastModifiedTime": created}
    if kind == "endpoints":
        description["EndpointStatus"] = "InService"
    elif kind.endswith("-jobs"):
        description[f"{prefix}Status"] = "Completed"
    return description


def _populate(store: StateStore, kind: str) -> None:
    for index, name in enumerate(NAMES):
        store.create(kind, name, _description(kind, name, index), {})


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state")


@pytest.fixture
def delete_gone_when_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read of the resource ``gone``'s description deletes it first, as a concurrent
    ``rm`` would between the listing and the read; returns the paths deleted so."""
    deleted: list[str] = []
    read = ResourceDir.describe

    def describe(self: ResourceDir) -> dict[str, Any]:
        if self.name == "gone" and self.path.exists():
            shutil.rmtree(self.path)
            deleted.append(str(self.path))
        return read(self)

    monkeypatch.setattr(ResourceDir, "describe", describe)
    return deleted


def test_descriptions_leaves_out_what_vanished_after_listing(
        store: StateStore, delete_gone_when_read: list[str]) -> None:
    _populate(store, "models")
    assert [r.name for r in store.list("models")] == list(NAMES)

    described = store.descriptions("models")

    assert [(r.name, d["ModelName"]) for r, d in described] == [("first", "first"),
                                                                 ("last", "last")]
    assert len(delete_gone_when_read) == 1  # the race did happen


def test_descriptions_of_a_kind_never_created_is_empty(store: StateStore) -> None:
    assert store.descriptions("endpoints") == []


LIST_OPERATIONS: list[tuple[str, Callable[[SageMakerClient], list[dict[str, Any]]], str]] = [
    ("models", lambda c: c.list_models()["Models"], "ModelName"),
    ("endpoint-configs", lambda c: c.list_endpoint_configs()["EndpointConfigs"],
     "EndpointConfigName"),
    ("endpoints", lambda c: c.list_endpoints()["Endpoints"], "EndpointName"),
    ("training-jobs", lambda c: c.list_training_jobs()["TrainingJobSummaries"],
     "TrainingJobName"),
    ("processing-jobs", lambda c: c.list_processing_jobs()["ProcessingJobSummaries"],
     "ProcessingJobName"),
    ("transform-jobs", lambda c: c.list_transform_jobs()["TransformJobSummaries"],
     "TransformJobName"),
]


@pytest.fixture
def client(tmp_path: Path) -> SageMakerClient:
    settings = Settings.from_environ({"OPTML_LOCAL_BACKEND": "process"})
    return SageMakerClient(settings, state_dir=tmp_path / "state", region_name="us-east-1")


@pytest.mark.parametrize(("kind", "list_them", "name_key"), LIST_OPERATIONS,
                         ids=[kind for kind, _, _ in LIST_OPERATIONS])
def test_every_list_operation_leaves_out_a_resource_deleted_while_listing(
        client: SageMakerClient, delete_gone_when_read: list[str], kind: str,
        list_them: Callable[[SageMakerClient], list[dict[str, Any]]], name_key: str) -> None:
    _populate(client.store, kind)

    listed = list_them(client)

    assert sorted(item[name_key] for item in listed) == ["first", "last"]  # in any order
    assert len(delete_gone_when_read) == 1


def test_log_groups_leave_out_an_endpoint_deleted_while_listing(
        store: StateStore, delete_gone_when_read: list[str]) -> None:
    _populate(store, "endpoints")
    logs = local_mode.client("logs", state_dir=store.root)
    assert isinstance(logs, LogsClient)

    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]

    assert groups == ["/aws/sagemaker/Endpoints/first", "/aws/sagemaker/Endpoints/last"]
    assert delete_gone_when_read


def test_list_models_while_another_thread_creates_and_deletes_models(
        client: SageMakerClient) -> None:
    """The reported failure: ListModels raised FileNotFoundError in about one run in twelve
    while models came and went. A bounded number of rounds on both sides."""
    _populate(client.store, "models")
    stop = threading.Event()
    churned: list[int] = []
    failures: list[BaseException] = []

    def churn() -> None:
        try:
            rounds = 0
            while not stop.is_set() and rounds < 2000:
                name = f"churn-{rounds % 4}"
                client.store.create("models", name, _description("models", name, 9), {})
                client.store.delete("models", name)
                rounds += 1
            churned.append(rounds)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread, which fails on it
            failures.append(error)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(300):
            names = [m["ModelName"] for m in client.list_models(MaxResults=100)["Models"]]
            assert {"first", "gone", "last"} <= set(names)
            assert all(n in NAMES or n.startswith("churn-") for n in names)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not failures
    assert churned and churned[0] > 0


def test_list_tags_of_a_resource_deleted_while_reading_is_not_found(
        client: SageMakerClient, delete_gone_when_read: list[str]) -> None:
    _populate(client.store, "models")
    arn = f"arn:aws:sagemaker:us-east-1:{client.account_id}:model/gone"

    with pytest.raises(ResourceNotFound, match="not found"):
        client.list_tags(ResourceArn=arn)
    assert delete_gone_when_read
