"""Local-mode overhead: a no-op training job from CreateTrainingJob to Completed on the process
backend, against a bare ``python -m toolkit.cli train`` of the same job on a prepared tree.

Run:  .venv/bin/python bench/bench_local_training.py [--repeat 5]

optml: ``create_training_job`` then a waiter (Delay 0.02 s) until Completed; the job has one
File channel of one small file, and its model.tar.gz / output.tar.gz are written to a file://
output path before the job shows Completed. The client is made once (as a user's would be), so
the botocore model load is not counted per job; its first-call cost is printed separately.
Peer: the same user script run by ``python -m toolkit.cli train`` on an /opt/ml tree laid out
beforehand (config files, the channel's file) - what the job costs without local mode around it.
The two are interleaved ``--repeat`` times; best and median are printed (shared machine).
Target: optml <= 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SCRIPT = "import os\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'm'), 'w').write('m')\n"


def _request(name: str, code: Path, data: Path, out: Path) -> dict[str, object]:
    return {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::000000000000:role/bench",
        "AlgorithmSpecification": {"TrainingImage": "bench", "TrainingInputMode": "File"},
        "HyperParameters": {"sagemaker_program": "train.py",
                            "sagemaker_submit_directory": str(code)},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"file://{data}"}}}],
        "OutputDataConfig": {"S3OutputPath": f"file://{out}"},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }


def run_local(client: object, root: Path) -> float:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    client.create_training_job(**_request(name, root / "code", root / "data",  # type: ignore[attr-defined]
                                          root / "out"))
    client.get_waiter("training_job_completed_or_stopped").wait(  # type: ignore[attr-defined]
        TrainingJobName=name, WaiterConfig={"Delay": 0.02, "MaxAttempts": 10**6})
    elapsed = time.perf_counter() - start
    d = client.describe_training_job(TrainingJobName=name)  # type: ignore[attr-defined]
    assert d["TrainingJobStatus"] == "Completed", d
    assert (root / "out" / name / "output" / "model.tar.gz").is_file()
    return elapsed


def prepare_tree(root: Path) -> Path:
    tree = root / "tree"
    config = tree / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(
        {"sagemaker_program": "train.py", "sagemaker_submit_directory": str(root / "code")}))
    (config / "inputdataconfig.json").write_text(json.dumps(
        {"train": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                   "RecordWrapperType": "None"}}))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "lo"}))
    (tree / "input" / "data" / "train").mkdir(parents=True)
    (tree / "input" / "data" / "train" / "a.csv").write_text("1,2\n")
    for sub in ("model", "output/data", "code"):
        (tree / sub).mkdir(parents=True, exist_ok=True)
    return tree


def run_bare(tree: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_", "OPTML_"))}
    env["SAGEMAKER_BASE_DIR"] = str(tree)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "toolkit.cli", "train"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="optml-bench-") as scratch:
        root = Path(scratch)
        (root / "code").mkdir()
        (root / "code" / "train.py").write_text(SCRIPT)
        (root / "data").mkdir()
        (root / "data" / "a.csv").write_text("1,2\n")
        tree = prepare_tree(root)

        from local_mode.sagemaker import SageMakerClient
        from toolkit.settings import Settings

        made = time.perf_counter()
        client = SageMakerClient(Settings.from_environ(), state_dir=root / "state",
                                 backend="process")
        from local_mode.validation import service_model

        service_model()  # the botocore model load a client pays once, on its first request
        print(f"client + botocore model load (once per client): "
              f"{time.perf_counter() - made:.3f} s")
        run_local(client, root)  # warm the page cache for both sides
        run_bare(tree)
        local, bare = [], []
        for _ in range(args.repeat):
            local.append(run_local(client, root))
            bare.append(run_bare(tree))
        for label, values in (("optml local (process backend)", local),
                              ("bare python -m toolkit.cli train", bare)):
            print(f"{label:34s} best {min(values):.3f} s  median {statistics.median(values):.3f} s")
        print(f"ratio optml/bare: best {min(local) / min(bare):.2f}x  "
              f"median {statistics.median(local) / statistics.median(bare):.2f}x  "
              f"(target optml <= 0.5 s: {'met' if min(local) <= 0.5 else 'missed'})")


if __name__ == "__main__":
    main()
