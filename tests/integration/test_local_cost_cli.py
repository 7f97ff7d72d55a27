"""``optml local cost`` on real training jobs: a two-host job on the process backend, then the
cost command as a user runs it, which must give the table's price x billable seconds x count; and
a managed spot job, whose BillableTimeInSeconds is already less the table's spot saving, as the
service reports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from local_mode.pricing.table import Price, load_prices
from tests.integration.local_training_support import (
    LocalEnv,
    job_name,
    local_env,
    make_env,
    request,
    stop_everything,
    write_code,
)

__all__ = ["local_env"]

TRAIN = """
    import os, time
    from pathlib import Path
    time.sleep(1.6)  # at least one billable second, whatever the machine's speed
    Path(os.environ["SM_MODEL_DIR"], "m").write_text("m")
"""


def optml_cost(env: LocalEnv, *args: str, prices: Path | None = None
               ) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "OPTML_LOCAL_PRICES_FILE"}
    if prices is not None:
        environ["OPTML_LOCAL_PRICES_FILE"] = str(prices)
    return subprocess.run([sys.executable, "-m", "toolkit.cli", "local", "cost", *args,
                           "--state-dir", str(env.state_dir)], capture_output=True, text=True,
                          env=environ, timeout=60, check=False)


def test_the_cost_of_a_finished_job_is_price_x_billable_seconds_x_count(
        local_env: LocalEnv, tmp_path: Path) -> None:
    name = job_name("cost")
    body = request(name, write_code(tmp_path / "code", TRAIN), local_env.output_uri,
                   instance_count=2)
    body["ResourceConfig"]["InstanceType"] = "ml.m5.large"
    local_env.client.create_training_job(**body)
    described = local_env.wait(name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    billable = described["BillableTimeInSeconds"]
    assert billable >= 1

    run = optml_cost(local_env, name, "-o", "json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    [resource] = report["Resources"]
    price = load_prices().instance_price("us-east-1", "training", "ml.m5.large")
    assert isinstance(price, Price)
    assert resource["InstanceCost"] == float(price.value * billable * 2 / 3600)
    assert resource["Charges"][0]["InstanceSeconds"] == billable * 2
    assert resource["Charges"][0]["Price"] == float(price.value)
    assert (resource["Name"], resource["Status"], resource["Running"]) == \
        (name, "Completed", False)
    assert resource["Unknown"] == [] and report["Total"]["Complete"]

    # the table says the same, for people
    table = optml_cost(local_env, name)
    assert table.returncode == 0, table.stderr
    assert f" {name} " in table.stdout and "2 x ml.m5.large" in table.stdout
    assert "Prices: optml's table" in table.stderr
    assert Decimal(str(resource["Cost"])) > 0


SPOT_TRAIN = """
    import os, time
    from pathlib import Path
    time.sleep(5)  # a few seconds of training, so the spot saving shows in whole seconds
    Path(os.environ["SM_MODEL_DIR"], "m").write_text("m")
"""
SPOT_PRICES = {"format_version": 1, "regions": {
    "us-east-1": {"spot_discount": {"ml.m5.large": 0.6}}}}
"""An override with the type's own spot saving: the runner must read the user's table too."""


def attempt_seconds(described: dict[str, Any]) -> float:
    """The training attempt's time, from its Training transition (the job has one)."""
    [training] = [t for t in described["SecondaryStatusTransitions"]
                  if t["Status"] == "Training"]
    start, end = training["StartTime"], training["EndTime"]
    assert isinstance(start, datetime) and isinstance(end, datetime)
    return (end - start).total_seconds()


