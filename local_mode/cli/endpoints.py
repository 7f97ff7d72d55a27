"""``optml local deploy | invoke | delete-endpoint | transform``.

``optml local endpoints`` (and the ``transform-jobs``, ``models`` and ``endpoint-configs``
groups) are every kind's verbs, from :mod:`local_mode.cli.resources`.

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
from typing import TYPE_CHECKING, Any

import click

from local_mode.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    fail,
    request_errors,
)
from local_mode.cli.kinds import ENDPOINTS, router_url
from local_mode.cli.logs import FOLLOW_INTERVAL
from local_mode.cli.options import (
    backend_option,
    complete_names,
    key_value_pairs,
    runtime_client,
    sagemaker_client,
    state_dir_option,
)
from local_mode.cli.resources import rm_command

if TYPE_CHECKING:
    from local_mode.sagemaker import SageMakerClient



def model_data_uri(value: str) -> str:
    """``--model-data`` as the request takes it: an ``s3://`` / ``https://`` / ``file://`` URI
    as given, a local path (relative to the working directory) as its absolute ``file://``
    URI -- refused, naming the option, if there is nothing there."""
    if "://" in value:
        return value
    path = Path(value).expanduser()
    if not path.exists():
        raise click.BadParameter(f"{value!r} is not an s3://, https:// or file:// URI, and "
                                 "there is no such file or directory", param_hint="--model-data")
    return path.resolve().as_uri()


@click.command("deploy", short_help="Create model, config and endpoint NAME; wait.")
@click.argument("name")
@click.option("--model-data", required=True, help="model.tar.gz or a model directory: a local "
              "path, or a file:// or s3:// URI; the inference code is in its code/ directory.")
@click.option("--image", default="optml/base:latest", show_default=True,
              help="Serving image (the process backend runs optml serve instead).")
@backend_option("instances")
@click.option("--instance-count", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--instance-type", default="local", show_default=True,
              help="The variant's InstanceType (ml.m5.large, ...): sizes a Docker container's "
                   "CPUs and memory and prices the endpoint in optml local cost; local: "
                   "unlimited and unpriced.")
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE",
              help="Container environment variable (repeatable).")
@click.option("--multi-model", is_flag=True, help="--model-data is the S3 prefix of models.")
@click.option("--replace", is_flag=True,
              help="If endpoint NAME exists, delete it (and the model and config deploy made "
                   "for it) first.")
@state_dir_option
def deploy(name: str, model_data: str, image: str, backend: str | None, instance_count: int,
           instance_type: str, env: tuple[str, ...], multi_model: bool, replace: bool,
           state_dir: Path | None) -> None:
    """Create model, endpoint config and endpoint NAME (the model and config tagged as
    deploy's, so that deleting the endpoint deletes them); wait until InService."""
    from local_mode import housekeeping
    from local_mode.cli.jobs import backend_note
    from local_mode.cli.resources import wait_until_ended

    container = {"Image": image, "ModelDataUrl": model_data_uri(model_data),
                 "Environment": key_value_pairs("--env", env),  # refused before any set-up
                 "Mode": "MultiModel" if multi_model else "SingleModel"}
    sm = sagemaker_client(state_dir, backend)
    tags = housekeeping.deployed_tags(name)
    with request_errors(service_error_status=EXIT_FAILED):
        _make_room(sm, name, replace)
    with request_errors():
        sm.create_model(ModelName=name, PrimaryContainer=container, Tags=tags)
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": name, "InstanceType": instance_type,
            "InitialInstanceCount": instance_count, "InitialVariantWeight": 1.0}], Tags=tags)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    click.echo(f"Creating endpoint {name}{backend_note(sm, ENDPOINTS, name)}", err=True)
    started = time.monotonic()
    try:
        described = wait_until_ended(sm, ENDPOINTS, name)
    except KeyboardInterrupt:
        click.echo("interrupted: deleting the endpoint", err=True)
        housekeeping.delete_endpoint(sm, name)
        sys.exit(EXIT_INTERRUPTED)
    if described["EndpointStatus"] == "Failed":
        fail(described.get("FailureReason", "endpoint failed"))
    click.echo(f"{name}: InService in {time.monotonic() - started:.1f} s "
               f"(router {router_url(ENDPOINTS.stored(sm, name))})")


