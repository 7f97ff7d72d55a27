"""``optml local cost`` through click's runner, on a state directory holding the records the
runners leave: ended jobs of each kind, a running endpoint with its capacity log."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from local_mode.cli import local
from local_mode.cli.errors import EXIT_FAILED, EXIT_INVALID
from local_mode.endpoints.capacity import CapacityLog, capacity_file
from local_mode.pricing.table import Price, load_prices
from local_mode.state import StateStore, now

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
ARN = "arn:aws:sagemaker:{region}:000000000000:{kind}/{name}"


def hourly(usage: str, instance_type: str, region: str = "us-east-1") -> Decimal:
    price = load_prices().instance_price(region, usage, instance_type)
    assert isinstance(price, Price)
    return price.value


def storage() -> Decimal:
    price = load_prices().storage_price("us-east-1")
    assert isinstance(price, Price)
    return price.value


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """One of each kind, as their runners leave them."""
    root = tmp_path / "state"
    store = StateStore(root)
    # train-spot: 90 s of attempts, recorded as the runner does: 90 x (1 - 0.7) = 27 billable
    for name, spot, billable in (("train-a", False, 100), ("train-spot", True, 27)):
        store.create("training-jobs", name, {
            "TrainingJobName": name, "TrainingJobStatus": "Completed",
            "TrainingJobArn": ARN.format(region="local", kind="training-job", name=name),
            "SecondaryStatus": "Completed", "CreationTime": T0, "LastModifiedTime": T0,
            "TrainingStartTime": T0, "TrainingEndTime": T0 + timedelta(seconds=100),
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2,
                               "VolumeSizeInGB": 10},
            "EnableManagedSpotTraining": spot, "TrainingTimeInSeconds": 100,
            "BillableTimeInSeconds": billable}, {"TrainingJobName": name})
    store.create("processing-jobs", "proc", {
        "ProcessingJobName": "proc", "ProcessingJobStatus": "Completed",
        "ProcessingJobArn": ARN.format(region="us-west-2", kind="processing-job", name="proc"),
        "CreationTime": T0, "LastModifiedTime": T0, "ProcessingStartTime": T0,
        "ProcessingEndTime": T0 + timedelta(seconds=30),
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.c5.xlarge",
                                                  "InstanceCount": 1, "VolumeSizeInGB": 1}}},
        {"ProcessingJobName": "proc"})
    store.create("transform-jobs", "batch", {
        "TransformJobName": "batch", "TransformJobStatus": "Completed", "CreationTime": T0,
        "LastModifiedTime": T0, "TransformStartTime": T0,
        "TransformEndTime": T0 + timedelta(seconds=20),
        "TransformResources": {"InstanceType": "local", "InstanceCount": 1}},
        {"TransformJobName": "batch"})
    store.create("endpoint-configs", "ep-config", {
        "EndpointConfigName": "ep-config", "CreationTime": T0, "ProductionVariants": [
            {"VariantName": "AllTraffic", "InstanceType": "ml.g4dn.xlarge",
             "InitialInstanceCount": 1}]}, {"EndpointConfigName": "ep-config"})
    created = now() - timedelta(minutes=10)
    endpoint = store.create("endpoints", "ep", {
        "EndpointName": "ep", "EndpointStatus": "InService", "EndpointConfigName": "ep-config",
        "EndpointArn": ARN.format(region="local", kind="endpoint", name="ep"),
        "CreationTime": created, "LastModifiedTime": created,
        "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 3}]},
        {"EndpointName": "ep"})
    # the endpoint's runner is alive (this process stands in for it): it stays InService
    endpoint.pid_file.write_text(str(os.getpid()))
    log = CapacityLog(capacity_file(endpoint))
    log.record("AllTraffic", "ml.g4dn.xlarge", 1, created.timestamp())
    log.record("AllTraffic", "ml.g4dn.xlarge", 3, created.timestamp() + 60)
    return root


def invoke(state: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(local, ["cost", *args, "--state-dir", str(state)],
                              catch_exceptions=False, env=env)


def as_json(state: Path, *args: str) -> dict[str, Any]:
    result = invoke(state, *args, "-o", "json")
    assert result.exit_code == 0, result.output
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["Name"]: r for r in report["Resources"]}


def test_every_resource_with_its_cost_and_the_totals(state: Path) -> None:
    report = as_json(state)
    found = by_name(report)
    assert [(r["Kind"], r["Name"]) for r in report["Resources"]] == [
        ("training-jobs", "train-a"), ("training-jobs", "train-spot"),
        ("processing-jobs", "proc"), ("transform-jobs", "batch"), ("endpoints", "ep")]

    m5 = hourly("training", "ml.m5.xlarge")
    train = found["train-a"]
    assert train["InstanceCost"] == float(m5 * 100 * 2 / 3600)
    assert train["StorageCost"] == float(storage() * 10 * 2 * 100 / (730 * 3600))
    assert train["Cost"] == float(m5 * 100 * 2 / 3600 + storage() * 10 * 2 * 100 / (730 * 3600))
    assert (train["Region"], train["RegionFrom"]) == ("us-east-1", "default")
    assert train["Charges"][0]["Price"] == float(m5)
    assert train["Charges"][0]["PriceSource"].startswith("packaged prices.json")

    spot = found["train-spot"]["Spot"]  # billed as recorded: no second discount
    assert (spot["TrainingTimeInSeconds"], spot["BillableTimeInSeconds"]) == (100.0, 27.0)
    assert spot["Discount"] == 0.7 and spot["BilledSeconds"] == 27.0
    assert spot["DiscountSource"].startswith("packaged prices.json")
    assert found["train-spot"]["Charges"][0]["InstanceSeconds"] == 27.0 * 2
    assert spot["OnDemandCost"] == float(m5 * 100 * 2 / 3600)
    assert spot["BillableCost"] == float(m5 * 27 * 2 / 3600)
    assert spot["Savings"] == 0.73

    proc = found["proc"]  # priced in its ARN's region
    assert (proc["Region"], proc["RegionFrom"]) == ("us-west-2", "ARN")
    assert proc["InstanceCost"] == float(hourly("processing", "ml.c5.xlarge", "us-west-2")
                                         * 30 / 3600)

    batch = found["batch"]  # a local instance: unknown, not 0
    assert batch["Cost"] is None and batch["InstanceCost"] is None
    assert "runs on this machine" in batch["Unknown"][0]

    ep = found["ep"]
    g4 = hourly("hosting", "ml.g4dn.xlarge")
    assert ep["Running"] and ep["CostPerHour"] == float(g4 * 3)
    assert ep["CurrentInstances"] == [{"VariantName": "AllTraffic",
                                       "InstanceType": "ml.g4dn.xlarge", "InstanceCount": 3,
                                       "CostPerHour": float(g4 * 3)}]
    # 60 s of one instance, then three until now (about 9 minutes)
    seconds = ep["Charges"][0]["InstanceSeconds"]
    assert 60 + 3 * 530 < seconds < 60 + 3 * 560
    assert ep["Cost"] == pytest.approx(float(g4) * seconds / 3600, rel=1e-12)

    total = report["Total"]
    assert not total["Complete"] and total["Unpriced"] == ["transform-jobs/batch"]
    known = [train["Cost"], found["train-spot"]["Cost"], proc["Cost"], ep["Cost"]]
    assert total["Cost"] == pytest.approx(sum(known), rel=1e-12)
    assert total["CostPerHour"] == float(g4 * 3)
    assert report["PriceTable"]["Date"] == load_prices().packaged.date


def test_one_name_and_one_kind(state: Path) -> None:
    assert [r["Name"] for r in as_json(state, "train-a")["Resources"]] == ["train-a"]
    assert [r["Name"] for r in as_json(state, "--kind", "endpoints")["Resources"]] == ["ep"]
    assert [r["Name"] for r in as_json(state, "--kind", "training-jobs",
                                       "--kind", "transform-jobs")["Resources"]] == \
        ["train-a", "train-spot", "batch"]


def test_a_region_the_table_lacks_is_unknown_with_why(state: Path) -> None:
    resource = as_json(state, "train-a", "--region", "eu-central-1")["Resources"][0]
    assert resource["Region"] == "eu-central-1" and resource["Cost"] is None
    assert "no prices for region eu-central-1" in resource["Unknown"][0]


def test_the_table_for_people(state: Path) -> None:
    result = invoke(state)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "STATUS", "INSTANCES", "INSTANCE-HOURS", "COST",
                                "PER", "HOUR"]
    names = ("train-a", "train-spot", "proc", "batch", "ep")
    rows = {name: line for line in lines[1:] for name in names if f" {name} " in line}
    assert "2 x ml.m5.xlarge" in rows["train-a"] and "0.0556" in rows["train-a"]
    assert "unknown" in rows["batch"]
    assert "3 x ml.g4dn.xlarge" in rows["ep"] and "so far" in rows["ep"]
    assert lines[-1].startswith("TOTAL") and "+ unknown" in lines[-1]
    assert "batch: unknown: instance type 'local' runs on this machine" in result.stderr
    assert "train-spot: on demand $" in result.stderr and "saving 73%" in result.stderr
    assert "train-spot: managed spot: billed 27 s of 100 s, a 73% saving (price table: 70%)" \
        in result.stderr
    assert "Prices: optml's table" in result.stderr and "check current prices" in result.stderr


def test_an_override_file_from_the_environment(state: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"format_version": 1, "version": "v9", "regions": {
        "us-east-1": {"training": {"ml.m5.xlarge": 1.25}}}}))
    result = invoke(state, "train-a", "-o", "json", env={"OPTML_LOCAL_PRICES_FILE": str(mine)})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["PriceTable"]["Override"]["File"] == str(mine)
    train = report["Resources"][0]
    assert train["InstanceCost"] == float(Decimal("1.25") * 100 * 2 / 3600)
    assert train["Charges"][0]["PriceSource"] == str(mine)
    # what the override does not give is still the packaged table's
    assert train["Charges"][1]["PriceSource"].startswith("packaged prices.json")


@pytest.mark.parametrize(("content", "message"), [
    ("{oops", "not valid JSON"),
    (json.dumps({"format_version": 1, "regions": {"us-east-1": {"hosting": {
        "ml.m5.large": "cheap"}}}}),
     "field 'regions[\"us-east-1\"].hosting[\"ml.m5.large\"]': must be a number"),
])
def test_a_malformed_override_is_one_line_naming_the_file_and_field(
        state: Path, tmp_path: Path, content: str, message: str) -> None:
    mine = tmp_path / "mine.json"
    mine.write_text(content)
    result = invoke(state, env={"OPTML_LOCAL_PRICES_FILE": str(mine)})
    assert result.exit_code == EXIT_INVALID
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {mine}: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_missing_override_file_is_a_bad_environment_variable(state: Path,
                                                               tmp_path: Path) -> None:
    result = invoke(state, env={"OPTML_LOCAL_PRICES_FILE": str(tmp_path / "nope.json")})
    assert result.exit_code == EXIT_INVALID
    assert "OPTML_LOCAL_PRICES_FILE" in result.stderr and result.stderr.count("\n") == 1


def test_unknown_names_and_an_empty_state_dir(state: Path, tmp_path: Path) -> None:
    result = invoke(state, "nothing-here")
    assert result.exit_code == EXIT_FAILED
    assert result.stderr.strip() == (
        f"Error: no local training job, processing job, transform job or endpoint named "
        f"'nothing-here' in {state}")
    assert invoke(state, "ep", "--kind", "training-jobs").exit_code == EXIT_FAILED
    empty = invoke(tmp_path / "empty")
    assert empty.exit_code == 0 and empty.stdout == ""
    assert "no jobs, transforms or endpoints" in empty.stderr
    report = as_json(tmp_path / "empty")
    assert report["Resources"] == [] and report["Total"]["Cost"] == 0.0


def test_a_damaged_capacity_log_makes_that_endpoint_unknown(state: Path) -> None:
    path = state / "endpoints" / "ep" / "capacity.jsonl"
    with path.open("ab") as handle:
        handle.write(b"garbage\n")
    found = by_name(as_json(state))
    assert found["ep"]["Cost"] is None
    assert "capacity log cannot be read" in found["ep"]["Unknown"][0]
    assert found["train-a"]["Cost"] is not None


def test_names_complete_across_the_kinds_it_prices(state: Path) -> None:
    import click

    from local_mode.cli.cost import complete_costed, cost

    ctx = click.Context(cost)
    ctx.params["state_dir"] = state
    param = cost.params[0]
    assert [i.value for i in complete_costed(ctx, param, "")] == \
        ["train-a", "train-spot", "proc", "batch", "ep"]
    assert [i.value for i in complete_costed(ctx, param, "tr")] == ["train-a", "train-spot"]
