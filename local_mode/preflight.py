"""The checks the service makes at create time, beyond the request's shape.

The service refuses, at the Create call and naming what is wrong, a request whose data cannot be
there when the job starts: a training channel or a transform input whose prefix holds no object
("No S3 objects found under S3 URL ..."), a model artifact that does not exist ("Could not find
model data at ..."), an image it cannot pull. Local mode does the same rather than start a job
that trains on nothing or an endpoint that fails minutes later. Each error names the request's
field and the URI.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_mode.docker_engine import connect, require_image
from local_mode.errors import LocalModeError, ValidationException
from local_mode.storage import Location, manifest_entries, open_prefix, s3_client


def check_training_channels(request: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """Every S3 (or file://) channel of a CreateTrainingJob request has data."""
    for index, channel in enumerate(request.get("InputDataConfig") or []):
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if source:
            _check_data_source(source, f"InputDataConfig[{index}].DataSource.S3DataSource",
                               environ)


def check_processing_inputs(request: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """Every S3 (or file://) input of a CreateProcessingJob request has data."""
    for index, entry in enumerate(request.get("ProcessingInputs") or []):
        source = entry.get("S3Input")
        if source:
            _check_data_source(source, f"ProcessingInputs[{index}].S3Input", environ)


def check_transform_input(request: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """The input of a CreateTransformJob request has data."""
    source = request["TransformInput"]["DataSource"]["S3DataSource"]
    _check_data_source(source, "TransformInput.DataSource.S3DataSource", environ)


def check_model_data(request: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """Every container's model artifact of a CreateModel request exists."""
    for where, container in model_containers(request):
        url = container.get("ModelDataUrl")
        # a MultiModel URL is a prefix, not an object: models come and go under it
        if url and container.get("Mode") != "MultiModel" and \
                not _object_exists(url, f"{where}.ModelDataUrl", environ):
            raise ValidationException(f"{where}.ModelDataUrl: Could not find model data at "
                                      f"{url}.")
        source = (container.get("ModelDataSource") or {}).get("S3DataSource")
        if source:
            field = f"{where}.ModelDataSource.S3DataSource.S3Uri"
            uri = source["S3Uri"]
            found = _has_objects(uri, field, environ) if source.get("S3DataType") == \
                "S3Prefix" else _object_exists(uri, field, environ)
            if not found:
                raise ValidationException(f"{field}: Could not find model data at {uri}.")


def model_containers(request: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(field, container)`` of a CreateModel request, the field as the request names it."""
    if request.get("PrimaryContainer"):
        yield "PrimaryContainer", request["PrimaryContainer"]
    for index, container in enumerate(request.get("Containers") or []):
        yield f"Containers[{index}]", container


def check_images(images: Sequence[tuple[str, str]]) -> None:
    """Each ``(field, image)`` is in the local Docker engine (local mode never pulls: an image
    that is not there is one the job could never run, as the service's unpullable image)."""
    if not images:
        return
    client = connect()
    try:
        for field, image in images:
            require_image(client, image, field)
    finally:
        client.close()


def _check_data_source(source: Mapping[str, Any], where: str,
                       environ: Mapping[str, str]) -> None:
    uri = source["S3Uri"]
    field = f"{where}.S3Uri"
    kind = source.get("S3DataType", "S3Prefix")
    if kind == "ManifestFile":
        try:
            _, keys = manifest_entries(uri, environ)
        except LocalModeError as exc:
            raise ValidationException(f"{field}: {exc.message}") from None
        except Exception:  # noqa: BLE001 - no such file / object: boto and OS errors alike
            raise ValidationException(f"{field}: the manifest file {uri} does not exist") \
                from None
        if not keys:
            raise ValidationException(f"{field}: the manifest file {uri} lists no object")
    elif kind == "AugmentedManifestFile":
        if not _object_exists(uri, field, environ):
            raise ValidationException(f"{field}: the augmented manifest file {uri} does not "
                                      "exist")
    elif not _has_objects(uri, field, environ):
        raise ValidationException(
            f"{field}: No S3 objects found under S3 URL \"{uri}\" given in input data source. "
            "Please ensure that the bucket exists and that objects exist under that prefix.")


def _has_objects(uri: str, field: str, environ: Mapping[str, str]) -> bool:
    """At least one object (not a folder marker) under the prefix ``uri``."""
    try:
        location = Location.parse(uri, field)
    except LocalModeError as exc:
        raise ValidationException(exc.message) from None
    if location.scheme == "file":
        path = Path(location.key)
        if not path.exists() and not path.parent.is_dir():
            return False  # no such directory: nothing under the prefix
        try:
            return bool(open_prefix(uri, environ).list_objects())
        except (FileNotFoundError, NotADirectoryError):  # gone meanwhile: nothing there
            return False
        except (OSError, LocalModeError) as exc:  # e.g. a directory it may not read
            raise _unreadable(field, uri, exc) from None
    client = s3_client(environ)
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket, Prefix=location.key)
        return any(not item["Key"].endswith("/")
                   for page in pages for item in page.get("Contents", []))
    except Exception as exc:  # noqa: BLE001 - boto raises many types; sorted out below
        if _means_none(exc):
            return False
        raise _unreadable(field, uri, exc) from None


def _object_exists(uri: str, field: str, environ: Mapping[str, str]) -> bool:
    """The object ``uri`` exists (a file:// directory counts: a local convenience)."""
    location = Location.parse(uri, field)
    if location.scheme == "file":
        return Path(location.key).exists()
    try:
        s3_client(environ).head_object(Bucket=location.bucket, Key=location.key)
    except Exception as exc:  # noqa: BLE001 - boto raises many types; sorted out below
        if _means_none(exc):
            return False
        raise _unreadable(field, uri, exc) from None
    return True


NONE_CODES = frozenset({"NoSuchBucket", "NoSuchKey", "NotFound", "404", "AccessDenied", "403"})
"""S3 answers that mean "no such data" to the service too (it cannot read what it may not)."""


def _means_none(exc: Exception) -> bool:
    """S3 answered, and the answer is that there is nothing there (as opposed to no answer:
    an endpoint that is down, no credentials, a timeout)."""
    return isinstance(exc, ClientError) and \
        str(exc.response.get("Error", {}).get("Code")) in NONE_CODES


def _unreadable(field: str, uri: str, exc: Exception) -> ValidationException:
    hint = "; check the S3 endpoint and credentials local mode uses" \
        if uri.startswith("s3://") else ""
    return ValidationException(f"{field}: cannot read {uri} ({type(exc).__name__}: {exc})"
                               f"{hint}")
