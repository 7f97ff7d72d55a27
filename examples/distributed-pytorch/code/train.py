"""Data-parallel training of a tiny MLP with torchrun (gloo), checkpointing every epoch and
resuming from the newest checkpoint after a (spot) interruption.

optml's ``train`` starts ``torchrun --nnodes 2 --nproc-per-node 2 ... train.py`` on every host
(hyperparameter ``sagemaker_torch_distributed_enabled``, ``OPTML_NPROC_PER_NODE=2``); each of the
4 processes is one rank of one gloo process group spanning both containers.

* Data: the ``train`` channel (CSV, label first); rank *r* of *W* trains on rows r, r+W, ...
  DistributedDataParallel averages the gradients, so every rank holds the same weights.
* Checkpoints: after each epoch rank 0 writes ``epoch-NNNN.pt`` (model + optimizer + epoch) to
  ``SM_CHECKPOINT_DIR``, which the platform syncs with ``CheckpointConfig.S3Uri``. Files are never
  rewritten: a file torn by a kill is skipped on resume, the one before it is used.
* Resume: on start every rank finds the newest checkpoint it can load, the ranks agree on the
  oldest of those (``all_reduce(MIN)``: every host must have it), load it and go on from the next
  epoch. The log line ``resume_epoch=N`` says where.
* Stop signals: optml forwards SIGTERM (a spot reclaim, StopTrainingJob) to every process. The
  handler, installed before torch is imported, only raises a flag; the ranks finish the epoch
  they are in, rank 0 writes its checkpoint, and all ranks agree (``all_reduce(MAX)`` of the
  flags) to stop at that same epoch, so no collective is left half-done and no epoch is lost.
* ``--min-epoch-seconds`` paces the epochs of this toy model (a real epoch takes minutes) so
  the simulated interruption lands in the middle of training.

At the end every rank writes ``ranks/rank-<r>.json`` (a SHA-256 of its weights) to the model
directory, and rank 0 the TorchScript model ``model.pt`` that optml's PyTorch image serves.
"""

from __future__ import annotations

import signal
import time
import types

STARTED = time.monotonic()
STOP_REQUESTED = False


def _request_stop(signum: int, frame: types.FrameType | None) -> None:
    global STOP_REQUESTED
    STOP_REQUESTED = True


signal.signal(signal.SIGTERM, _request_stop)  # first: a signal during `import torch` must count

import argparse  # the imports below come after the handler on purpose
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def say(message: str) -> None:
    """One ``write`` per line: 4 processes share the container's stdout, and ``print`` issues
    the text and the newline as two writes that other ranks' lines can slip between."""
    os.write(1, (message + "\n").encode())


def make_model(features: int, hidden: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.Tanh(),
                               torch.nn.Linear(hidden, 1))


def load_rows(rank: int, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    files = sorted(Path(os.environ["SM_CHANNEL_TRAIN"]).glob("*.csv"))
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])[rank::world]
    return (torch.tensor(data[:, 1:], dtype=torch.float32),
            torch.tensor(data[:, :1], dtype=torch.float32))


def newest_loadable(directory: Path) -> tuple[int, dict | None]:
    """``(epoch, checkpoint)`` of the newest file that loads, ``(-1, None)`` if there is none."""
    for path in sorted(directory.glob("epoch-*.pt"), reverse=True):
        try:
            state = torch.load(path, map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - a torn file: fall back to the one before
            say(f"skipping unreadable checkpoint {path.name}: {exc}")
            continue
        return int(state["epoch"]), state
    return -1, None


def agree(value: int, op: dist.ReduceOp.RedOpType) -> int:
    """The reduction of one integer over all ranks (every rank gets the same answer)."""
    tensor = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(tensor, op=op)
    return int(tensor.item())


def weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--min-epoch-seconds", type=float, default=0.0)
    args = parser.parse_args()

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    host = os.environ["SM_CURRENT_HOST"]
    checkpoints = Path(os.environ["SM_CHECKPOINT_DIR"])
    x, y = load_rows(rank, world)

    model = make_model(x.shape[1], args.hidden)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate, momentum=0.9)
    found, _ = newest_loadable(checkpoints)
    start = agree(found, dist.ReduceOp.MIN) + 1  # the newest epoch every rank can load
    if start > 0:
        state = torch.load(checkpoints / f"epoch-{start - 1:04d}.pt", map_location="cpu")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    say(f"rank={rank} host={host} resume_epoch={start} world_size={world} "
        f"ready_after={time.monotonic() - STARTED:.1f}s")
    ddp = DistributedDataParallel(model)

    stopped_at = None
    for epoch in range(start, args.epochs):
        began = time.monotonic()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        total = 0.0
        for at in range(0, len(x), args.batch_size):
            batch = order[at:at + args.batch_size]
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(ddp(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        while time.monotonic() - began < args.min_epoch_seconds and not STOP_REQUESTED:
            time.sleep(0.05)
        if rank == 0:
            torch.save({"epoch": epoch, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict()},
                       checkpoints / f"epoch-{epoch:04d}.pt")
            say(f"epoch={epoch} loss={total / len(x):.6f} checkpoint=epoch-{epoch:04d}.pt")
        if agree(int(STOP_REQUESTED), dist.ReduceOp.MAX):
            stopped_at = epoch
            break

    if stopped_at is not None:
        say(f"rank={rank} stop_requested after_epoch={stopped_at}: checkpoint saved, exiting")
        dist.destroy_process_group()
        return 0
    model_dir = Path(os.environ["SM_MODEL_DIR"])
    (model_dir / "ranks").mkdir(exist_ok=True)
    (model_dir / "ranks" / f"rank-{rank}.json").write_text(json.dumps(
        {"rank": rank, "host": host, "world_size": world, "start_epoch": start,
         "weights_sha256": weights_digest(model)}))
    if rank == 0:
        torch.jit.save(torch.jit.script(model.eval()), str(model_dir / "model.pt"))
    dist.barrier()
    dist.destroy_process_group()
    say(f"rank={rank} done weights_sha256={weights_digest(model)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
