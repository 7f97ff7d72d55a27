"""optml's main demo: train -> deploy -> invoke -> batch transform -> the same through the
service's wire API with plain boto3, all on this machine.

Run it with ``scripts/demo`` (which sets up the virtual environment first) or
``python examples/quickstart/demo.py [--backend auto|docker|process] [--output DIR]``.

Everything goes through local mode's boto3-shaped clients, so the same calls work against the
service with ``boto3.client("sagemaker")``; the last step reaches the same job and endpoint with
boto3 itself, through ``local_mode.server()`` (what ``optml local api`` runs). The data is generated here from a known linear
function, so every prediction printed can be checked against the truth. The run's state, data
and artifacts stay under ``<output>/run-<time>/`` (printed); the endpoint and every process it
started are gone when the demo exits, even after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

# local_mode.client(...) as a package attribute is shadowed by the submodule of the same name
# once that is imported; the submodule's own function is always the function.
from local_mode import client as local_client

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402 -- examples/common.py: where a job finds the code, on either backend

IMAGE = "optml-examples/quickstart:latest"
BASE_IMAGE = "optml/base:latest"
TRUE_WEIGHTS = np.array([2.0, -3.0, 0.5, 1.5])
TRUE_BIAS = 4.0
METRICS = [{"Name": "train:mse", "Regex": r"train_mse=([0-9.eE+-]+)"},
           {"Name": "validation:mse", "Regex": r"validation_mse=([0-9.eE+-]+)"}]


def truth(features: np.ndarray) -> np.ndarray:
    return features @ TRUE_WEIGHTS + TRUE_BIAS


# -- data ------------------------------------------------------------------------------------

def write_csv(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows, delimiter=",", fmt="%.6f")


def generate_data(root: Path, seed: int = 7) -> dict[str, Path]:
    """Train and validation CSVs (label first, no header) and a folder of unlabelled CSVs."""
    rng = np.random.default_rng(seed)

    def labelled(n: int) -> np.ndarray:
        x = rng.uniform(-1, 1, size=(n, len(TRUE_WEIGHTS)))
        y = truth(x) + rng.normal(0, 0.05, size=n)
        return np.column_stack([y, x])

    write_csv(root / "train" / "train.csv", labelled(800))
    write_csv(root / "validation" / "validation.csv", labelled(200))
    for part in range(3):
        write_csv(root / "batch" / f"part-{part}.csv",
                  rng.uniform(-1, 1, size=(40, len(TRUE_WEIGHTS))))
    return {name: root / name for name in ("train", "validation", "batch")}


# -- backends --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Backends:
    training: str
    serving: str
    why: list[str] = field(default_factory=list)


def choose_backends(requested: str) -> Backends:
    """Docker when asked for, or (auto) when an engine answers and optml's images exist."""
    from local_mode.docker_engine import docker_reachable

    if requested == "process":
        return Backends("process", "process", ["process backend requested"])
    why: list[str] = []
    if not docker_reachable():
        if requested == "docker":
            raise SystemExit("--backend docker: no Docker engine answers (scripts/docker-up.sh)")
        return Backends("process", "process", ["no Docker engine reachable"])
    if not _image_exists(BASE_IMAGE):
        if requested == "docker":
            raise SystemExit(f"--backend docker: image {BASE_IMAGE} is missing "
                             "(scripts/build-images.sh base)")
        reason = f"Docker is reachable but {BASE_IMAGE} is not built (scripts/build-images.sh)"
        return Backends("process", "process", [reason])
    why.append(f"Docker engine reachable and {BASE_IMAGE} present")
    return Backends("docker", "docker", why)


def _image_exists(tag: str) -> bool:
    import docker

    client = docker.from_env(timeout=10)
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False
    finally:
        client.close()



def build_image() -> None:
    """The training image: optml's base plus this example's code (see ./Dockerfile)."""
    import docker

    client = docker.from_env(timeout=300)
    try:
        client.images.build(path=str(HERE), tag=IMAGE, rm=True, network_mode="none")
    finally:
        client.close()


