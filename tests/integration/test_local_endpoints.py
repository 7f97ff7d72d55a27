"""Local endpoints on the process backend: real ``optml serve`` processes behind the router."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_mode.errors import ModelError, ValidationException
from local_mode.runtime import ValidationError
from tests.integration.test_local_endpoints_support import (
    ECHO,
    FAST_ENV,
    Local,
    local,
    make_model_tar,
)
from toolkit.pids import pid_alive

__all__ = ["local"]  # the fixture, re-exported for pytest


def _pids(local: Local, name: str) -> list[int]:
    return [pid for i in local.private(name)["Instances"] for pid in i["Pids"]]


def test_lifecycle_invoke_and_clean_delete(local: Local) -> None:
    local.model("m1", value="one")
    local.config("c1", ("AllTraffic", "m1", 1, 1.0))
    local.sm.create_endpoint(EndpointName="e1", EndpointConfigName="c1")
    assert local.sm.describe_endpoint(EndpointName="e1")["EndpointStatus"] in ("Creating",
                                                                              "InService")
    described = local.wait_status("e1", "InService")
    assert described["EndpointConfigName"] == "c1"
    assert described["EndpointArn"].endswith(":endpoint/e1")
    variant = described["ProductionVariants"][0]
    assert variant["VariantName"] == "AllTraffic" and variant["CurrentInstanceCount"] == 1
    assert "RouterPort" not in described and "Instances" not in described

    response = local.invoke("e1", b"hi", CustomAttributes="trace=1", InferenceId="abc",
                            Accept="application/json")
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert response["CustomAttributes"] == "echo:trace=1"
    data = json.loads(response["Data"])
    assert data["model"] == "one" and data["body"] == "hi" and data["variant"] == "AllTraffic"

    with pytest.raises(ModelError) as failed:
        local.invoke("e1", b"fail please")
    error = failed.value.response
    assert error["Error"]["Code"] == "ModelError" and error["OriginalStatusCode"] == 500
    assert "asked to fail" in error["OriginalMessage"]
    assert Path(error["LogStreamArn"]).is_file()

    listed = local.sm.list_endpoints(NameContains="e")["Endpoints"]
    assert [e["EndpointName"] for e in listed] == ["e1"]
    assert local.sm.list_models()["Models"][0]["ModelName"] == "m1"
    assert local.sm.describe_endpoint_config(EndpointConfigName="c1")[
        "ProductionVariants"][0]["ModelName"] == "m1"

    pids = _pids(local, "e1")
    runner = local.sm.store.get("endpoints", "e1").runner_pid()
    assert runner is not None and all(pid_alive(p) for p in pids)
    local.sm.delete_endpoint(EndpointName="e1")
    assert not any(pid_alive(p) for p in [*pids, runner])
    assert not (local.sm.store.root / "endpoints" / "e1").exists()
    with pytest.raises(ValidationException, match="Could not find endpoint"):
        local.sm.describe_endpoint(EndpointName="e1")
    with pytest.raises(ValidationError, match="not found"):
        local.invoke("e1")
    local.sm.delete_endpoint_config(EndpointConfigName="c1")
    local.sm.delete_model(ModelName="m1")
    assert local.sm.list_models()["Models"] == []


def test_requests_are_validated(local: Local) -> None:
    with pytest.raises(ValidationException, match="PrimaryContainer or Containers"):
        local.sm.create_model(ModelName="none")
    with pytest.raises(ValidationException, match="Could not find model"):
        local.config("c", ("v", "missing", 1, 1.0))
    with pytest.raises(ValidationException, match="Could not find endpoint configuration"):
        local.sm.create_endpoint(EndpointName="e", EndpointConfigName="missing")
    with pytest.raises(ClientError):
        local.sm.create_model(ModelName="bad name!", PrimaryContainer={"Image": "x"})
    local.model("m")
    with pytest.raises(ClientError, match="already exists"):
        local.model("m")


def test_model_without_code_fails_with_a_clear_reason(local: Local, tmp_path: Path) -> None:
    empty = make_model_tar(tmp_path / "empty.tar.gz", "", {})
    (tmp_path / "nocode").mkdir()
    local.sm.create_model(ModelName="nocode", PrimaryContainer={
        "Image": "someone/else:1", "ModelDataUrl": (tmp_path / "nocode").as_uri()})
    local.config("c", ("v", "nocode", 1, 1.0))
    local.endpoint("e", "c", wait=False)
    failed = local.wait_status("e", "Failed")
    assert "process backend runs only toolkit-based models" in failed["FailureReason"]
    assert "someone/else:1" in failed["FailureReason"]
    # an artifact that does not exist is refused at CreateModel, naming the field and the URI
    nope = (tmp_path / "nope.tar.gz").as_uri()
    with pytest.raises(ValidationException, match=f"PrimaryContainer.ModelDataUrl: Could not "
                                                  f"find model data at {nope}"):
        local.sm.create_model(ModelName="missing", PrimaryContainer={
            "Image": "x", "ModelDataUrl": nope})
    # one removed after CreateModel fails the endpoint, saying so
    gone = make_model_tar(tmp_path / "gone.tar.gz", "", {})
    local.sm.create_model(ModelName="gone", PrimaryContainer={
        "Image": "x", "ModelDataUrl": gone.as_uri()})
    gone.unlink()
    local.config("c2", ("v", "gone", 1, 1.0))
    local.endpoint("e2", "c2", wait=False)
    assert "no such object" in local.wait_status("e2", "Failed")["FailureReason"]
    assert empty.exists()


def test_three_instances_one_killed_traffic_keeps_flowing(local: Local) -> None:
    local.model("m")
    local.config("c", ("AllTraffic", "m", 3, 1.0))
    local.endpoint("e", "c")
    before = local.private("e")["Instances"]
    assert len(before) == 3 and all(i["Healthy"] for i in before)
    errors: list[BaseException] = []
    served: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set() and len(served) < 3000:
            try:
                served.append(json.loads(local.invoke("e", b"x")["Data"])["pid"])
            except BaseException as exc:  # noqa: BLE001 - every failure is recorded
                errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        while len(served) < 30:
            time.sleep(0.01)
        victim = before[1]
        os.killpg(victim["Pids"][0], signal.SIGKILL)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            now = local.private("e")["Instances"]
            if len(now) == 3 and all(i["Healthy"] for i in now) and \
                    victim["Id"] not in {i["Id"] for i in now}:
                break
            time.sleep(0.05)
        after_replacement = len(served)
        while len(served) < after_replacement + 30:
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    now = local.private("e")["Instances"]
    assert victim["Id"] not in {i["Id"] for i in now}, local.runner_log("e")
    assert len(now) == 3 and all(i["Healthy"] for i in now)
    assert errors == []
    new_pid = next(i["Pids"][0] for i in now if i["Id"] not in {b["Id"] for b in before})
    assert new_pid in served[after_replacement:] or len(set(served[after_replacement:])) >= 2
    assert len({p for p in served}) >= 3


def test_two_endpoints_variants_and_target_variant(local: Local) -> None:
    local.model("one", value="one")
    local.model("two", value="two")
    local.config("both", ("A", "one", 1, 1.0), ("B", "two", 1, 0.0))
    local.config("solo", ("AllTraffic", "two", 1, 1.0))
    local.endpoint("first", "both", wait=False)
    local.endpoint("second", "solo", wait=False)
    local.wait_status("first", "InService")
    local.wait_status("second", "InService")
    assert local.private("first")["RouterPort"] != local.private("second")["RouterPort"]
    for _ in range(10):  # weight 0: no traffic unless targeted
        response = local.invoke("first")
        assert response["InvokedProductionVariant"] == "A"
        assert json.loads(response["Data"])["model"] == "one"
    targeted = local.invoke("first", TargetVariant="B")
    assert targeted["InvokedProductionVariant"] == "B"
    assert json.loads(targeted["Data"])["model"] == "two"
    assert json.loads(local.invoke("second")["Data"])["model"] == "two"
    with pytest.raises(ValidationError, match="does not exist"):
        local.invoke("first", TargetVariant="C")
    with pytest.raises(ValidationError, match="6 MiB"):
        local.invoke("second", b"x" * (6 * 1024 * 1024 + 1))
    assert json.loads(local.invoke("second", b"y" * 1000)["Data"])["body"] == "y" * 1000


def test_update_swaps_without_a_failed_request(local: Local) -> None:
    local.model("one", value="one")
    local.model("two", value="two")
    local.config("c1", ("AllTraffic", "one", 1, 1.0))
    local.config("c2", ("AllTraffic", "two", 2, 1.0))
    local.endpoint("e", "c1")
    old_pids = _pids(local, "e")
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set() and len(seen) < 5000:
            try:
                seen.append(json.loads(local.invoke("e")["Data"])["model"])
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        while len(seen) < 20:
            time.sleep(0.01)
        local.sm.update_endpoint(EndpointName="e", EndpointConfigName="c2")
        assert local.sm.describe_endpoint(EndpointName="e")["EndpointStatus"] in ("Updating",
                                                                                 "InService")
        with pytest.raises(ValidationException, match="Cannot update"):
            local.sm.update_endpoint(EndpointName="e", EndpointConfigName="c1")
        described = local.wait_status("e", "InService")
        count = len(seen)
        while len(seen) < count + 20:
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert described["EndpointConfigName"] == "c2"
    assert seen[0] == "one" and set(seen[count + 3:]) == {"two"}  # 3 may have been in flight
    deadline = time.monotonic() + 60
    while any(pid_alive(p) for p in old_pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in old_pids)
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2


STEP1 = """
    def model_fn(model_dir):
        return None

    def transform_fn(model, body, content_type, accept):
        if isinstance(body, str):
            body = body.encode()
        return body.upper() + b"|" + content_type.encode(), "application/x-step1"
