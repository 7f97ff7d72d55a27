#!/usr/bin/env python3
"""Example 8: local mode runs ANY image that follows the /opt/ml contract -- this one has no
optml inside (see ./train, ./serve and ./Dockerfile).

Builds the image, trains it with local mode's Docker backend, then serves the model artifact
and invokes it with CSV and JSON. Needs Docker: the process backend runs only optml-based code.

    python examples/custom-image/run.py [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402 -- examples/common.py, the examples' shared glue

IMAGE = "optml-examples/custom-image:latest"
LABEL = {"org.optml.example": "custom-image"}


@contextmanager
def served_by_docker(model_dir: Path) -> Iterator[str]:
    """``docker run IMAGE serve`` with the model at /opt/ml/model, as the platform starts a
    serving container; yields its base URL and removes the container on exit."""
    import docker

    engine = docker.from_env(timeout=60)
    container = engine.containers.run(
        IMAGE, ["serve"], detach=True, labels=LABEL,
        volumes={str(model_dir): {"bind": "/opt/ml/model", "mode": "ro"}},
        ports={"8080/tcp": ("127.0.0.1", None)})
    try:
        deadline = time.monotonic() + 60
        while True:
            container.reload()
            binding = container.ports.get("8080/tcp")
            if binding:
                url = f"http://127.0.0.1:{binding[0]['HostPort']}"
                try:
                    with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
            if container.status == "exited" or time.monotonic() > deadline:
                raise SystemExit(f"serving container never became healthy:\n"
                                 f"{container.logs().decode(errors='replace')}")
            time.sleep(0.1)
        yield url
    finally:
        container.remove(force=True)
        engine.close()


def invoke(url: str, body: str, content_type: str) -> str:
    request = urllib.request.Request(f"{url}/invocations", data=body.encode(), method="POST",
                                     headers={"Content-Type": content_type,
                                              "Accept": content_type})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.read().decode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("example-output"))
    args = parser.parse_args(argv)
    if not common.docker_reachable():
        print("custom-image needs a Docker engine (scripts/docker-up.sh): the process backend "
              "runs only optml-based code, and this image has none", file=sys.stderr)
        return 2
    root = common.new_run_dir(args.output / HERE.name)
    print(f"[{HERE.name}] run directory {root}; building {IMAGE}", flush=True)
    common.build_image(HERE, IMAGE)
    train_dir = root / "data" / "train"
    train_dir.mkdir(parents=True)
    for part in range(2):  # y = 2.5 x - 1, exactly
        (train_dir / f"part-{part}.csv").write_text(
            "".join(f"{2.5 * x - 1},{x}\n" for x in range(part * 10, part * 10 + 10)))

    state = root / "state"
    sm = common.local_client("sagemaker", state_dir=state, backend="docker")
    job = common.train(sm, common.load_spec(HERE / "job.json", {
        "DATA": (root / "data").as_uri(), "OUTPUT": root.as_uri()}), state)
    model_data = job["ModelArtifacts"]["S3ModelArtifacts"]
    print(f"[train] {job['TrainingJobStatus']} on docker; metrics "
          f"{ {m['MetricName']: m['Value'] for m in job['FinalMetricDataList']} }; "
          f"model {model_data}", flush=True)
    model_dir = root / "model"
    with tarfile.open(model_data.removeprefix("file://")) as tar:
        tar.extractall(model_dir, filter="data")
    model = json.loads((model_dir / "model.json").read_text())
    print(f"[train] model.json {model}")

    serving, why = common.serving_backend("docker")
    if serving == "docker":
        print("[serve] local-mode endpoint on the docker backend", flush=True)
        rt = common.local_client("sagemaker-runtime", state_dir=state)
        container = {"Image": IMAGE, "ModelDataUrl": model_data}
        with common.deployed(sm, "custom-image", container) as endpoint:
            def call(body: str, content_type: str) -> str:
                response = rt.invoke_endpoint(EndpointName=endpoint, Body=body,
                                              ContentType=content_type, Accept=content_type)
                return str(response["Body"].read().decode())
            csv_out, json_out = call("1\n2\n", "text/csv"), call("[10, -4]", "application/json")
    else:
        print(f"[serve] {why}: starting `docker run {IMAGE} serve` with the model at "
              "/opt/ml/model, as the platform would", flush=True)
        with served_by_docker(model_dir) as url:
            csv_out = invoke(url, "1\n2\n", "text/csv")
            json_out = invoke(url, "[10, -4]", "application/json")
    print(f"[invoke] csv 1,2 -> {csv_out.split()}; json [10, -4] -> {json_out}")
    summary = {"serving": serving,
"model": model, "metrics": job["FinalMetricDataList"][0]["Value"],
               "csv": [float(v) for v in csv_out.split()], "json": json.loads(json_out)}
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[done] summary {root / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