def spot_request(name: str, code: Path, output_uri: str) -> dict[str, Any]:
    body = request(name, code, output_uri, max_runtime=60, EnableManagedSpotTraining=True,
                   StoppingCondition={"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120})
    body["ResourceConfig"]["InstanceType"] = "ml.m5.large"
    return body


def test_a_spot_job_s_billable_time_is_less_the_spot_saving_and_billed_as_it_stands(
        tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(SPOT_PRICES))
    env = make_env(tmp_path, {"OPTML_LOCAL_PRICES_FILE": str(prices)})
    try:
        name = job_name("spot-cost")
        env.client.create_training_job(**spot_request(
            name, write_code(tmp_path / "code", SPOT_TRAIN), env.output_uri))
        described = env.wait(name)
    finally:
        stop_everything(env)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    table = load_prices(prices)
    discount = table.spot_discount("us-east-1", "ml.m5.large").value
    assert discount == Decimal("0.6")
    training = described["TrainingTimeInSeconds"]
    billable = described["BillableTimeInSeconds"]
    attempt = attempt_seconds(described)
    assert 5 <= attempt <= training + 0.5
    # the attempt's time less the table's saving, within the rounding to whole seconds
    expected = max(1, round(attempt * float(1 - discount)))
    assert abs(billable - expected) <= 1, (billable, attempt)
    assert 1 <= billable < training
    # the savings as the service documents them are the table's, within rounding
    savings = 1 - billable / training
    assert abs(savings - float(discount)) <= 1 / training, (billable, training)

    run = optml_cost(env, name, "-o", "json", prices=prices)
    assert run.returncode == 0, run.stderr
    [resource] = json.loads(run.stdout)["Resources"]
    price = table.instance_price("us-east-1", "training", "ml.m5.large")
    assert isinstance(price, Price)
    # billed exactly as recorded: no second discount
    assert resource["InstanceCost"] == float(price.value * billable * 1 / 3600)
    assert resource["Charges"][0]["InstanceSeconds"] == billable
    spot = resource["Spot"]
    assert (spot["TrainingTimeInSeconds"], spot["BillableTimeInSeconds"],
            spot["BilledSeconds"]) == (training, billable, billable)
    assert spot["Discount"] == 0.6 and spot["DiscountSource"] == str(prices)
    assert spot["Savings"] == float(1 - Decimal(billable) / Decimal(training))
    assert spot["OnDemandCost"] == float(price.value * training / 3600)


def test_a_price_table_that_cannot_be_read_never_fails_a_spot_job(tmp_path: Path) -> None:
    """The runner falls back to the undiscounted attempts' time, with one warning."""
    prices = tmp_path / "prices.json"
    prices.write_text("{not json")
    env = make_env(tmp_path, {"OPTML_LOCAL_PRICES_FILE": str(prices)})
    try:
        name = job_name("spot-noprices")
        env.client.create_training_job(**spot_request(
            name, write_code(tmp_path / "code", TRAIN), env.output_uri))
        described = env.wait(name)
        runner_log = (env.client.store.get("training-jobs", name).path
                      / "runner.log").read_text()
    finally:
        stop_everything(env)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    attempt = attempt_seconds(described)
    assert abs(described["BillableTimeInSeconds"] - max(1, round(attempt))) <= 1
    assert 1 <= described["BillableTimeInSeconds"] <= described["TrainingTimeInSeconds"]
    warnings = [line for line in runner_log.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, runner_log
    assert "not reduced by the spot saving" in warnings[0] and "not valid JSON" in warnings[0]


def test_an_endpoint_deployed_with_an_instance_type_is_priced(local_env: LocalEnv,
                                                              tmp_path: Path) -> None:
    """optml local deploy --instance-type: the endpoint costs its type's hosting price per
    instance-second from its capacity log, and so much per hour while it serves."""
    from tests.integration.test_local_endpoints_support import make_model_tar

    tar = make_model_tar(tmp_path / "model.tar.gz")
    deploy = subprocess.run(
        [sys.executable, "-m", "toolkit.cli", "local", "deploy", "priced", "--model-data",
         str(tar), "--instance-type", "ml.m5.large", "--instance-count", "2", "--backend",
         "process", "--state-dir", str(local_env.state_dir),
         "--env", "SAGEMAKER_MODEL_SERVER_WORKERS=1"],
        capture_output=True, text=True, timeout=120, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("OPTML_")})
    try:
        assert deploy.returncode == 0, deploy.stderr
        run = optml_cost(local_env, "priced", "-o", "json")
        assert run.returncode == 0, run.stderr
        (endpoint,) = json.loads(run.stdout)["Resources"]
        hourly = load_prices().instance_price("us-east-1", "hosting", "ml.m5.large")
        assert isinstance(hourly, Price)
        assert endpoint["Cost"] is not None and endpoint["Cost"] > 0
        assert Decimal(str(endpoint["CostPerHour"])) == hourly.value * 2
    finally:
        subprocess.run([sys.executable, "-m", "toolkit.cli", "local", "endpoints", "rm",
                        "priced", "--state-dir", str(local_env.state_dir)],
                       capture_output=True, timeout=120, check=False)
