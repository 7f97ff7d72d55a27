"""toolkit.training.distributed: waiting for peers and the torchrun command."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.errors import OptmlError
from toolkit.training.distributed import HostResolutionError, TorchrunPlan, wait_for_hosts


class FakeNetwork:
    """A resolver whose hosts appear at given times, driven by a clock that only sleep moves."""

    def __init__(self, appear_at: dict[str, float], error: type[Exception] = socket.gaierror
                 ) -> None:
        self.appear_at = appear_at
        self.error = error
        self.now = 1000.0
        self.start = self.now
        self.sleeps: list[float] = []
        self.lookups: list[str] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds

    def resolve(self, host: str) -> str:
        self.lookups.append(host)
        if self.now - self.start >= self.appear_at.get(host, float("inf")):
            return "10.0.0.1"
        raise self.error(f"cannot resolve {host}")

    def wait(self, hosts: Iterable[str], timeout: float, **kwargs: float) -> None:
        wait_for_hosts(list(hosts), timeout, resolve=self.resolve, sleep=self.sleep,
                       clock=self.clock, **kwargs)


def test_resolvable_hosts_return_at_once() -> None:
    net = FakeNetwork({"algo-1": 0, "algo-2": 0})
    net.wait(["algo-1", "algo-2"], 10)
    assert net.sleeps == []
    assert net.lookups == ["algo-1", "algo-2"]


def test_backoff_doubles_and_is_capped() -> None:
    net = FakeNetwork({"algo-1": 0, "algo-2": 20.0})
    net.wait(["algo-1", "algo-2"], 300, initial_delay=0.5, max_delay=4.0)
    assert net.sleeps[:5] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert set(net.sleeps[3:]) == {4.0}
    assert net.now - net.start >= 20.0


def test_default_backoff_starts_at_a_tenth_and_caps_at_five() -> None:
    net = FakeNetwork({"algo-2": 30.0})
    net.wait(["algo-2"], 300)
    assert net.sleeps[:7] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0])
    assert max(net.sleeps) == 5.0


def test_resolved_hosts_are_not_looked_up_again() -> None:
    net = FakeNetwork({"algo-1": 0, "algo-2": 1.0})
    net.wait(["algo-1", "algo-2"], 60, initial_delay=0.4)
    assert net.lookups.count("algo-1") == 1
    assert net.lookups.count("algo-2") > 1


def test_duplicate_hosts_are_looked_up_once_per_round() -> None:
    net = FakeNetwork({"algo-1": 0})
    net.wait(["algo-1", "algo-1", "algo-1"], 10)
    assert net.lookups == ["algo-1"]


def test_timeout_names_every_missing_host() -> None:
    net = FakeNetwork({"algo-1": 0})
    with pytest.raises(HostResolutionError) as info:
        net.wait(["algo-1", "algo-2", "algo-3"], 10, initial_delay=1.0, max_delay=2.0)
    message = str(info.value)
    assert "algo-2" in message and "algo-3" in message
    assert "algo-1" not in message
    assert "10 s" in message
    assert isinstance(info.value, OptmlError)


def test_never_sleeps_past_the_deadline() -> None:
    net = FakeNetwork({})
    with pytest.raises(HostResolutionError):
        net.wait(["algo-9"], 7.5, initial_delay=1.0, max_delay=5.0)
    assert net.now - net.start == pytest.approx(7.5)
    assert net.sleeps == pytest.approx([1.0, 2.0, 4.0, 0.5])


def test_zero_timeout_tries_once() -> None:
    net = FakeNetwork({})
    with pytest.raises(HostResolutionError):
        net.wait(["algo-2"], 0)
    assert net.lookups == ["algo-2"]
    assert net.sleeps == []


@pytest.mark.parametrize("error", [socket.gaierror, socket.herror, OSError, UnicodeError])
def test_resolver_errors_mean_not_yet(error: type[Exception]) -> None:
    net = FakeNetwork({"algo-2": 0.3}, error=error)
    net.wait(["algo-2"], 10)
    assert net.sleeps


def test_unexpected_resolver_errors_propagate() -> None:
    def broken(host: str) -> str:
        raise RuntimeError("resolver bug")

    with pytest.raises(RuntimeError):
        wait_for_hosts(["algo-1"], 10, resolve=broken, sleep=lambda s: None, clock=lambda: 0.0)


def test_real_resolver_on_localhost() -> None:
    wait_for_hosts(["localhost", "127.0.0.1"], 5)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.from_regex(r"algo-[1-9]", fullmatch=True),
                       st.floats(min_value=0, max_value=60), min_size=1, max_size=4),
       st.floats(min_value=0.01, max_value=2), st.floats(min_value=0.5, max_value=10))
def test_waits_until_the_last_host_or_the_timeout(appear_at: dict[str, float], initial: float,
                                                  cap: float) -> None:
    net = FakeNetwork(appear_at)
    timeout = 30.0
    if max(appear_at.values()) <= timeout:
        net.wait(appear_at, timeout, initial_delay=initial, max_delay=cap)
        assert net.now - net.start >= max(appear_at.values())
    else:
        with pytest.raises(HostResolutionError):
            net.wait(appear_at, timeout, initial_delay=initial, max_delay=cap)
    assert net.now - net.start <= timeout + 1e-9
    assert all(s <= max(cap, initial) + 1e-9 for s in net.sleeps)


# -- TorchrunPlan ----------------------------------------------------------------------------

PLAN = TorchrunPlan(nnodes=3, nproc_per_node=4, node_rank=1, master_addr="algo-1",
                    master_port=7777)


def test_command_for_a_python_script() -> None:
    argv = PLAN.command(["/opt/ml/code/train.py", "--lr", "0.1"], python="/py")
    assert argv == ["/py", "-m", "torch.distributed.run",
                    "--nnodes", "3", "--nproc-per-node", "4", "--node-rank", "1",
                    "--master-addr", "algo-1", "--master-port", "7777",
                    "/opt/ml/code/train.py", "--lr", "0.1"]


def test_command_for_an_executable_uses_no_python() -> None:
    argv = PLAN.command(["/opt/ml/code/train.sh", "a b"], python="/py", is_python=False)
    assert argv[-3:] == ["--no-python", "/opt/ml/code/train.sh", "a b"]


def test_command_defaults_to_this_interpreter() -> None:
    assert PLAN.command(["x.py"])[0] == sys.executable


def _torchrun_args(argv: list[str]) -> dict[str, object]:
    """Parse our argv with torchrun's own argument parser (the real component)."""
    from torch.distributed.run import get_args_parser

    assert argv[1:3] == ["-m", "torch.distributed.run"]
    return vars(get_args_parser().parse_args(argv[3:]))


