"""UpdateEndpoint as the service does it, on the process backend, under load.

Blue/green: the new fleet starts beside the old one, which keeps every request until the new
fleet is healthy; then traffic moves, the old instances finish what they hold and are stopped;
only then is the endpoint InService on the new config. A new fleet that cannot start is removed
and the endpoint stays InService on its old config with a FailureReason. Gates (files the test
creates) hold a model's load and one request, so each phase is observed for certain rather than
caught by timing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from local_mode.shapes import response_errors
from tests.integration.test_local_endpoints_support import Local, local
from toolkit.pids import group_alive

__all__ = ["local"]  # the fixture, re-exported for pytest

PHASE_SECONDS = 120.0
"""A liveness bound for each wait (a stuck update fails the test instead of hanging it)."""

GATED = """
    import json
    import os
    import time
    from pathlib import Path

    def _wait_for(path):
        while not Path(path).exists():
            time.sleep(0.02)

    def model_fn(model_dir):
        if os.environ.get("LOAD_GATE"):  # the model loads once the test says so
            _wait_for(os.environ["LOAD_GATE"])
        return (Path(model_dir) / "value.txt").read_text()

    def transform_fn(model, body, content_type, accept):
        if isinstance(body, str):
            body = body.encode()
        if body == b"hold":  # say it arrived, then answer once the test says so
            Path(os.environ["HELD"]).write_text(str(os.getpid()))
            _wait_for(os.environ["RELEASE"])
        return json.dumps({"model": model, "pid": os.getpid()}), "application/json"
"""

BROKEN = """
    def model_fn(model_dir):
        raise RuntimeError("weights file is corrupt: checksum mismatch")

    def transform_fn(model, body, content_type, accept):
        return body
"""

ORDER = {"one": 1, "two": 2, "three": 3}


class Load:
    """A few client threads invoking the endpoint until stopped (paced and capped, so the load
    stays bounded on a small machine); every answer and every failure is kept."""

    def __init__(self, local: Local, name: str, threads: int = 2) -> None:
        self.local, self.name = local, name
        self.answers: list[list[tuple[float, str]]] = [[] for _ in range(threads)]
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, index: int) -> None:
        answers = self.answers[index]
        while not self._stop.is_set() and len(answers) < 20000:
            sent = time.monotonic()
            try:
                answers.append((sent, json.loads(self.local.invoke(self.name)["Data"])["model"]))
            except BaseException as exc:  # noqa: BLE001 - every failure is recorded
                self.errors.append(exc)
            self._stop.wait(0.005)

    def models(self) -> list[str]:
        return [model for thread in self.answers for _, model in thread]

    def sent_after(self, moment: float) -> set[str]:
        return {model for thread in self.answers for sent, model in thread if sent > moment}

    def until_answered_by(self, model: str, after: float) -> None:
        """Wait for an answer from ``model`` to a request sent after ``after``."""
        deadline = time.monotonic() + PHASE_SECONDS
        while model not in self.sent_after(after):
            assert not self.errors, self.errors[:3]
            assert time.monotonic() < deadline, f"no answer from {model}: {self.models()[-5:]}"
            time.sleep(0.01)

    @contextmanager
    def running(self) -> Iterator[Load]:
        for thread in self._threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=90)


def _until(what: str, check: Any, local: Local, name: str) -> Any:
    deadline = time.monotonic() + PHASE_SECONDS
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what}\n{local.runner_log(name)}"
        time.sleep(0.01)
    return result


def _instances(local: Local, name: str) -> list[dict[str, Any]]:
    return list(local.private(name).get("Instances") or [])


def _serving_processes(local: Local, name: str) -> dict[int, str]:
    """Every live process of the process table working in one of the endpoint's instance
    directories (a server and the workers it forked): pid -> directory."""
    root = str((local.sm.store.root / "endpoints" / name / "work" / "instances").resolve())
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # exited while we looked, or not ours
        if cwd.startswith(root + "/") and state != "Z":
            found[int(entry)] = cwd[len(root) + 1:]
    return found


def _instance_of(directory: str) -> str:
    return directory.split("/", 1)[0]


def _shaped(description: dict[str, Any]) -> None:
    """The description is what boto3 would return: botocore's DescribeEndpoint output shape."""
    assert response_errors("DescribeEndpoint", description) == []