def _make_room(sm: SageMakerClient, name: str, replace: bool) -> None:
    """Before deploying ``name``: with ``replace``, delete endpoint ``name`` and what deploy
    made for it; without, refuse an existing endpoint. A model or config ``name`` left by an
    interrupted deploy of this endpoint is removed (refused if something else uses it); one a
    user made is refused by Create."""
    from local_mode import housekeeping
    from local_mode.cli.kinds import in_words
    from local_mode.errors import ResourceInUse, ResourceNotFound

    try:
        sm.store.get("endpoints", name)
    except ResourceNotFound:
        pass
    else:
        if not replace:
            raise ResourceInUse(f"endpoint {name!r} already exists: `optml local deploy "
                                "--replace` replaces it, `optml local endpoints rm` deletes it")
        removed = housekeeping.delete_endpoint(sm, name)
        click.echo(f"Replacing: removed {', '.join(in_words(k, n) for k, n in removed)}",
                   err=True)
    housekeeping.release_deployed(sm, name)  # what an earlier deploy of it left, if unused


@click.command("invoke", short_help="Invoke endpoint NAME; the body goes to stdout.")
@click.argument("name", shell_complete=complete_names("endpoints"))
@click.option("--body", required=True, help="The request body, @FILE to read it from FILE, or @- from stdin.")
@click.option("--content-type", required=True, help="The body's MIME type (text/csv, ...).")
@click.option("--accept", default=None, help="The MIME type wanted back.")
@click.option("--target-variant", default=None,
              help="The production variant to invoke, bypassing the weights.")
@click.option("--target-model", default=None,
              help="The model of a multi-model endpoint (its path below the S3 prefix).")
@click.option("--custom-attributes", default=None,
              help="Opaque text passed to the container (X-Amzn-SageMaker-Custom-Attributes).")
@state_dir_option
def invoke(name: str, body: str, content_type: str, accept: str | None,
           target_variant: str | None, target_model: str | None,
           custom_attributes: str | None, state_dir: Path | None) -> None:
    """Invoke endpoint NAME; the response body goes to stdout."""
    runtime = runtime_client(state_dir)
    if body == "@-":
        payload = sys.stdin.buffer.read()
    elif body.startswith("@"):
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


delete_endpoint = rm_command(ENDPOINTS, "delete-endpoint")
"""``delete-endpoint NAME...``: ``endpoints rm`` under the service's verb (DeleteEndpoint), with
the model and config ``deploy`` made for it."""


@click.command("transform", short_help="Create a transform job from a job file.")
# readable=False: a missing or unreadable file is reported by load_request, on one line
@click.argument("job_file", type=click.Path(path_type=Path, readable=False))
@click.option("--wait/--no-wait", default=False,
              help="Follow the job to its end (a progress bar on a terminal); Ctrl-C stops it.")
@backend_option("instances")
@click.option("--name", default=None, help="TransformJobName to use instead of JOB_FILE's.")
@state_dir_option
def transform(job_file: Path, wait: bool, backend: str | None, name: str | None,
              state_dir: Path | None) -> None:
    """Start the transform job described by JOB_FILE (a CreateTransformJob request as JSON or
    YAML; relative paths in it are relative to the file); with --wait, show files and records
    done until it ends."""
    from local_mode.cli.jobs import backend_note, load_job_file, stop_after_interrupt
    from local_mode.cli.kinds import TRANSFORM_JOBS
    from local_mode.cli.progress import TransformProgress
    from local_mode.cli.resources import report_outcome
    from local_mode.runners import TRANSFORM

    request = load_job_file(job_file, TRANSFORM_JOBS, name)
    sm = sagemaker_client(state_dir, backend)
    with request_errors(job_file):
        sm.create_transform_job(**request)
    job = request["TransformJobName"]
    click.echo(f"Created transform job {job}{backend_note(sm, TRANSFORM_JOBS, job)}")
    if not wait:
        return
    try:
        with TransformProgress(job) as progress:
            while True:
                described = sm.describe_transform_job(TransformJobName=job)
                done = sm.transform_progress(TransformJobName=job)
                progress.update(described["TransformJobStatus"], done["FilesDone"],
                                done["FilesTotal"], done["RecordsDone"])
                if TRANSFORM.settled(described):
                    break
                time.sleep(FOLLOW_INTERVAL)
    except KeyboardInterrupt:
        stop_after_interrupt(sm, TRANSFORM_JOBS, job)
        sys.exit(EXIT_INTERRUPTED)
    done = sm.transform_progress(TransformJobName=job)
    failed = f", {done['FilesFailed']} failed" if done["FilesFailed"] else ""
    click.echo(f"files {done['FilesDone']}/{done['FilesTotal']} done{failed}, "
               f"{done['RecordsDone']} records", err=True)
    sys.exit(report_outcome(TRANSFORM_JOBS, described))


COMMANDS = (deploy, invoke, delete_endpoint, transform)
"""The endpoint and transform commands, attached to ``optml local`` by :mod:`local_mode.cli`."""

__all__ = ["COMMANDS"]
