"""``optml local cost`` on a real training job: a two-host job on the process backend, then the
cost command as a user runs it, which must give the table's price x billable seconds x count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from local_mode.pricing.table import Price, load_prices
from tests.integration.local_training_support import (
    LocalEnv,
    job_name,
    local_env,
    request,
    write_code,
)

__all__ = ["local_env"]

TRAIN = """
    import os, time
    from pathlib import Path
    time.sleep(1.6)  # at least one billable second, whatever the machine's speed
    Path(os.environ["SM_MODEL_DIR"], "m").write_text("m")
"""


def optml_cost(env: LocalEnv, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "OPTML_LOCAL_PRICES_FILE"}
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
