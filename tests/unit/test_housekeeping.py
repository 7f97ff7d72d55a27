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
"""For fixed times only: a record that must look just created (its runner still within its start
grace) takes :func:`fresh`, since a serial run may reach a test minutes after import."""
OLD = NOW - timedelta(days=2)


def fresh() -> datetime:
    return datetime.now(timezone.utc)


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
        "CreationTime": fresh(), "LastModifiedTime": OLD, "Backend": "process"}, {})
    if status == "Failed":
        (resource.path / "runner.started").touch()


def names(client: SageMakerClient, kind: str) -> list[str]:
    return [r.name for r in client.store.list(kind)]


def test_delete_training_job_is_the_services_only_for_ended_jobs(
        client: SageMakerClient) -> None:
    training_job(client, "done", "Completed")
    training_job(client, "busy", "InProgress", created=fresh())
    client.delete_training_job(TrainingJobName="done")
    assert names(client, "training-jobs") == ["busy"]
    with pytest.raises(ResourceInUse, match="busy is InProgress"):
        client.delete_training_job(TrainingJobName="busy")
    with pytest.raises(ResourceNotFound):
        client.delete_training_job(TrainingJobName="done")


def test_remove_refuses_a_running_job_and_names_the_way_out(client: SageMakerClient) -> None:
    training_job(client, "busy", "InProgress", created=fresh())
    with pytest.raises(housekeeping.StillRunning, match="--force"):
        housekeeping.remove(client, "training-jobs", "busy")
    assert names(client, "training-jobs") == ["busy"]


def test_prune_removes_what_is_over_and_keeps_what_is_used(client: SageMakerClient) -> None:
    tags = housekeeping.deployed_tags("broken")
    training_job(client, "old", "Completed")
    training_job(client, "recent", "Failed", created=fresh())
    model(client, "users-own")  # made by a user for a later transform: kept without --all
    model(client, "served")
    config(client, "served-config", "served")
    endpoint(client, "live", "served-config", "InService")
    model(client, "failed-model", tags)
    config(client, "failed-config", "failed-model", tags)
    endpoint(client, "broken", "failed-config", "Failed")

    plan = housekeeping.plan_prune(client, timedelta(hours=1))
    assert {(r.kind, r.name) for r in plan} == {
        ("training-jobs", "old"), ("endpoints", "broken"), ("endpoint-configs", "failed-config"),
        ("models", "failed-model")}
    assert len(names(client, "models")) == 3  # planning removes nothing
    everything = housekeeping.plan_prune(client, timedelta(hours=1), everything=True)
    assert ("models", "users-own") in {(r.kind, r.name) for r in everything}

    assert housekeeping.apply_prune(client, plan) == plan
    assert names(client, "training-jobs") == ["recent"]  # ended within the hour: kept
    assert names(client, "models") == ["served", "users-own"]
    assert names(client, "endpoint-configs") == ["served-config"]
    assert names(client, "endpoints") == ["live"]
    housekeeping.apply_prune(client, housekeeping.plan_prune(client, timedelta(0)))
    assert names(client, "training-jobs") == []


def test_apply_removes_only_what_was_planned_and_is_still_over(client: SageMakerClient) -> None:
    """What a user confirmed is what goes: a job created again under a planned name, a model
    that something started to use, or anything that ended after the plan stays."""
    training_job(client, "again", "Completed")
    training_job(client, "late", "InProgress", created=fresh())
    tags = housekeeping.deployed_tags("gone")
    model(client, "gone", tags)
    plan = housekeeping.plan_prune(client, timedelta(0))
    assert {(r.kind, r.name) for r in plan} == {("training-jobs", "again"), ("models", "gone")}

    client.delete_training_job(TrainingJobName="again")
    training_job(client, "again", "Completed", created=fresh())  # a new job, same name
    client.store.get("training-jobs", "late").update(lambda d: d.update(
        TrainingJobStatus="Completed", TrainingEndTime=fresh()))  # ended after the plan
    config(client, "new-user", "gone")  # the model is used now

    assert housekeeping.apply_prune(client, plan) == []
    assert names(client, "training-jobs") == ["again", "late"]
    assert names(client, "models") == ["gone"]


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

    assert housekeeping.delete_endpoint(client, "e") == [
        ("endpoints", "e"), ("endpoint-configs", "e"), ("models", "e")]
    assert housekeeping.delete_endpoint(client, "u") == [("endpoints", "u")]
    assert names(client, "models") == ["users"]


def test_what_deploy_made_is_kept_while_another_endpoint_uses_it(
        client: SageMakerClient) -> None:
    """An endpoint a user made on deploy's config keeps it; deploying the name again is refused
    naming that endpoint rather than pulling the config from under it."""
    tags = housekeeping.deployed_tags("a")
    model(client, "a", tags)
    config(client, "a", "a", tags)
    endpoint(client, "a", "a", "Failed")
    endpoint(client, "b", "a", "InService")
    assert housekeeping.delete_endpoint(client, "a") == [("endpoints", "a")]
    assert names(client, "endpoint-configs") == ["a"]
    with pytest.raises(ResourceInUse, match="used by endpoint b"):
        housekeeping.release_deployed(client, "a")
    client.store.delete("endpoints", "b")
    assert housekeeping.release_deployed(client, "a") == [("endpoint-configs", "a"),
                                                          ("models", "a")]


def test_stopping_a_job_that_has_just_ended_is_not_an_error(client: SageMakerClient) -> None:
    from local_mode import runners

    training_job(client, "done", "Completed")
    described = housekeeping.stop_and_wait(client, runners.TRAINING, "done", timeout=1)
    assert described["TrainingJobStatus"] == "Completed"


def test_containers_of_an_optml_check_run_have_no_owner_to_prune() -> None:
    from local_mode.docker_engine import CHECK_LABEL, JOB_LABEL, KIND_LABEL

    job = {JOB_LABEL: "fit", KIND_LABEL: "training-job"}
    assert housekeeping._owner(job) == ("training-jobs", "fit")
    assert housekeeping._owner({**job, CHECK_LABEL: "run-1"}) is None
    assert housekeeping._owner({"optml.endpoint": "e"}) == ("endpoints", "e")
    assert housekeeping._owner({JOB_LABEL: "x", KIND_LABEL: "unknown"}) is None


def test_a_docker_job_backend_labels_its_state_directory_only_when_it_has_one() -> None:
    from local_mode.cluster.docker import DockerBackend
    from local_mode.docker_engine import STATE_LABEL

    settings = Settings.from_environ({})
    assert STATE_LABEL not in DockerBackend(settings)._labels()  # optml check's jobs
    assert DockerBackend(settings, state_dir="/s")._labels()[STATE_LABEL] == "/s"


def test_ages_read_as_ps_shows_them() -> None:
    assert [housekeeping.age(NOW - timedelta(seconds=s), NOW) for s in (5, 300, 7200, 172800)] \
        == ["5s", "5m", "2h", "2d"]
