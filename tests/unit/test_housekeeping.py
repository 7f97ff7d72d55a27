"""local_mode.housekeeping on a real state store and the real local client (no runner is
started: the records are written as runners leave them)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from local_mode import housekeeping
from local_mode.errors import ResourceInUse, ResourceNotFound
from local_mode.sagemaker import SageMakerClient
from toolkit.settings import Settings

NOW = datetime.now(timezone.utc)
OLD = NOW - timedelta(days=2)


@pytest.fixture
def client(tmp_path: Path) -> SageMakerClient:
    settings = Settings.from_environ({"OPTML_LOCAL_BACKEND": "process"})
    return SageMakerClient(settings, state_dir=tmp_path / "state", region_name="us-east-1")


def training_job(client: SageMakerClient, name: str, status: str,
                 created: datetime = OLD) -> None:
    ended = {"TrainingEndTime": created} if status != "InProgress" else {}
    client.store.create("training-jobs", name, {
        "TrainingJobName": name, "TrainingJobStatus": status, "SecondaryStatus": status,
        "CreationTime": created, **ended}, {})


def model(client: SageMakerClient, name: str, tags: list[dict[str, str]] | None = None) -> None:
    client.store.create("models", name, {"ModelName": name, "CreationTime": OLD},
                        {"ModelName": name, **({"Tags": tags} if tags else {})})


def config(client: SageMakerClient, name: str, model_name: str,
           tags: list[dict[str, str]] | None = None) -> None:
    client.store.create("endpoint-configs", name, {
        "EndpointConfigName": name, "CreationTime": OLD,
        "ProductionVariants": [{"VariantName": "v", "ModelName": model_name}]},
        {"EndpointConfigName": name, **({"Tags": tags} if tags else {})})


def endpoint(client: SageMakerClient, name: str, config_name: str, status: str) -> None:
    """An endpoint as its runner leaves it; a Failed one's runner has started and exited."""
    resource = client.store.create("endpoints", name, {
        "EndpointName": name, "EndpointConfigName": config_name, "EndpointStatus": status,
        "CreationTime": NOW, "LastModifiedTime": OLD, "Backend": "process"}, {})
    if status == "Failed":
        (resource.path / "runner.started").touch()


def names(client: SageMakerClient, kind: str) -> list[str]:
    return [r.name for r in client.store.list(kind)]


def test_delete_training_job_is_the_services_only_for_ended_jobs(
        client: SageMakerClient) -> None:
    training_job(client, "done", "Completed")
    training_job(client, "busy", "InProgress", created=NOW)
    client.delete_training_job(TrainingJobName="done")
    assert names(client, "training-jobs") == ["busy"]
    with pytest.raises(ResourceInUse, match="busy is InProgress"):
        client.delete_training_job(TrainingJobName="busy")
    with pytest.raises(ResourceNotFound):
        client.delete_training_job(TrainingJobName="done")


def test_remove_refuses_a_running_job_and_names_the_way_out(client: SageMakerClient) -> None:
    training_job(client, "busy", "InProgress", created=NOW)
    with pytest.raises(housekeeping.StillRunning, match="--force"):
        housekeeping.remove(client, "training-jobs", "busy")
    assert names(client, "training-jobs") == ["busy"]


def test_prune_removes_what_is_over_and_keeps_what_is_used(client: SageMakerClient) -> None:
    training_job(client, "old", "Completed")
    training_job(client, "recent", "Failed", created=NOW)
    model(client, "orphan")
    model(client, "served")
    config(client, "served-config", "served")
    endpoint(client, "live", "served-config", "InService")
    model(client, "failed-model")
    config(client, "failed-config", "failed-model")
    endpoint(client, "broken", "failed-config", "Failed")

    plan = housekeeping.prune(client, timedelta(hours=1), dry_run=True)
    assert {(r.kind, r.name) for r in plan} == {
        ("training-jobs", "old"), ("endpoints", "broken"), ("endpoint-configs", "failed-config"),
        ("models", "orphan"), ("models", "failed-model")}
    assert len(names(client, "models")) == 3  # a dry run removes nothing

    housekeeping.prune(client, timedelta(hours=1))
    assert names(client, "training-jobs") == ["recent"]  # ended within the hour: kept
    assert names(client, "models") == ["served"]
    assert names(client, "endpoint-configs") == ["served-config"]
    assert names(client, "endpoints") == ["live"]
    housekeeping.prune(client, timedelta(0))
    assert names(client, "training-jobs") == []


def test_deleting_an_endpoint_deletes_what_deploy_made_for_it_only(
        client: SageMakerClient) -> None:
    tags = housekeeping.deployed_tags("e")
    model(client, "e", tags)
    config(client, "e", "e", tags)
    endpoint(client, "e", "e", "Failed")
    model(client, "users")
    config(client, "users", "users")
    endpoint(client, "u", "users", "Failed")
    assert housekeeping.deployed_for(client, "models", "e") == "e"
    assert housekeeping.deployed_for(client, "models", "users") is None

    assert housekeeping.delete_endpoint(client, "e") == ["endpoint e", "endpoint config e",
                                                         "model e"]
    assert housekeeping.delete_endpoint(client, "u") == ["endpoint u"]
    assert names(client, "models") == ["users"]