"""


def test_two_container_pipeline(local: Local) -> None:
    first = make_model_tar(local.root / "p1.tar.gz", STEP1)
    second = make_model_tar(local.root / "p2.tar.gz", ECHO, {"value.txt": "second"})
    local.sm.create_model(ModelName="pipe", Containers=[
        {"Image": "step1", "ModelDataUrl": first.as_uri(), "Environment": FAST_ENV},
        {"Image": "step2", "ModelDataUrl": second.as_uri(), "Environment": FAST_ENV}])
    local.config("c", ("AllTraffic", "pipe", 1, 1.0))
    local.endpoint("e", "c")
    assert len(local.private("e")["Instances"][0]["Ports"]) == 2
    data = json.loads(local.invoke("e", b"abc", ContentType="text/plain")["Data"])
    assert data == {**data, "model": "second", "body": "ABC|text/plain",
                    "content_type": "application/x-step1"}
    with pytest.raises(ModelError, match="from container-2") as failed:
        local.invoke("e", b"fail")  # step 1 passes "FAIL" on; step 2 refuses it
    assert failed.value.response["OriginalStatusCode"] == 500


MULTI = """
    import gc
    import os
    import weakref
    from pathlib import Path

    LIMIT = 2
    live = set()

    class Model:
        def __init__(self, value):
            self.value = value

    def model_fn(model_dir):
        gc.collect()
        if len(live) >= LIMIT:
            raise MemoryError("no room for another model")
        model = Model((Path(model_dir) / "value.txt").read_text())
        key = id(model)
        live.add(key)
        weakref.finalize(model, live.discard, key)
        return model

    def transform_fn(model, body, content_type, accept):
        return model.value + ":" + str(len(live)), "text/plain"
