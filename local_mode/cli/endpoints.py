"""``optml local deploy | endpoints | invoke | delete-endpoint | transform``.

Like the training commands, each is a thin layer over the local clients and the state
directory, and loads them inside the command.

Exit status (:mod:`local_mode.cli.errors`): 0 success (transform: Completed); 1 failure (the
FailureReason or the service error is printed); 2 invalid request or job file; 3 transform
Stopped; 130 Ctrl-C (the endpoint being deployed is deleted, the transform job stopped).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from local_mode.cli.errors import (
    EXIT_BY_STATUS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    fail,
    request_errors,
)
from local_mode.cli.options import (
    backend_option,
    key_value_pairs,
    runtime_client,
    sagemaker_client,
    state_dir_option,
)
from local_mode.cli.table import print_table
from local_mode.loopback import LOOPBACK

POLL = 0.1
"""How often a waiting command asks for the status again (seconds)."""


@click.command("deploy")
@click.argument("name")
@click.option("--model-data", required=True, help="model.tar.gz (or a directory) as file:// "
              "or s3:// URI; the inference code is in its code/ directory.")
@click.option("--image", default="optml/base:latest", show_default=True,
              help="Serving image (the process backend runs optml serve instead).")
@backend_option("instances")
@click.option("--instance-count", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE",
              help="Container environment variable (repeatable).")
@click.option("--multi-model", is_flag=True, help="--model-data is the S3 prefix of models.")
@state_dir_option
def deploy(name: str, model_data: str, image: str, backend: str | None, instance_count: int,
           env: tuple[str, ...], multi_model: bool, state_dir: Path | None) -> None:
    """Create model, endpoint config and endpoint NAME; wait until InService."""
    container = {"Image": image, "ModelDataUrl": model_data,
                 "Environment": key_value_pairs("--env", env),  # refused before any set-up
                 "Mode": "MultiModel" if multi_model else "SingleModel"}
    sm = sagemaker_client(state_dir, backend)
    with request_errors():
        sm.create_model(ModelName=name, PrimaryContainer=container)
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "local",
            "InitialInstanceCount": instance_count, "InitialVariantWeight": 1.0}])
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    started = time.monotonic()
    try:
        while True:
            described = sm.describe_endpoint(EndpointName=name)
            if described["EndpointStatus"] == "InService":
                break
            if described["EndpointStatus"] == "Failed":
                fail(described.get("FailureReason", "endpoint failed"))
            time.sleep(POLL)
    except KeyboardInterrupt:
        click.echo("interrupted: deleting the endpoint", err=True)
        sm.delete_endpoint(EndpointName=name)
        sys.exit(EXIT_INTERRUPTED)
    port = sm.store.get("endpoints", name).describe().get("RouterPort")
    click.echo(f"{name}: InService in {time.monotonic() - started:.1f} s "
               f"(router http://{LOOPBACK}:{port}/invocations)")


@click.command("endpoints")
@state_dir_option
def endpoints(state_dir: Path | None) -> None:
    """List local endpoints with their status, router port and healthy instances."""
    sm = sagemaker_client(state_dir)
    rows = []
    for resource in sm.store.list("endpoints"):
        d = resource.describe()
        instances = d.get("Instances") or []
        healthy = sum(1 for i in instances if i.get("Healthy"))
        rows.append((d["EndpointName"], d["EndpointStatus"], str(d.get("RouterPort") or "-"),
                     f"{healthy}/{len(instances)}", d.get("EndpointConfigName", "")))
    print_table(("NAME", "STATUS", "PORT", "HEALTHY", "CONFIG"), rows)


@click.command("invoke")
@click.argument("name")
@click.option("--body", required=True, help="The request body, or @FILE to read it from FILE.")
@click.option("--content-type", required=True)
@click.option("--accept", default=None)
@click.option("--target-variant", default=None)
@click.option("--target-model", default=None)
@click.option("--custom-attributes", default=None)
@state_dir_option
def invoke(name: str, body: str, content_type: str, accept: str | None,
           target_variant: str | None, target_model: str | None,
           custom_attributes: str | None, state_dir: Path | None) -> None:
    """Invoke endpoint NAME; the response body goes to stdout."""
    runtime = runtime_client(state_dir)
    if body.startswith("@"):
        try:
            payload = Path(body[1:]).read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {body[1:]}: {exc.strerror}",
                                     param_hint="--body") from None
    else:
        payload = body.encode()
    request: dict[str, Any] = {"EndpointName": name, "Body": payload,
                               "ContentType": content_type}
    for key, value in (("Accept", accept), ("TargetVariant", target_variant),
                       ("TargetModel", target_model), ("CustomAttributes", custom_attributes)):
        if value is not None:
            request[key] = value
    with request_errors(service_error_status=EXIT_FAILED):  # the model failing: exit 1
        response = runtime.invoke_endpoint(**request)
    click.echo(f"# {response['InvokedProductionVariant']} {response['ContentType']}", err=True)
    sys.stdout.buffer.write(response["Body"].read())
    sys.stdout.buffer.flush()


@click.command("delete-endpoint")
@click.argument("name")
@state_dir_option
def delete_endpoint(name: str, state_dir: Path | None) -> None:
    """Delete endpoint NAME: stop its router and every instance."""
    sm = sagemaker_client(state_dir)
    with request_errors(service_error_status=EXIT_FAILED):  # no such endpoint: exit 1
        sm.delete_endpoint(EndpointName=name)
    click.echo(f"{name}: deleted")


@click.command("transform")
# readable=False: a missing or unreadable file is reported by load_request, on one line
@click.argument("job_file", type=click.Path(path_type=Path, readable=False))
@click.option("--wait/--no-wait", default=False, help="Follow the job to its end.")
@state_dir_option
def transform(job_file: Path, wait: bool, state_dir: Path | None) -> None:
    """Start the transform job described by JOB_FILE (a CreateTransformJob request as JSON or
    YAML); with --wait, show files and records done until it ends."""
    from local_mode.request_files import load_request
    from local_mode.runners import TRANSFORM

    with request_errors(job_file):
        request = load_request(job_file)
    sm = sagemaker_client(state_dir)
    with request_errors(job_file):
        sm.create_transform_job(**request)
    name = request["TransformJobName"]
    click.echo(f"{name}: started")
    if not wait:
        return
    last = None
    try:
        while True:
            described = sm.describe_transform_job(TransformJobName=name)
            progress = sm.transform_progress(TransformJobName=name)
            failed = progress["FilesFailed"]
            line = (f"{name}: {described['TransformJobStatus']}: files "
                    f"{progress['FilesDone']}/{progress['FilesTotal']} done"
                    + (f", {failed} failed" if failed else "")
                    + f", {progress['RecordsDone']} records")
            if line != last:
                click.echo(line, err=True)
                last = line
            status = described["TransformJobStatus"]
            if TRANSFORM.settled(described):
                break
            time.sleep(POLL)
    except KeyboardInterrupt:
        click.echo("interrupted: stopping the job", err=True)
        sm.stop_transform_job(TransformJobName=name)
        while not TRANSFORM.settled(sm.describe_transform_job(TransformJobName=name)):
            time.sleep(POLL)
        sys.exit(EXIT_INTERRUPTED)
    if status == "Failed":
        click.echo(f"FailureReason: {described.get('FailureReason')}", err=True)
    sys.exit(EXIT_BY_STATUS[status])


COMMANDS = (deploy, endpoints, invoke, delete_endpoint, transform)
"""The endpoint and transform commands, attached to ``optml local`` by :mod:`local_mode.cli`."""

__all__ = ["COMMANDS"]
