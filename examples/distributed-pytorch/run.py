#!/usr/bin/env python3
"""Example 4: distributed PyTorch -- 2 hosts x 2 processes with torchrun (gloo), a checkpoint
every epoch, and a simulated spot interruption that resumes from the last checkpoint.

Trains a tiny MLP with managed spot training on; local mode interrupts the first attempt after
``--interrupt-after`` seconds (OPTML_LOCAL_SPOT_INTERRUPTION_AFTER), restores the checkpoints
and runs again. Then it checks that all 4 ranks ended with the same weights, deploys the
TorchScript model behind optml's default PyTorch handlers and invokes it.

    python examples/distributed-pytorch/run.py [--backend auto|docker|process] [--output DIR]
                                               [--interrupt-after SECONDS]
"""

from __future__ import annotations

import json
import os
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.settings import Settings

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402 -- examples/common.py, the examples' shared glue

IMAGE = "optml-examples/distributed-pytorch:latest"
PYTORCH_HANDLERS = HERE.parents[1] / "containers" / "pytorch" / "optml_pytorch_handlers.py"
RESUME = re.compile(r"rank=(\d+) host=(\S+) resume_epoch=(\d+) world_size=(\d+)")


def write_data(root: Path) -> None:
    """1024 rows (label first): y = 0.8·x0 − 0.5·x1 + 0.3·tanh(2·x2) + noise; x3 is noise."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1024, 4))
    y = 0.8 * x[:, 0] - 0.5 * x[:, 1] + 0.3 * np.tanh(2 * x[:, 2]) \
        + rng.normal(scale=0.05, size=len(x))
    (root / "train").mkdir(parents=True)
    np.savetxt(root / "train" / "train.csv", np.column_stack([y, x]), delimiter=",", fmt="%.6f")


def attempts_from_log(log: Path) -> list[dict[str, Any]]:
    """Each training attempt's ``resume_epoch`` and host per rank, from the job's log (local
    mode's own ``optml | Restarting: ...`` line separates the attempts)."""
    attempts: list[dict[str, Any]] = [{"resume_epoch": {}, "hosts": {}, "world_size": None}]
    for line in log.read_text().splitlines():
        if line.startswith("optml | Restarting:"):
            attempts.append({"resume_epoch": {}, "hosts": {}, "world_size": None})
        elif match := RESUME.search(line):
            rank, host, epoch, world = match.groups()
            attempts[-1]["resume_epoch"][int(rank)] = int(epoch)
            attempts[-1]["hosts"][int(rank)] = host
            attempts[-1]["world_size"] = int(world)
    return attempts


def main(argv: list[str] | None = None) -> int:
    parser = common.example_parser(__doc__)
    parser.add_argument("--interrupt-after", type=float, default=15.0,
                        help="seconds into the first attempt when the spot reclaim comes")
    args = parser.parse_args(argv)
    run = common.start(HERE.name, args.output, args.backend, "optml/pytorch:latest")
    if run.backend == "docker":
        common.build_image(HERE, IMAGE)
    # The spot emulation is a setting of local mode's job runner, not of the job request.
    settings = Settings.from_environ(
        {**os.environ, "OPTML_LOCAL_SPOT_INTERRUPTION_AFTER": str(args.interrupt_after)})
    sm, serving_sm, rt = run.clients(settings)
    write_data(run.root / "data")

    request = run.training_request(HERE / "job.json", HERE / "code")
    print(f"[train] 2 hosts x {request['Environment']['OPTML_NPROC_PER_NODE']} processes, "
          f"spot interruption after {args.interrupt_after:g} s", flush=True)
    job = common.train(sm, request, run.state)
    transitions = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    attempts = attempts_from_log(run.state / "training-jobs" / request["TrainingJobName"] /
                                 "logs" / "all.log")
    checkpoints = sorted(p.name for p in (run.root / "checkpoints").glob("epoch-*.pt"))
    print(f"[train] {job['TrainingJobStatus']}; transitions {' -> '.join(transitions)}")
    for number, attempt in enumerate(attempts, 1):
        print(f"[train] attempt {number}: resume_epoch per rank {attempt['resume_epoch']} "
              f"(world size {attempt['world_size']})")
    print(f"[train] checkpoints in {run.root / 'checkpoints'}: {checkpoints}")
    print(f"[train] TrainingTimeInSeconds {job['TrainingTimeInSeconds']}, "
          f"BillableTimeInSeconds {job['BillableTimeInSeconds']}")

    model_data = job["ModelArtifacts"]["S3ModelArtifacts"]
    model_dir = run.root / "model"
    with tarfile.open(model_data.removeprefix("file://")) as tar:
        tar.extractall(model_dir, filter="data")
    ranks = {p.stem: json.loads(p.read_text()) for p in sorted((model_dir / "ranks").glob("*"))}
    digests = {r["rank"]: r["weights_sha256"][:16] for r in ranks.values()}
    print(f"[model] final weights SHA-256 per rank {digests}: "
          f"{'identical' if len(set(digests.values())) == 1 else 'DIFFERENT'}")

    import torch  # after training: only needed for the local reference prediction

    queries = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    local = torch.jit.load(str(model_dir / "model.pt")).eval()
    with torch.inference_mode():
        reference = local(torch.from_numpy(queries)).numpy().reshape(-1)
    environment = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    if run.serving == "process":  # no image: point optml serve at the handlers the image sets
        environment["OPTML_DEFAULT_HANDLERS"] = str(PYTORCH_HANDLERS)
    container = {"Image": IMAGE, "ModelDataUrl": model_data, "Environment": environment}
    with common.deployed(serving_sm, HERE.name, container) as endpoint:
        answer = rt.invoke_endpoint(EndpointName=endpoint, Body=json.dumps(queries.tolist()),
                                    ContentType="application/json", Accept="application/json")
        served = np.asarray(json.loads(answer["Body"].read()), dtype=np.float64).reshape(-1)
    truth = 0.8 * queries[:, 0] - 0.5 * queries[:, 1] + 0.3 * np.tanh(2 * queries[:, 2])
    print(f"[invoke] served {np.round(served, 4)}; TorchScript here {np.round(reference, 4)}; "
          f"generating function {np.round(truth, 4)}")

    summary = {"backend": run.backend, "serving_backend": run.serving,
               "status": job["TrainingJobStatus"], "transitions": transitions,
               "attempts": attempts, "checkpoints": checkpoints,
               "training_seconds": job["TrainingTimeInSeconds"],
               "billable_seconds": job["BillableTimeInSeconds"],
               "metrics": common.final_metrics(job),
               "ranks": ranks, "model_data": model_data, "served": served.tolist(),
               "reference": reference.tolist(), "truth": truth.tolist()}
    (run.root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[done] summary {run.root / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