"""


def test_multi_model_endpoint_unloads_least_recently_used(local: Local, tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text(__import__("textwrap").dedent(MULTI))
    models = tmp_path / "models"
    for name in ("a", "b", "c"):
        make_model_tar(models / f"{name}.tar.gz", "", {"value.txt": name.upper()})
    local.sm.create_model(ModelName="mme", PrimaryContainer={
        "Image": "x", "Mode": "MultiModel", "ModelDataUrl": models.as_uri() + "/",
        "Environment": {**FAST_ENV, "SAGEMAKER_SUBMIT_DIRECTORY": str(code)}})
    local.config("c", ("AllTraffic", "mme", 1, 1.0))
    local.endpoint("e", "c")
    answers = [local.invoke("e", TargetModel=f"{n}.tar.gz")["Data"].decode()
               for n in ("a", "b", "c", "a", "b", "b", "c")]
    assert [a.split(":")[0] for a in answers] == ["A", "B", "C", "A", "B", "B", "C"]
    assert all(int(a.split(":")[1]) <= 2 for a in answers)
    log = (local.sm.store.root / "endpoints" / "e" / "runner.log").read_text()
    assert "unloaded model a.tar.gz" in log
    with pytest.raises(ValidationError, match="TargetModel is required"):
        local.invoke("e")
    with pytest.raises(ValidationError, match="Failed to download"):
        local.invoke("e", TargetModel="zzz.tar.gz")
    with pytest.raises(ValidationError, match="not a valid"):
        local.invoke("e", TargetModel="../a.tar.gz")


def test_model_from_s3(tmp_path: Path, s3_environ: dict[str, str], s3_client: Any,
                       s3_bucket: str) -> None:
    env = Local(tmp_path, s3_environ)
    try:
        tar = make_model_tar(tmp_path / "model.tar.gz", ECHO, {"value.txt": "from-s3"})
        s3_client.upload_file(str(tar), s3_bucket, "models/model.tar.gz")
        env.sm.create_model(ModelName="m", PrimaryContainer={
            "Image": "x", "ModelDataUrl": f"s3://{s3_bucket}/models/model.tar.gz",
            "Environment": FAST_ENV})
        env.config("c", ("AllTraffic", "m", 1, 1.0))
        env.endpoint("e", "c")
        assert json.loads(env.invoke("e")["Data"])["model"] == "from-s3"
    finally:
        env.cleanup()
