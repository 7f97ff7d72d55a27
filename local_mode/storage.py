"""``file://`` and ``s3://`` locations: list a prefix's objects, read, write and upload.

Local mode accepts ``file://`` wherever the service takes an S3 URI: a directory, a single file or
an S3-style key prefix (``file:///data/part-`` means every file under ``/data`` whose relative
path starts with ``part-``). S3 goes through boto3, which honours ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL`` (we pass them explicitly from the environment snapshot we were given).
Both kinds are exposed as :class:`toolkit.channels.sources.ObjectSource`, so File-mode staging and
the Pipe-mode feeder read the same objects in the same order.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import posixpath
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import unquote, urlsplit

from local_mode.errors import ValidationException
from toolkit.channels.sources import LocalFileSource, ObjectInfo, ObjectSource


@dataclass(frozen=True)
class Location:
    scheme: str  # "file" | "s3"
    bucket: str  # "" for file
    key: str  # file: absolute path; s3: key or prefix

    @classmethod
    def parse(cls, uri: str, field: str = "S3Uri") -> Location:
        parts = urlsplit(uri)
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise ValidationException(f"{field}: file URIs must be file:///absolute/path, "
                                          f"got {uri!r}")
            path = unquote(parts.path)
            if not path.startswith("/"):
                raise ValidationException(f"{field}: file URI needs an absolute path: {uri!r}")
            return cls("file", "", path)
        if parts.scheme == "s3":
            if not parts.netloc:
                raise ValidationException(f"{field}: S3 URI without a bucket: {uri!r}")
            return cls("s3", parts.netloc, parts.path.lstrip("/"))
        raise ValidationException(f"{field}: only s3:// and file:// URIs are supported locally, "
                                  f"got {uri!r}")

    def join(self, *parts: str) -> Location:
        key = posixpath.join(self.key, *parts) if self.key else posixpath.join(*parts)
        return Location(self.scheme, self.bucket, key)

    @property
    def uri(self) -> str:
        if self.scheme == "file":
            return f"file://{self.key}"
        return f"s3://{self.bucket}/{self.key}"


def s3_client(environ: Mapping[str, str]) -> Any:
    try:
        import boto3
    except ImportError:  # pragma: no cover - boto3 is in optml[local]
        raise ValidationException("s3:// URIs need boto3: pip install 'optml[local]'") from None
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = boto3.session.Session(
        aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=environ.get("AWS_SESSION_TOKEN"), region_name=region)
    return session.client("s3", endpoint_url=endpoint)


class _BodyReader(io.RawIOBase):
    """Adapt a botocore StreamingBody to a raw stream so it can be buffered."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


def _buffered(body: Any) -> BinaryIO:
    """An S3 object's body as a buffered binary file (reads of any size, ``readline``)."""
    return cast(BinaryIO, io.BufferedReader(_BodyReader(body), buffer_size=1 << 20))


