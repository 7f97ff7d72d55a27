"""The runner's once-a-period task: datums written each period and at stop, the hook called
with what is kept, a failing period logged and survived."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from local_mode.cloudwatch.datums import Datum, endpoint_metrics_file, read_datums
from local_mode.cloudwatch.recorder import EndpointMetrics
from local_mode.endpoints.metering import Metering
from local_mode.endpoints.router import Instance, Router, Variant
from local_mode.endpoints.spec import ContainerSpec, ModelSpec, VariantSpec
from local_mode.state import StateStore
from toolkit.settings import Settings


def metrics_file(store: StateStore, endpoint: str) -> Path:
    """Where the endpoint's runner writes its datums."""
    path = endpoint_metrics_file(store.root, endpoint)
    assert path is not None
    return path


class Runner:
    """The runner's parts metering reads: a real router, meters, resource and settings."""

    def __init__(self, root: Path) -> None:
        self.store = StateStore(root)
        self.resource = self.store.create("endpoints", "ep", {"EndpointName": "ep"}, {})
        self.settings = Settings.from_environ({"OPTML_LOCAL_METRIC_PERIOD_SECONDS": "1"})
        self.metrics: EndpointMetrics | None = EndpointMetrics("ep")
        self.router = Router("ep", root)
        model = ModelSpec("m", (ContainerSpec("primary", None, None),))
        self.variant = Variant(VariantSpec("AllTraffic", "m", 1, "local", 1.0, 600.0), model,
                               meter=self.metrics.meter("AllTraffic"))
        self.variant.instances.append(Instance("AllTraffic-1", [], [], healthy=True))
        self.router.variants = [self.variant]
        self.stopping = asyncio.Event()


class Hook:
    def __init__(self, fail_first: bool = False) -> None:
        self.seen: list[list[Datum]] = []
        self.fail_first = fail_first

    async def step(self, now: float, recent: list[Datum]) -> None:
        self.seen.append(recent)
        if self.fail_first and len(self.seen) == 1:
            raise RuntimeError("a broken scaling step")


def test_each_period_is_written_and_the_open_one_at_stop(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    runner = Runner(tmp_path / "state")
    hook = Hook(fail_first=True)

    async def scenario() -> None:
        task = asyncio.ensure_future(Metering(runner, hook).run())
        assert runner.variant.meter is not None
        runner.variant.meter.invocation(200, 1, 0.001, 0.002)
        while len(hook.seen) < 2:  # the first step fails; metering goes on
            await asyncio.sleep(0.05)
        runner.variant.meter.invocation(500, 1, 0.001, 0.002)  # lands in the open period
        runner.stopping.set()
        await task
    asyncio.run(asyncio.wait_for(scenario(), 10))

    written = list(read_datums(metrics_file(runner.store, "ep")))
    invocations = [d for d in written if d.metric_name == "Invocations"]
    assert sum(d.sum for d in invocations) == 2
    assert sum(d.sum for d in written if d.metric_name == "Invocation5XXErrors") == 1
    # idle serving periods report 0, so there is a datum for every period that ended
    timestamps = sorted(d.timestamp for d in invocations)
    assert timestamps == sorted(set(timestamps)) and all(t == int(t) for t in timestamps)
    assert any(d.metric_name == "Invocations" for d in hook.seen[-1])
    assert "a broken scaling step" in caplog.text


def test_metrics_go_on_when_the_file_cannot_be_written(tmp_path: Path) -> None:
    runner = Runner(tmp_path / "state")
    metrics_file(runner.store, "ep").mkdir(parents=True)  # a directory where the file should be
    hook = Hook()

    async def scenario() -> None:
        task = asyncio.ensure_future(Metering(runner, hook).run())
        while not hook.seen:
            await asyncio.sleep(0.05)
        runner.stopping.set()
        await task
    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert hook.seen  # still evaluated from what is kept in memory