def test_torchrun_parses_a_script_command() -> None:
    args = _torchrun_args(PLAN.command(["/opt/ml/code/train.py", "--lr", "0.1", "--x", "a b"]))
    assert args["nnodes"] == "3"
    assert args["nproc_per_node"] == "4"
    assert args["node_rank"] == 1
    assert args["master_addr"] == "algo-1"
    assert args["master_port"] == 7777
    assert args["no_python"] is False
    assert args["module"] is False
    assert args["training_script"] == "/opt/ml/code/train.py"
    assert args["training_script_args"] == ["--lr", "0.1", "--x", "a b"]


def test_torchrun_parses_a_module_and_an_executable_command() -> None:
    module = _torchrun_args(PLAN.command(["-m", "trainer", "--epochs", "2"]))
    assert module["module"] is True
    assert module["training_script"] == "trainer"
    assert module["training_script_args"] == ["--epochs", "2"]
    executable = _torchrun_args(PLAN.command(["/c/train.sh", "--a", "1"], is_python=False))
    assert executable["no_python"] is True
    assert executable["training_script"] == "/c/train.sh"


def test_environment_with_an_interface() -> None:
    assert PLAN.environment("eth0") == {
        "MASTER_ADDR": "algo-1", "MASTER_PORT": "7777", "NODE_RANK": "1", "NNODES": "3",
        "WORLD_SIZE": "12", "GLOO_SOCKET_IFNAME": "eth0", "NCCL_SOCKET_IFNAME": "eth0"}


@pytest.mark.parametrize("interface", [None, ""])
def test_environment_without_an_interface(interface: str | None) -> None:
    env = PLAN.environment(interface)
    assert "GLOO_SOCKET_IFNAME" not in env
    assert "NCCL_SOCKET_IFNAME" not in env
    assert env["WORLD_SIZE"] == "12"


@given(st.integers(1, 64), st.integers(1, 16), st.data())
def test_world_size_is_nodes_times_processes(nnodes: int, nproc: int, data: st.DataObject
                                             ) -> None:
    rank = data.draw(st.integers(0, nnodes - 1))
    plan = TorchrunPlan(nnodes=nnodes, nproc_per_node=nproc, node_rank=rank,
                        master_addr="algo-1", master_port=29500)
    env = plan.environment("eth0")
    assert int(env["WORLD_SIZE"]) == nnodes * nproc
    assert env["NODE_RANK"] == str(rank)
    argv = plan.command(["t.py"], python="py")
    assert argv[argv.index("--node-rank") + 1] == str(rank)
    assert argv[argv.index("--nnodes") + 1] == str(nnodes)
