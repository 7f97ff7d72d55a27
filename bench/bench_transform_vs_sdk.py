"""Batch transform throughput: optml's local mode (Docker backend) against the SageMaker Python
SDK's local mode, same image, same model, same input, same run.

The input is ``--files`` CSV files of ``--lines`` rows of 3 features; the model is a decision
tree fitted here (the scikit-learn the image has) served by ``optml/sklearn``'s default handlers.
Both sides run ``SplitType: Line``, ``MultiRecord``, ``AssembleWith`` unset, ``Accept: text/csv``,
``file://`` in and out, one instance, one request at a time (the SDK supports no more):

Each side is timed in three parts, from the start of the transform:

- **start-up**: to the instance being ready. optml: ``create_transform_job`` until the runner has
  counted the input files (it does so right after its instance answered ``/ping``); SDK:
  ``Transformer.transform`` until its health check passed (it polls every 5 s);
- **transform**: from ready until every ``.out`` file is written, i.e. the requests themselves
  (optml's progress is sampled every 0.2 s; the SDK's end is when it starts stopping the
  container);
- **total**: until ``Completed`` (optml, polled every 20 ms) or until ``transform`` returns (SDK),
  container stop included.

The SDK is timed inside its own interpreter (its import time is not counted), with wrappers that
only take timestamps.

The ``.out`` files of both are compared byte for byte. ``--concurrency N`` adds a row for optml
with ``MaxConcurrentTransforms N`` (the SDK forces 1). Everything either side started is removed
at the end, also on failure or Ctrl-C.

    .venv/bin/python bench/bench_transform_vs_sdk.py [--files 20] [--lines 5000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local_mode.docker_engine import STATE_LABEL
from local_mode.sagemaker import SageMakerClient
from tests.docker import sdk_local
from toolkit.settings import Settings

ENV = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "OPTML_INSTALL_REQUIREMENTS": "false"}
TERMINAL = ("Completed", "Failed", "Stopped")

SDK_TRANSFORM = r'''
import json, time
import sagemaker.local.entities as entities
import sagemaker.local.image as image_module
from sagemaker.model import Model

# Timestamps only: when the SDK's health check passes, and when it starts stopping the container
# (after the last file's results were written).
marks = {}
_wait, _stop = entities._wait_for_serving_container, image_module._SageMakerContainer.stop_serving

def _timed_wait(*args, **kwargs):
    result = _wait(*args, **kwargs)
    marks["ready"] = time.monotonic()
    return result

def _timed_stop(self):
    marks.setdefault("done", time.monotonic())
    return _stop(self)

entities._wait_for_serving_container = _timed_wait
image_module._SageMakerContainer.stop_serving = _timed_stop

image, model_uri, input_uri, output_uri, env_json = ARGS
model = Model(image_uri=image, model_data=model_uri, role="arn:aws:iam::000000000000:role/local",
              sagemaker_session=session, env=json.loads(env_json))
transformer = model.transformer(instance_count=1, instance_type="local", strategy="MultiRecord",
                                output_path=output_uri, accept="text/csv")
started = time.monotonic()
transformer.transform(input_uri, content_type="text/csv", split_type="Line", wait=False,
                      logs=False)
ended = time.monotonic()
report({"ready": marks["ready"] - started, "done": marks["done"] - started,
        "total": ended - started})
'''


def model_tarball(path: Path) -> None:
    """A decision tree fitted here, as ``model.joblib`` in ``path`` (a model.tar.gz)."""
    import joblib
    import numpy as np
    from sklearn.tree import DecisionTreeRegressor

    features = np.random.default_rng(0).normal(size=(500, 3))
    model = DecisionTreeRegressor(max_depth=8, random_state=0).fit(
        features, features @ np.array([1.5, -2.0, 0.5]))
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(buffer.getvalue())
        archive.addfile(info, io.BytesIO(buffer.getvalue()))


def write_inputs(directory: Path, files: int, lines: int) -> None:
    import numpy as np

    directory.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for index in range(files):
        rows = rng.normal(size=(lines, 3)).round(6)
        (directory / f"part-{index:03d}.csv").write_text(
            "".join(f"{a!r},{b!r},{c!r}\n" for a, b, c in rows.tolist()))


@dataclass(frozen=True)
class Timing:
    """Seconds from the start of a transform: instance ready, last file written, job over."""

    ready: float
    done: float
    total: float

    @property
    def transform(self) -> float:
        """Ready to last file written: the requests themselves and writing the outputs."""
        return self.done - self.ready


def optml_transform(sm: SageMakerClient, name: str, inputs: Path, output: Path,
                    concurrency: int) -> Timing:
    """create_transform_job to Completed; ready = the runner counted the files (it does so once
    its instance answered /ping), done = every file counted done (progress every 0.2 s)."""
    extra: dict[str, Any] = {"MaxConcurrentTransforms": concurrency} if concurrency > 1 else {}
    started = time.monotonic()
    sm.create_transform_job(
        TransformJobName=name, ModelName="bench", BatchStrategy="MultiRecord", **extra,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": inputs.as_uri()}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": output.as_uri(), "Accept": "text/csv"},
        TransformResources={"InstanceType": "local", "InstanceCount": 1})
    ready = done = None
    while (described := sm.describe_transform_job(TransformJobName=name))[
            "TransformJobStatus"] not in TERMINAL:
        progress = sm.transform_progress(TransformJobName=name)
        if ready is None and progress["FilesTotal"]:
            ready = time.monotonic() - started
        if done is None and progress["FilesTotal"] and \
                progress["FilesDone"] + progress["FilesFailed"] == progress["FilesTotal"]:
            done = time.monotonic() - started
        time.sleep(0.02)
    total = time.monotonic() - started
    if described["TransformJobStatus"] != "Completed":
        raise RuntimeError(f"{name}: {described['TransformJobStatus']}: "
                           f"{described.get('FailureReason')}")
    return Timing(ready if ready is not None else total, done if done is not None else total,
                  total)


def sdk_transform(root: Path, image: str, tarball: Path, inputs: Path, output: Path) -> Timing:
    """``Transformer.transform`` in the SDK's local mode, timed inside its interpreter."""
    run = sdk_local.run_sdk(SDK_TRANSFORM, [image, tarball.as_uri(), inputs.as_uri(),
                                            output.as_uri(), json.dumps(ENV)],
                            root, serves=True).check()
    return Timing(**run.result)