class S3PrefixSource:
    """Every object whose key starts with ``prefix``, sorted by key (S3Prefix semantics)."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket, self.prefix, self.client = bucket, prefix, client

    def list_objects(self) -> list[ObjectInfo]:
        return sorted(self._pages(), key=lambda o: o.key)

    def iter_objects(self) -> Iterator[ObjectInfo]:
        """The objects page by page as they are consumed, holding one page (1,000 keys), not
        the whole listing. S3 lists keys in UTF-8 byte order, which is code point order: the
        order :meth:`list_objects` sorts into. Should a server break that order, the keys not
        yet given are gathered from a second listing and given sorted: every object still
        comes exactly once, only the order then differs from :meth:`list_objects`."""
        last: str | None = None
        for given, info in enumerate(self._pages()):
            if last is not None and info.key <= last:
                rest = list(itertools.islice(self._pages(), given, None))
                yield from sorted(rest, key=lambda o: o.key)
                return
            last = info.key
            yield info

    def _pages(self) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):
                    yield ObjectInfo(item["Key"], int(item["Size"]))

    def open_object(self, key: str) -> BinaryIO:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        return _buffered(body)

    def open_reference(self, ref: str) -> BinaryIO:
        location = Location.parse(ref, "manifest reference")
        if location.scheme != "s3":
            raise ValidationException(f"an S3 manifest cannot reference {ref!r}")
        body = self.client.get_object(Bucket=location.bucket, Key=location.key)["Body"]
        return _buffered(body)


class FilteredSource:
    """A local directory restricted to keys that start with a prefix (``file:///d/part-``)."""

    def __init__(self, inner: LocalFileSource, key_prefix: str) -> None:
        self.inner, self.key_prefix = inner, key_prefix

    def list_objects(self) -> list[ObjectInfo]:
        return list(self.iter_objects())

    def iter_objects(self) -> Iterator[ObjectInfo]:
        return (o for o in self.inner.iter_objects() if o.key.startswith(self.key_prefix))

    def open_object(self, key: str) -> BinaryIO:
        return self.inner.open_object(key)

    def open_reference(self, ref: str) -> BinaryIO:
        return self.inner.open_reference(ref)


def open_prefix(uri: str, environ: Mapping[str, str]) -> ObjectSource:
    """The objects under ``uri`` as an :class:`ObjectSource`."""
    location = Location.parse(uri)
    if location.scheme == "s3":
        return S3PrefixSource(location.bucket, location.key, s3_client(environ))
    path = Path(location.key)
    if path.exists():
        return LocalFileSource(path)
    parent = path.parent
    if not parent.is_dir():
        raise ValidationException(f"S3Uri {uri!r}: no such file or directory")
    return FilteredSource(LocalFileSource(parent), path.name)


def relative_key(key: str, uri: str) -> str:
    """Where an object lands in the channel directory: its key below the prefix's folder."""
    return relative_keys(uri)(key)


def relative_keys(uri: str) -> Callable[[str], str]:
    """:func:`relative_key` for every key of one ``uri``, with the URI parsed (and a local
    path looked at) once rather than once per object."""
    location = Location.parse(uri)
    if location.scheme == "file":
        path = Path(location.key)
        if path.is_file():
            name = path.name
            return lambda _key: name
        return lambda key: key  # LocalFileSource keys are already relative to the directory
    return functools.partial(_s3_relative_key, prefix=location.key)


def _s3_relative_key(key: str, prefix: str) -> str:
    if prefix and not prefix.endswith("/") and key.startswith(prefix + "/"):
        # the prefix names a folder without its slash, as the SDK's upload_data returns it:
        # its objects land directly in the channel (s3://b/data/train -> data/train/a.csv: a.csv)
        return key[len(prefix) + 1:]
    base = prefix if prefix.endswith("/") or not prefix else posixpath.dirname(prefix) + "/"
    base = "" if base == "/" else base
    return key[len(base):] if key.startswith(base) else posixpath.basename(key)


def read_bytes(uri: str, environ: Mapping[str, str]) -> bytes:
    location = Location.parse(uri)
    if location.scheme == "file":
        return Path(location.key).read_bytes()
    client = s3_client(environ)
    return client.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()


def upload_file(path: Path, uri: str, environ: Mapping[str, str]) -> None:
    location = Location.parse(uri)
    if location.scheme == "file":
        target = Path(location.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
        return
    s3_client(environ).upload_file(str(path), location.bucket, location.key)


def manifest_entries(uri: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """A ManifestFile: ``[{"prefix": "s3://b/p/"}, "rel/key1", ...]`` → (prefix, keys)."""
    try:
        document = json.loads(read_bytes(uri, environ))
    except json.JSONDecodeError as exc:
        raise ValidationException(f"manifest {uri!r} is not valid JSON: {exc.msg}") from None
    if not isinstance(document, list) or not document or not isinstance(document[0], dict) or \
            not isinstance(document[0].get("prefix"), str):
        raise ValidationException(f"manifest {uri!r} must be a JSON list starting with "
                                  '{"prefix": "..."}')
    keys = document[1:]
    if not all(isinstance(k, str) for k in keys):
        raise ValidationException(f"manifest {uri!r}: every entry after the prefix must be a "
                                  "string")
    return document[0]["prefix"], keys


class ManifestSource:
    """The objects a ManifestFile lists (prefix + relative keys), in manifest order."""

    def __init__(self, uri: str, environ: Mapping[str, str]) -> None:
        prefix, keys = manifest_entries(uri, environ)
        self.prefix = prefix
        self.keys: Sequence[str] = keys
        self.environ = environ

    def list_objects(self) -> list[ObjectInfo]:
        return [ObjectInfo(key, -1) for key in self.keys]

    def open_object(self, key: str) -> BinaryIO:
        location = Location.parse(self.prefix.rstrip("/") + "/" + key if
                                  not self.prefix.endswith("/") else self.prefix + key)
        if location.scheme == "file":
            return open(location.key, "rb")  # caller closes
        client = s3_client(self.environ)
        body = client.get_object(Bucket=location.bucket, Key=location.key)["Body"]
        return _buffered(body)

    def open_reference(self, ref: str) -> BinaryIO:
        return self.open_object(ref)