# -- the run ---------------------------------------------------------------------------------

@dataclass
class Run:
    root: Path
    backends: Backends
    name: str
    sm: Any = None
    rt: Any = None
    summary: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(text, flush=True)

    # 1. training
    def train(self, data: dict[str, Path]) -> str:
        def channel(name: str) -> dict[str, Any]:
            return {"ChannelName": name, "ContentType": "text/csv", "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data[name].as_uri(),
                                 "S3DataDistributionType": "FullyReplicated"}}}

        request = {
            "TrainingJobName": self.name, "RoleArn": "arn:aws:iam::000000000000:role/local",
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File",
                                       "MetricDefinitions": METRICS},
            "HyperParameters": {"epochs": "300", "learning-rate": "0.1"},
            "InputDataConfig": [channel("train"), channel("validation")],
            "OutputDataConfig": {"S3OutputPath": (self.root / "artifacts").as_uri()},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                               "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}}
        # No Environment on Docker: the image runs /opt/ml/code/train.py. The process backend
        # gets the code directory as the submit directory (common.code_environment).
        self.sm.create_training_job(**common.with_code(
            request, self.backends.training, HERE / "code"))
        self.say(f"[train] job {self.name} started on the {self.backends.training} backend")
        job = wait_for(self.sm.describe_training_job, "TrainingJobStatus",
                       TrainingJobName=self.name)
        self.say(f"[train] status {job['TrainingJobStatus']} "
                 f"({job['SecondaryStatus']}) in {job.get('TrainingTimeInSeconds', '?')} s")
        if job["TrainingJobStatus"] != "Completed":
            log = self.root / "state" / "training-jobs" / self.name / "logs" / "all.log"
            raise SystemExit(f"training failed: {job.get('FailureReason')}\nlog: {log}")
        metrics = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
        for metric, value in sorted(metrics.items()):
            self.say(f"[train] final {metric} = {value:.6f}")
        model_data = job["ModelArtifacts"]["S3ModelArtifacts"]
        self.say(f"[train] model artifact {model_data}")
        self.summary.update(training_status=job["TrainingJobStatus"], metrics=metrics,
                            model_data=model_data)
        return str(model_data)

    # 2. deploy
    def deploy(self, model_data: str) -> None:
        self.sm.create_model(
            ModelName=self.name, ExecutionRoleArn="arn:aws:iam::000000000000:role/local",
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": model_data,
                              "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}})
        self.sm.create_endpoint_config(EndpointConfigName=self.name, ProductionVariants=[
            {"VariantName": "main", "ModelName": self.name, "InitialInstanceCount": 2,
             "InstanceType": "ml.m5.large"}])
        self.sm.create_endpoint(EndpointName=self.name, EndpointConfigName=self.name)
        self.say(f"[deploy] endpoint {self.name}: 2 instances on the "
                 f"{self.backends.serving} backend")
        endpoint = wait_for(self.sm.describe_endpoint, "EndpointStatus",
                            EndpointName=self.name)
        if endpoint["EndpointStatus"] != "InService":
            raise SystemExit(f"endpoint {endpoint['EndpointStatus']}: "
                             f"{endpoint.get('FailureReason')}")
        count = endpoint["ProductionVariants"][0]["CurrentInstanceCount"]
        self.say(f"[deploy] {endpoint['EndpointStatus']} with {count} healthy instances")
        self.summary["endpoint_instances"] = count

    # 3. invoke
    def invoke(self, rows: np.ndarray) -> None:
        csv_body = "\n".join(",".join(f"{v:.6f}" for v in row) for row in rows[:3])
        csv_out = self._invoke(csv_body, "text/csv")
        json_out = self._invoke(json.dumps(rows[3:5].round(6).tolist()), "application/json")
        predictions = [float(line) for line in csv_out.split()] + \
            [float(v) for v in json.loads(json_out)]
        self.summary["predictions"] = []
        for kind, row, got in zip(["csv"] * 3 + ["json"] * 2, rows[:5], predictions):
            want = float(truth(row.round(6)))
            self.say(f"[invoke] {kind:4} {np.array2string(row, precision=3):>32} -> "
                     f"{got:8.4f} (true {want:8.4f})")
            self.summary["predictions"].append({"features": row.round(6).tolist(),
                                                "prediction": got, "true": want,
                                                "content_type": kind})

    def _invoke(self, body: str, content_type: str) -> str:
        response = self.rt.invoke_endpoint(EndpointName=self.name, Body=body,
                                           ContentType=content_type, Accept=content_type)
        return str(response["Body"].read().decode())

    # 4. batch transform
    def transform(self, batch_dir: Path) -> None:
        output = self.root / "transform"
        self.sm.create_transform_job(
            TransformJobName=self.name, ModelName=self.name,
            BatchStrategy="MultiRecord", MaxPayloadInMB=1,
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                            "S3Uri": batch_dir.as_uri()}},
                            "ContentType": "text/csv", "SplitType": "Line"},
            TransformOutput={"S3OutputPath": output.as_uri(), "Accept": "text/csv",
                             "AssembleWith": "Line"},
            DataProcessing={"JoinSource": "Input"},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
        self.say(f"[transform] job {self.name} over {len(list(batch_dir.iterdir()))} CSV files "
                 "(SplitType Line, MultiRecord, AssembleWith Line, JoinSource Input)")
        job = wait_for(self.sm.describe_transform_job, "TransformJobStatus",
                       TransformJobName=self.name)
        self.say(f"[transform] status {job['TransformJobStatus']}")
        if job["TransformJobStatus"] != "Completed":
            raise SystemExit(f"transform failed: {job.get('FailureReason')}")
        outputs = sorted(output.glob("*.out"))
        worst = 0.0
        rows = 0
        for path in outputs:
            for line in path.read_text().splitlines():
                values = np.array([float(v) for v in line.split(",")])
                worst = max(worst, abs(values[-1] - float(truth(values[:-1]))))
                rows += 1
        first = outputs[0].read_text().splitlines()[0] if outputs else ""
        self.say(f"[transform] {len(outputs)} files, {rows} rows -> {output}")
        self.say(f"[transform] first joined row (input features, prediction): {first}")
        self.say(f"[transform] largest |prediction - truth| over all rows: {worst:.4f}")
        self.summary.update(transform_status=job["TransformJobStatus"],
                            transform_files=[p.name for p in outputs], transform_rows=rows,
                            transform_max_error=worst, transform_output=str(output))

    # 5. the same job and endpoint through the service's own wire API, with plain boto3
    def wire_api(self, state: Path, row: np.ndarray) -> None:
        """What ``eval "$(optml local api --env)"`` gives unchanged boto3, SageMaker SDK and AWS
        CLI code: the service's protocols on 127.0.0.1, SigV4-signed with the credentials the
        server generated, on the same state directory."""
        import boto3

        import local_mode

        with local_mode.server(state_dir=state, record=False) as api:
            session = boto3.session.Session()
            sm = session.client("sagemaker", **api.endpoint.client_args("sagemaker"))
            runtime = session.client("sagemaker-runtime",
                                     **api.endpoint.client_args("sagemaker-runtime"))
            job = sm.describe_training_job(TrainingJobName=self.name)
            body = ",".join(f"{v:.6f}" for v in row)
            answer = runtime.invoke_endpoint(EndpointName=self.name, Body=body,
                                             ContentType="text/csv", Accept="text/csv")
            prediction = float(answer["Body"].read().decode())
            self.say(f"[api] optml local api on {api.url}: boto3 describe_training_job -> "
                     f"{job['TrainingJobStatus']}; boto3 invoke_endpoint -> {prediction:.4f} "
                     f"(true {float(truth(row.round(6))):.4f})")
            self.say('[api] eval "$(optml local api --env)" points unchanged boto3, SageMaker '
                     "SDK and AWS CLI code at local mode (docs/wire-api.md)")
            self.summary["wire_api"] = {"training_status": job["TrainingJobStatus"],
                                        "prediction": prediction,
                                        "variant": answer["InvokedProductionVariant"]}

    # 6. clean up
    def clean_up(self) -> None:
        """Delete the endpoint (stops every instance), its config and the model."""
        steps = [("endpoint", self.sm.delete_endpoint, {"EndpointName": self.name}),
                 ("endpoint config", self.sm.delete_endpoint_config,
                  {"EndpointConfigName": self.name}),
                 ("model", self.sm.delete_model, {"ModelName": self.name})]
        for what, call, kwargs in steps:
            try:
                call(**kwargs)
                self.say(f"[clean-up] deleted {what} {self.name}")
            except self.sm.exceptions.ValidationException:
                pass  # never created (the demo stopped earlier)
        left = leftover_processes(self.root)
        self.say(f"[clean-up] processes left under {self.root}: {len(left)}")
        self.summary["processes_left"] = left