def _waiter_config() -> dict[str, Any]:
    return {"Delay": 0.1, "MaxAttempts": int(PHASE_SECONDS / 0.1)}


def test_update_is_blue_green_drains_the_old_fleet_then_reports_in_service(
        local: Local, tmp_path: Path) -> None:
    gate, held, release = tmp_path / "load-gate", tmp_path / "held", tmp_path / "release"
    created = tmp_path / "create-gate"
    hold_env = {"HELD": str(held), "RELEASE": str(release), "LOAD_GATE": str(created)}
    local.model("one", GATED, value="one", env=hold_env)
    local.model("two", GATED, value="two", env={"LOAD_GATE": str(gate)})
    local.model("three", GATED, value="three")
    local.config("c1", ("AllTraffic", "one", 1, 1.0))
    local.config("c2", ("AllTraffic", "two", 2, 1.0))
    local.config("c3", ("AllTraffic", "three", 1, 1.0))
    local.endpoint("e", "c1", wait=False)
    _until("the first fleet never started", lambda: _instances(local, "e"), local, "e")
    described = local.sm.describe_endpoint(EndpointName="e")
    _shaped(described)
    assert described["EndpointStatus"] == "Creating" and "ProductionVariants" not in described
    assert described["PendingDeploymentSummary"]["EndpointConfigName"] == "c1"
    created.touch()
    local.wait_status("e", "InService", timeout=PHASE_SECONDS)
    assert "PendingDeploymentSummary" not in local.sm.describe_endpoint(EndpointName="e")
    old = _instances(local, "e")
    old_ids = {i["Id"] for i in old}
    old_pids = [pid for i in old for pid in i["Pids"]]

    held_answer: list[Any] = []
    holder = threading.Thread(target=lambda: held_answer.append(local.invoke("e", b"hold")))
    with Load(local, "e").running() as load:
        load.until_answered_by("one", after=0.0)
        holder.start()  # one request the old fleet will still be holding after the switch
        _until("the held request never reached the old fleet", held.exists, local, "e")

        local.sm.update_endpoint(EndpointName="e", EndpointConfigName="c2")
        # phase 1: the new fleet starts (its model load is held); the old one serves
        both = _until("the new fleet never started",
                      lambda: len(i := _instances(local, "e")) == 3 and i, local, "e")
        assert {i["Id"] for i in both if i["InService"]} == old_ids
        assert not any(i["Healthy"] for i in both if i["Id"] not in old_ids)
        described = local.sm.describe_endpoint(EndpointName="e")
        _shaped(described)
        assert described["EndpointStatus"] == "Updating"
        assert described["EndpointConfigName"] == "c1"
        assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
        pending = described["PendingDeploymentSummary"]
        assert pending["EndpointConfigName"] == "c2"
        assert pending["ProductionVariants"][0]["DesiredInstanceCount"] == 2
        assert pending["ProductionVariants"][0]["CurrentInstanceCount"] == 0
        assert pending["ProductionVariants"][0]["VariantStatus"][0]["Status"] == "Creating"
        mark = time.monotonic()
        load.until_answered_by("one", after=mark)
        assert load.sent_after(mark) == {"one"}

        # phase 2: the new fleet is healthy and takes the traffic; the old one drains
        gate.touch()
        _until("the old fleet never started draining",
               lambda: all(i["Draining"] for i in _instances(local, "e")
                           if i["Id"] in old_ids), local, "e")
        described = local.sm.describe_endpoint(EndpointName="e")
        _shaped(described)
        assert described["EndpointStatus"] == "Updating"
        assert described["EndpointConfigName"] == "c1"
        status = described["PendingDeploymentSummary"]["ProductionVariants"][0]
        assert status["VariantStatus"][0]["Status"] == "ActivatingTraffic"
        assert status["CurrentInstanceCount"] == 2
        assert all(pid in group_alive(pid) for pid in old_pids)  # still finishing its request
        switched = time.monotonic()
        load.until_answered_by("two", after=switched)
        assert load.sent_after(switched) == {"two"}
        assert local.sm.describe_endpoint(EndpointName="e")["EndpointStatus"] == "Updating"

        # phase 3: the held request finishes on the old fleet, which then goes: InService
        release.touch()
        described = local.wait_status("e", "InService", timeout=PHASE_SECONDS)
        assert not any(group_alive(pid) for pid in old_pids)
        assert not {_instance_of(d) for d in _serving_processes(local, "e").values()} & old_ids
        holder.join(timeout=PHASE_SECONDS)
        assert json.loads(held_answer[0]["Data"])["model"] == "one"
        _shaped(described)
        assert described["EndpointConfigName"] == "c2"
        assert "PendingDeploymentSummary" not in described and "FailureReason" not in described
        assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
        second = _instances(local, "e")
        assert len(second) == 2 and not {i["Id"] for i in second} & old_ids
        in_service = time.monotonic()
        load.until_answered_by("two", after=in_service)
        assert load.sent_after(in_service) == {"two"}

        # a second update, to another model, through botocore's waiter
        local.sm.update_endpoint(EndpointName="e", EndpointConfigName="c3")
        local.sm.get_waiter("endpoint_in_service").wait(EndpointName="e",
                                                        WaiterConfig=_waiter_config())
        described = local.sm.describe_endpoint(EndpointName="e")
        assert described["EndpointStatus"] == "InService"
        assert described["EndpointConfigName"] == "c3"
        running = {_instance_of(d) for d in _serving_processes(local, "e").values()}
        assert running == {i["Id"] for i in _instances(local, "e")}
        assert len(running) == 1 and not running & {i["Id"] for i in second}
        in_service = time.monotonic()
        load.until_answered_by("three", after=in_service)
        assert load.sent_after(in_service) == {"three"}

    assert load.errors == [], load.errors[:3]
    for thread in load.answers:  # per client, a later request never reached an older fleet
        order = [ORDER[model] for _, model in thread]
        assert order == sorted(order)
    assert set(load.models()) == {"one", "two", "three"}


