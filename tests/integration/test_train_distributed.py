"""Two ``train`` processes on this machine form a two-node torchrun job and all-reduce.

The hosts are loopback addresses (127.0.0.1, 127.0.0.2), so they resolve at once and traffic stays
on this machine; each process has its own relocated /opt/ml root, as two containers would.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.integration.trainjob import TrainJob

ALLREDUCE = """
import json, os
import torch
import torch.distributed as dist
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
t = torch.tensor([float(rank + 1)])
dist.all_reduce(t)
info = {"rank": rank, "world": world, "sum": t.item(),
        "master_addr": os.environ["MASTER_ADDR"], "node_rank": os.environ["NODE_RANK"],
        "group_rank": os.environ.get("GROUP_RANK"), "args": __import__("sys").argv[1:]}
with open(os.path.join(os.environ["SM_MODEL_DIR"], f"rank{rank}.json"), "w") as f:
    json.dump(info, f)
dist.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_node_torchrun_allreduce(tmp_path: Path) -> None:
    hosts = ["127.0.0.2", "127.0.0.1"]  # deliberately unsorted: the master is the sorted first
    port = _free_port()
    jobs = [TrainJob.create(tmp_path / host, hosts=hosts, current_host=host, interface="lo",
                            hyperparameters={"sagemaker_torch_distributed_enabled": "true",
                                             "epochs": "2"},
                            code={"train.py": ALLREDUCE}) for host in hosts]
    procs = [job.start(SAGEMAKER_PROGRAM="train.py", OPTML_MASTER_PORT=str(port),
                       OPTML_NPROC_PER_NODE="1", OPTML_HOST_RESOLVE_TIMEOUT="10")
             for job in jobs]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=240))
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    results = {}
    for job in jobs:
        for file in job.layout.model_dir.glob("rank*.json"):
            info = json.loads(file.read_text())
            results[info["rank"]] = info
    assert sorted(results) == [0, 1]
    for info in results.values():
        assert info["world"] == 2
        assert info["sum"] == 3.0
        assert info["master_addr"] == "127.0.0.1"
        assert info["args"] == ["--epochs", "2"]
    # node rank follows the sorted host list: 127.0.0.1 is node 0 even though listed second
    assert json.loads((tmp_path / "127.0.0.1" / "model" / "rank0.json").read_text())[
        "node_rank"] == "0"