def same_outputs(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def remove_ours(state: Path) -> None:
    """Every container and network of optml's state directory (normally already gone)."""
    import docker

    client = docker.from_env(timeout=300)
    try:
        selector = {"label": f"{STATE_LABEL}={state}"}
        deadline = time.monotonic() + 60  # a finished runner tears its instances down itself
        while client.containers.list(all=True, filters=selector) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        for container in client.containers.list(all=True, filters=selector):
            container.remove(force=True)
        for network in client.networks.list(filters=selector):
            network.remove()
    finally:
        client.close()


def median(timings: list[Timing]) -> Timing:
    return Timing(*(statistics.median(getattr(t, f) for t in timings)
                    for f in ("ready", "done", "total")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="optml/sklearn:latest")
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    ours: list[Timing] = []
    ours_concurrent: list[Timing] = []
    sdk: list[Timing] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_tarball(root / "model" / "model.tar.gz")
        write_inputs(root / "input", args.files, args.lines)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "OPTML_"))}
        state = root / "state"
        env.update(OPTML_LOCAL_STATE_DIR=str(state), OPTML_LOCAL_STOP_GRACE_SECONDS="5")
        sm = SageMakerClient(Settings.from_environ(env), backend="docker")
        try:
            sm.create_model(ModelName="bench", PrimaryContainer={
                "Image": args.image, "ModelDataUrl": (root / "model" / "model.tar.gz").as_uri(),
                "Environment": ENV})
            for index in range(args.rounds):
                # the SDK extracts the artifact beside its tarball: a private copy per round
                tarball = root / f"sdk-model-{index}" / "model.tar.gz"
                tarball.parent.mkdir()
                tarball.write_bytes((root / "model" / "model.tar.gz").read_bytes())
                sdk.append(sdk_transform(root / f"sdk-{index}", args.image, tarball,
                                         root / "input", root / f"sdk-out-{index}"))
                ours.append(optml_transform(sm, f"bench-{index}", root / "input",
                                            root / f"ours-out-{index}", 1))
                if not same_outputs(root / f"sdk-out-{index}", root / f"ours-out-{index}"):
                    raise RuntimeError("the .out files of optml and the SDK differ")
                if args.concurrency > 1:
                    ours_concurrent.append(optml_transform(
                        sm, f"bench-c{index}", root / "input", root / f"ours-c-{index}",
                        args.concurrency))
        finally:
            for job in sm.store.list("transform-jobs"):
                if job.describe()["TransformJobStatus"] not in TERMINAL:
                    sm.stop_transform_job(TransformJobName=job.name)
            remove_ours(state)
    records = args.files * args.lines
    o, s = median(ours), median(sdk)
    print(f"image {args.image}; {args.files} files x {args.lines} CSV lines = {records} records;"
          f" SplitType Line, MultiRecord; {args.rounds} round(s), medians; .out files identical")
    print("                                 start-up  transform (records/s)      total")
    rows = [("optml local mode (Docker)", o), ("SDK local mode (docker-compose)", s)]
    if ours_concurrent:
        rows.append((f"optml, MaxConcurrentTransforms {args.concurrency}",
                     median(ours_concurrent)))
    for label, t in rows:
        print(f"{label:<32} {t.ready:7.2f} s  {t.transform:7.2f} s ({records / t.transform:7.0f})"
              f"  {t.total:7.2f} s")
    print(f"ratio SDK / optml: total {s.total / o.total:.2f}x, transform "
          f"{s.transform / o.transform:.2f}x, start-up {s.ready / o.ready:.2f}x")
    for label, values in (("optml", ours), ("SDK", sdk), ("optml concurrent", ours_concurrent)):
        if values:
            print(f"  all rounds, {label}: " + "; ".join(
                f"{t.ready:.2f}/{t.transform:.2f}/{t.total:.2f}" for t in values))


if __name__ == "__main__":
    main()