def test_a_new_fleet_that_cannot_start_is_rolled_back_without_a_failed_request(
        local: Local) -> None:
    local.model("one", GATED, value="one")
    local.model("broken", BROKEN)
    local.model("two", GATED, value="two")
    local.config("c1", ("AllTraffic", "one", 1, 1.0))
    local.config("bad", ("AllTraffic", "broken", 2, 1.0))
    local.config("c2", ("AllTraffic", "two", 1, 1.0))
    local.endpoint("e", "c1")
    before = _instances(local, "e")
    waiter = local.sm.get_waiter("endpoint_in_service")

    with Load(local, "e").running() as load:
        load.until_answered_by("one", after=0.0)
        local.sm.update_endpoint(EndpointName="e", EndpointConfigName="bad")
        assert local.sm.describe_endpoint(EndpointName="e")["EndpointStatus"] == "Updating"
        waiter.wait(EndpointName="e", WaiterConfig=_waiter_config())
        described = local.sm.describe_endpoint(EndpointName="e")
        _shaped(described)
        assert described["EndpointStatus"] == "InService"
        assert described["EndpointConfigName"] == "c1"
        assert "rolled back" in described["FailureReason"]
        assert "weights file is corrupt: checksum mismatch" in described["FailureReason"]
        assert "PendingDeploymentSummary" not in described
        # the broken fleet is gone; the old instance never stopped serving
        assert _instances(local, "e") == before
        running = {_instance_of(d) for d in _serving_processes(local, "e").values()}
        assert running == {i["Id"] for i in before}
        mark = time.monotonic()
        load.until_answered_by("one", after=mark)
        assert load.sent_after(mark) == {"one"}

        # the next update clears the reason
        local.sm.update_endpoint(EndpointName="e", EndpointConfigName="c2")
        assert "FailureReason" not in local.sm.describe_endpoint(EndpointName="e")
        waiter.wait(EndpointName="e", WaiterConfig=_waiter_config())
        described = local.sm.describe_endpoint(EndpointName="e")
        assert described["EndpointConfigName"] == "c2" and "FailureReason" not in described
        in_service = time.monotonic()
        load.until_answered_by("two", after=in_service)
        assert load.sent_after(in_service) == {"two"}

    assert load.errors == [], load.errors[:3]
    assert set(load.models()) == {"one", "two"}
