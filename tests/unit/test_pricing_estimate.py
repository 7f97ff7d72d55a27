"""Cost estimates from descriptions: every figure is the table's price times the billed time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from local_mode.endpoints.capacity import CapacityChange
from local_mode.pricing import estimate, spot
from local_mode.pricing.table import (
    Missing,
    Price,
    PriceTable,
    load_prices,
    parse_table,
)

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
NOW = T0 + timedelta(hours=2)
ARN = "arn:aws:sagemaker:{}:000000000000:{}/x"


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_prices()


def price(table: PriceTable, usage: str, instance_type: str, region: str = "us-east-1"
          ) -> Decimal:
    found = table.instance_price(region, usage, instance_type)
    assert isinstance(found, Price)
    return found.value


def storage(table: PriceTable, region: str = "us-east-1") -> Decimal:
    found = table.storage_price(region)
    assert isinstance(found, Price)
    return found.value


def training(**changes: Any) -> dict[str, Any]:
    described = {"TrainingJobName": "job", "TrainingJobStatus": "Completed",
                 "TrainingJobArn": ARN.format("local", "training-job"),
                 "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 3,
                                    "VolumeSizeInGB": 30},
                 "TrainingStartTime": T0, "TrainingEndTime": T0 + timedelta(seconds=125),
                 "TrainingTimeInSeconds": 125, "BillableTimeInSeconds": 125}
    described.update(changes)
    return described


def test_a_finished_training_job_costs_price_x_billable_seconds_x_count(
        table: PriceTable) -> None:
    result = estimate.training_job(training(), table, NOW)
    hourly = price(table, "training", "ml.m5.xlarge")
    assert result.instance_cost == hourly * 125 * 3 / 3600
    assert result.storage_cost == storage(table) * 30 * 3 * 125 / (730 * 3600)
    assert result.cost == result.instance_cost + result.storage_cost
    assert result.region == "us-east-1" and result.region_from == "default"
    assert not result.running and result.unknown == () and result.spot is None
    charge = result.charges[0]
    assert (charge.item, charge.usage, charge.instance_type, charge.instance_count) == \
        ("instances", "training", "ml.m5.xlarge", 3)
    assert isinstance(charge.price, Price) and charge.price.origin.startswith("packaged")


def test_the_region_comes_from_the_option_then_the_arn(table: PriceTable) -> None:
    from_arn = estimate.training_job(
        training(TrainingJobArn=ARN.format("us-west-2", "training-job")), table, NOW)
    assert (from_arn.region, from_arn.region_from) == ("us-west-2", "ARN")
    given = estimate.training_job(training(), table, NOW, region="us-east-2")
    assert (given.region, given.region_from) == ("us-east-2", "--region")
    elsewhere = estimate.training_job(training(), table, NOW, region="eu-west-3")
    assert elsewhere.cost is None and "no prices for region eu-west-3" in elsewhere.unknown[0]


def test_managed_spot_bills_its_billable_time_as_it_stands(table: PriceTable) -> None:
    """BillableTimeInSeconds of a spot job is already less the spot saving (the service's
    and the runner's): billed as it stands, the saving 1 - billable / training."""
    result = estimate.training_job(
        training(EnableManagedSpotTraining=True, TrainingTimeInSeconds=200,
                 BillableTimeInSeconds=45), table, NOW)
    hourly = price(table, "training", "ml.m5.xlarge")
    discount = table.spot_discount("us-east-1", "ml.m5.xlarge").value
    spot = result.spot
    assert spot is not None and spot.discount == discount == Decimal("0.7")
    assert spot.billable_seconds == spot.billed_seconds == 45  # no second discount
    assert result.instance_cost == hourly * 45 * 3 / 3600
    assert result.charges[0].quantity == 45 * 3
    assert spot.on_demand_cost == hourly * 200 * 3 / 3600
    assert spot.savings == 1 - Decimal(45) / 200  # 77.5 %, the service's formula
    [note] = [n for n in result.notes if "managed spot" in n]
    assert note == "managed spot: billed 45 s of 200 s, a 77.5% saving (price table: 70%)"


def test_the_runner_s_billable_time_gives_the_table_s_saving(table: PriceTable) -> None:
    """What the runner records for a spot job, estimated: the savings are the table's."""
    arn = ARN.format("local", "training-job")
    billable = spot.spot_billable_seconds(200, "ml.m5.xlarge", arn, table)
    assert billable == 60  # 200 x (1 - 0.7)
    result = estimate.training_job(
        training(EnableManagedSpotTraining=True, TrainingTimeInSeconds=200,
                 BillableTimeInSeconds=billable), table, NOW)
    assert result.spot is not None and result.spot.savings == result.spot.discount


def test_a_running_spot_job_costs_its_time_so_far_less_the_spot_saving(
        table: PriceTable) -> None:
    result = estimate.training_job(
        training(EnableManagedSpotTraining=True, TrainingJobStatus="InProgress",
                 TrainingEndTime=None, TrainingTimeInSeconds=None,
                 BillableTimeInSeconds=None), table, T0 + timedelta(seconds=100))
    assert result.running and result.spot is not None
    assert result.spot.billable_seconds == 30 and result.spot.training_seconds == 100
    assert result.instance_cost == price(table, "training", "ml.m5.xlarge") * 30 * 3 / 3600


@pytest.mark.parametrize(("seconds", "expected"), [
    (200, 60), (10, 3), (1.4, 1), (0.2, 1), (5, 2),  # 1.5 rounds half up
    (0, 0), (Decimal("99.9"), 30)])
def test_spot_billable_seconds_is_the_attempts_time_less_the_saving(
        table: PriceTable, seconds: float | Decimal, expected: int) -> None:
    assert spot.spot_billable_seconds(seconds, "ml.m5.xlarge", None, table) == expected


def test_spot_billable_seconds_uses_the_type_s_figure_in_the_arn_s_region(
        tmp_path: Path) -> None:
    path = tmp_path / "spot.json"
    path.write_text(json.dumps({"format_version": 1, "regions": {
        "us-west-2": {"spot_discount": {"ml.p3.2xlarge": 0.9}}}}))
    table = load_prices(path)
    west = ARN.format("us-west-2", "training-job")
    assert spot.spot_billable_seconds(100, "ml.p3.2xlarge", west, table) == 10
    # another type there, or the type elsewhere: the table's default (0.7)
    assert spot.spot_billable_seconds(100, "ml.m5.large", west, table) == 30
    east = ARN.format("us-east-1", "training-job")
    assert spot.spot_billable_seconds(100, "ml.p3.2xlarge", east, table) == 30
    found = spot.spot_discount_for("ml.p3.2xlarge", west, table)
    assert not isinstance(found, Missing)
    assert (found.value, found.origin) == (Decimal("0.9"), str(path))


def test_no_spot_figure_is_missing_not_a_saving_of_zero() -> None:
    bare = PriceTable(parse_table({"format_version": 1, "regions": {
        "us-east-1": {"training": {"ml.m5.large": Decimal("0.115")}}}}, "bare"))
    found = spot.spot_billable_seconds(100, "ml.m5.large", None, bare)
    assert isinstance(found, Missing)
    assert "no managed spot saving for ml.m5.large in us-east-1" in found.reason


@pytest.mark.parametrize("instance_type", ["local", "local_gpu", "ml.nothing.large"])
def test_an_unpriced_type_is_unknown_never_zero(table: PriceTable, instance_type: str) -> None:
    result = estimate.training_job(
        training(ResourceConfig={"InstanceType": instance_type, "InstanceCount": 1,
                                 "VolumeSizeInGB": 1}), table, NOW)
    assert result.cost is None and result.instance_cost is None
    assert result.unknown and result.charges[0].cost is None
    assert isinstance(result.charges[0].price, Missing)


def test_a_running_training_job_costs_its_time_so_far(table: PriceTable) -> None:
    result = estimate.training_job(
        training(TrainingJobStatus="InProgress", TrainingEndTime=None,
                 TrainingTimeInSeconds=None, BillableTimeInSeconds=None), table,
        T0 + timedelta(seconds=90))
    assert result.running and result.end == T0 + timedelta(seconds=90)
    assert result.instance_cost == price(table, "training", "ml.m5.xlarge") * 90 * 3 / 3600


def test_a_job_that_ended_without_its_times_is_unknown(table: PriceTable) -> None:
    result = estimate.training_job(
        training(TrainingJobStatus="Failed", TrainingEndTime=None,
                 TrainingTimeInSeconds=None, BillableTimeInSeconds=None,
                 LastModifiedTime=T0 + timedelta(seconds=5)), table, NOW)
    assert result.instance_cost is None
    assert "without its TrainingTimeInSeconds" in result.unknown[0]


def test_processing_and_transform_jobs_cost_their_time_from_start_to_end(
        table: PriceTable) -> None:
    processing = estimate.processing_job({
        "ProcessingJobName": "p", "ProcessingJobStatus": "Completed",
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.c5.xlarge",
                                                  "InstanceCount": 2, "VolumeSizeInGB": 5}},
        "ProcessingStartTime": T0,
        "ProcessingEndTime": T0 + timedelta(seconds=61, microseconds=500000)}, table, NOW)
    assert processing.instance_cost == \
        price(table, "processing", "ml.c5.xlarge") * Decimal("61.5") * 2 / 3600
    assert processing.storage_cost == storage(table) * 5 * 2 * Decimal("61.5") / (730 * 3600)
    transform = estimate.transform_job({
        "TransformJobName": "t", "TransformJobStatus": "InProgress",
        "TransformResources": {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1},
        "TransformStartTime": T0}, table, T0 + timedelta(minutes=30))
    assert transform.running and transform.cost == \
        price(table, "transform", "ml.g4dn.xlarge") * 1800 / 3600
    assert [c.item for c in transform.charges] == ["instances"]
    not_started = estimate.transform_job({
        "TransformJobName": "t", "TransformJobStatus": "InProgress",
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}, table, NOW)
    assert not_started.cost == 0