def wait_for(describe: Any, status_field: str, **name: str) -> dict[str, Any]:
    """Poll ``describe`` until the resource leaves its in-progress states (the waiters raise on
    failure; the demo wants the description, whose FailureReason says why)."""
    while (described := describe(**name))[status_field] in ("InProgress", "Creating",
                                                             "Stopping", "Updating"):
        time.sleep(0.2)
    return dict(described)


def leftover_processes(root: Path) -> list[int]:
    """Pids of processes (other than this one) whose command line or cwd is under ``root``."""
    mine, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == mine:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (str(root) in cmdline or cwd.startswith(str(root))):
            found.append(int(entry.name))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["auto", "docker", "process"], default="auto")
    parser.add_argument("--output", type=Path, default=Path("demo-output"),
                        help="parent of this run's directory (default ./demo-output)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    root = (args.output / datetime.now().strftime("run-%Y%m%d-%H%M%S-%f")).resolve()
    root.mkdir(parents=True)
    backends = choose_backends(args.backend)
    print(f"optml demo: everything of this run is under {root}", flush=True)
    print(f"[backend] training on {backends.training}, serving on {backends.serving} "
          f"({'; '.join(backends.why)})", flush=True)
    if backends.training == "docker":
        print(f"[backend] building {IMAGE} from {HERE / 'Dockerfile'}", flush=True)
        build_image()

    state = root / "state"
    sm = local_client("sagemaker", state_dir=state, backend=backends.training)
    serving_sm = sm if backends.serving == backends.training else \
        local_client("sagemaker", state_dir=state, backend=backends.serving)
    run = Run(root, backends, "quickstart", serving_sm,
              local_client("sagemaker-runtime", state_dir=state))
    run.summary["backends"] = {"training": backends.training, "serving": backends.serving,
                               "why": backends.why}
    data = generate_data(root / "data")
    print(f"[data] {data['train']}, {data['validation']} and {data['batch']}", flush=True)
    try:
        run.sm = sm
        model_data = run.train(data)
        run.sm = serving_sm
        run.deploy(model_data)
        test_rows = np.random.default_rng(99).uniform(-1, 1, size=(5, len(TRUE_WEIGHTS)))
        run.invoke(test_rows)
        run.transform(data["batch"])
        run.wire_api(state, test_rows[0])
    finally:
        run.sm = serving_sm
        run.clean_up()
        run.summary["seconds"] = round(time.monotonic() - started, 1)
        (root / "summary.json").write_text(json.dumps(run.summary, indent=2))
    print(f"[done] in {run.summary['seconds']} s. Logs and state: {state}; "
          f"model: {run.summary.get('model_data')}; summary: {root / 'summary.json'}",
          flush=True)
    return 1 if run.summary["processes_left"] else 0


if __name__ == "__main__":
    sys.exit(main())
