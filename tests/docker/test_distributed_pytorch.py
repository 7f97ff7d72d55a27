"""Two PyTorch containers train one model with torchrun (gloo) over a Docker network.

Each host gets different data: only if gradients are really all-reduced between the containers
do both end with the same weights.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import docker
import pytest
import torch

from tests.docker import harness
from tests.docker.frameworks import dataset

pytestmark = [pytest.mark.docker, pytest.mark.slow]

HOSTS = ("algo-1", "algo-2")

DDP_TRAIN = '''
import glob, json, os
import numpy as np
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
torch.manual_seed(0)
files = sorted(glob.glob(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "*.csv")))
data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
x = torch.tensor(data[:, 1:], dtype=torch.float32)
y = torch.tensor(data[:, :1], dtype=torch.float32)
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(x.shape[1], 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(int(os.environ["SM_HP_EPOCHS"])):
    optimizer.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    optimizer.step()
model_dir = os.environ["SM_MODEL_DIR"]
torch.save(model.module.state_dict(), os.path.join(model_dir, "weights.pt"))
with open(os.path.join(model_dir, "rank.json"), "w") as fh:
    json.dump({"rank": dist.get_rank(), "world_size": dist.get_world_size(),
               "host": os.environ["SM_CURRENT_HOST"]}, fh)
dist.barrier()
dist.destroy_process_group()
'''


def _create_host(client: docker.DockerClient, image: str, network: str, host: str,
                 tree: harness.OptMlTree) -> str:
    """A created (not started) container whose only network is ``network``, alias ``host``."""
    api = client.api
    container = api.create_container(
        image, ["train"], hostname=host, labels=harness.LABELS,
        environment={"SAGEMAKER_PROGRAM": "train.py", "OPTML_HOST_RESOLVE_TIMEOUT": "120"},
        host_config=api.create_host_config(
            network_mode=network, binds={str(tree.root): {"bind": "/opt/ml", "mode": "rw"}}),
        networking_config=api.create_networking_config(
            {network: api.create_endpoint_config(aliases=[host])}))
    return container["Id"]


def test_two_containers_end_with_identical_weights(docker_client: docker.DockerClient,
                                                   images: dict[str, str],
                                                   tmp_path: Path) -> None:
    image = images["pytorch"]
    data = dataset(rows=80)
    trees = {
        host: harness.OptMlTree.create(
            tmp_path / host, current_host=host, hosts=HOSTS,
            hyperparameters={"epochs": "30", "sagemaker_torch_distributed_enabled": "true"},
            channels={"train": {"part.csv": harness.csv_text(data[i::2])}},
            code={"train.py": DDP_TRAIN})
        for i, host in enumerate(HOSTS)
    }
    network = docker_client.networks.create(f"optml-test-{uuid.uuid4().hex[:8]}",
                                            driver="bridge", labels=harness.LABELS)
    ids: list[str] = []
    try:
        for host in HOSTS:
            ids.append(_create_host(docker_client, image, network.name, host, trees[host]))
        for container_id in ids:
            docker_client.api.start(container_id)
        statuses = {host: docker_client.api.wait(cid, timeout=600)["StatusCode"]
                    for host, cid in zip(HOSTS, ids)}
        logs = {host: docker_client.api.logs(cid).decode(errors="replace")[-3000:]
                for host, cid in zip(HOSTS, ids)}
        assert statuses == {"algo-1": 0, "algo-2": 0}, logs

        weights = {host: torch.load(trees[host].model_dir / "weights.pt") for host in HOSTS}
        assert weights["algo-1"].keys() == weights["algo-2"].keys()
        for name, tensor in weights["algo-1"].items():
            assert torch.equal(tensor, weights["algo-2"][name]), name
        ranks = sorted((trees[h].model_dir / "rank.json").read_text() for h in HOSTS)
        assert '"world_size": 2' in ranks[0] and '"world_size": 2' in ranks[1]
        assert '"rank": 0' in "".join(ranks) and '"rank": 1' in "".join(ranks)
    finally:
        for container_id in ids:
            docker_client.api.remove_container(container_id, force=True, v=True)
        network.remove()
        harness.reclaim(docker_client, image, tmp_path)