ENDPOINT = {"EndpointName": "ep", "EndpointStatus": "InService", "CreationTime": T0,
            "EndpointConfigName": "cfg", "EndpointArn": ARN.format("local", "endpoint"),
            "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 2}]}
CONFIG = {"EndpointConfigName": "cfg", "ProductionVariants": [
    {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
     "VolumeSizeInGB": 4}]}


def test_an_autoscaled_endpoint_costs_its_instance_seconds(table: PriceTable) -> None:
    """1 instance for an hour, 3 for half an hour, then 2: 1 x 3600 + 3 x 1800 + 2 x 1800."""
    start = T0.timestamp()
    capacity = [CapacityChange(start, "AllTraffic", "ml.m5.large", 1),
                CapacityChange(start + 3600, "AllTraffic", "ml.m5.large", 3),
                CapacityChange(start + 5400, "AllTraffic", "ml.m5.large", 2)]
    result = estimate.endpoint(ENDPOINT, CONFIG, capacity, table, NOW)
    hourly = price(table, "hosting", "ml.m5.large")
    seconds = 3600 + 3 * 1800 + 2 * 1800
    assert result.instance_cost == hourly * seconds / 3600
    assert result.storage_cost == storage(table) * 4 * seconds / (730 * 3600)
    assert result.running and result.per_hour == hourly * 2
    assert [(r.variant_name, r.instance_type, r.count) for r in result.rates] == \
        [("AllTraffic", "ml.m5.large", 2)]


def test_a_stopped_endpoint_is_counted_to_its_last_change(table: PriceTable) -> None:
    start = T0.timestamp()
    capacity = [CapacityChange(start + 10, "AllTraffic", "ml.m5.large", 2),
                CapacityChange(start + 70, "AllTraffic", "ml.m5.large", 0)]
    result = estimate.endpoint({**ENDPOINT, "EndpointStatus": "Failed",
                                "LastModifiedTime": T0 + timedelta(seconds=40)},
                               CONFIG, capacity, table, NOW)
    assert not result.running and result.end == T0 + timedelta(seconds=70)
    assert result.instance_cost == price(table, "hosting", "ml.m5.large") * 120 / 3600
    assert result.rates == () and result.per_hour == 0


def test_an_endpoint_without_a_capacity_log_is_estimated_from_its_config(
        table: PriceTable) -> None:
    result = estimate.endpoint(ENDPOINT, CONFIG, None, table, T0 + timedelta(seconds=600))
    assert result.instance_cost == price(table, "hosting", "ml.m5.large") * 600 / 3600
    assert any("no capacity log" in note for note in result.notes)
    assert result.per_hour == price(table, "hosting", "ml.m5.large") * 2  # CurrentInstanceCount


def test_what_an_endpoint_cannot_be_priced_for(table: PriceTable) -> None:
    serverless = {"EndpointConfigName": "cfg", "ProductionVariants": [
        {"VariantName": "AllTraffic", "ServerlessConfig": {"MemorySizeInMB": 2048,
                                                            "MaxConcurrency": 1}}]}
    result = estimate.endpoint(ENDPOINT, serverless, None, table, NOW)
    assert result.cost is None and "serverless" in result.unknown[0]
    local = estimate.endpoint(ENDPOINT, CONFIG, [CapacityChange(T0.timestamp(), "AllTraffic",
                                                                "local", 1)], table, NOW)
    assert local.cost is None and local.per_hour is None
    unreadable = estimate.endpoint(ENDPOINT, CONFIG, Missing("its capacity log cannot be read"),
                                   table, NOW)
    assert unreadable.cost is None and unreadable.unknown == ("its capacity log cannot be read",)


def test_totals_add_what_is_known_and_say_what_is_not(table: PriceTable) -> None:
    known = estimate.training_job(training(), table, NOW)
    unknown = estimate.training_job(training(ResourceConfig={"InstanceType": "local"}), table,
                                    NOW)
    totals = estimate.Totals((known, unknown))
    assert totals.cost == known.cost and not totals.complete
    assert estimate.Totals((known,)).complete


def test_an_override_price_is_used_and_named(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"format_version": 1, "regions": {
        "us-east-1": {"training": {"ml.m5.xlarge": 0.3333}}}}))
    table = load_prices(path)
    result = estimate.training_job(training(), table, NOW)
    assert result.instance_cost == Decimal("0.3333") * 125 * 3 / 3600
    charge_price = result.charges[0].price
    assert isinstance(charge_price, Price) and charge_price.origin == str(path)
