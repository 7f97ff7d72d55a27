"""Where the user's training code comes from.

A job names its code with ``sagemaker_submit_directory`` / ``SAGEMAKER_SUBMIT_DIRECTORY``: a local
directory, a local tarball (path or ``file://`` URI) or an ``s3://bucket/key`` tarball. Directories
are used in place; tarballs are extracted into the code directory (``/opt/ml/code``).

Extraction is done member by member by this module rather than by
:meth:`tarfile.TarFile.extractall`: the ``filter="data"`` safety net only exists on recent Python
patch releases, and ``extractall`` chowns files to the archive's uid/gid when run as root (as
containers usually are). Every member is validated *before* anything is written, so a refused
archive leaves the destination untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from toolkit.errors import UserCodeError

__all__ = [
    "CodeDirNotEmptyError",
    "CodeSourceError",
    "InvalidArchiveError",
    "UnsafeArchiveError",
    "fetch_code",
    "safe_extract",
]

_DEFAULT_REGION = "us-east-1"
_COPY_BUFFER = 1024 * 1024


class CodeSourceError(UserCodeError):
    """The code source cannot be used: missing, unsupported, unreadable or not downloadable."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"user code {source}: {reason}")


class InvalidArchiveError(CodeSourceError):
    """The code archive is not a readable tar file (corrupt, truncated or another format)."""


class UnsafeArchiveError(UserCodeError):
    """An archive member would be written outside the destination or is not a plain file.

    Raised before anything is extracted, so the destination is left as it was.
    """

    def __init__(self, member: str, reason: str) -> None:
        self.member = member
        self.reason = reason
        super().__init__(f"refusing to extract archive member {member!r}: {reason}")


class CodeDirNotEmptyError(UserCodeError):
    """The code directory already holds files, so an archive cannot be extracted into it.

    The service extracts the submitted code into an *empty* ``/opt/ml/code``. Extracting on top of
    existing files would silently mix two versions of the code (a stale module shadowing a new one)
    and deleting them could destroy code baked into the image, so neither is done.
    """

    def __init__(self, code_dir: Path) -> None:
        self.code_dir = code_dir
        super().__init__(
            f"code directory {code_dir} is not empty; the code archive is only extracted into an "
            "empty directory (mixing it with existing files would run the wrong code)")


def fetch_code(source: str, code_dir: Path, *, environ: Mapping[str, str]) -> Path:
    """Make the user code available and return the directory that holds it.

    ``source`` is a local directory (returned as is, nothing copied), a local tar archive (a path or
    a ``file://`` URI; compression is detected from the content) or an ``s3://bucket/key`` archive.
    Archives are extracted into ``code_dir``, which must be missing or empty. ``environ`` supplies
    the S3 endpoint, region and credentials; the process environment is never read here.
    """
    if not source:
        raise CodeSourceError(repr(source), "no code source given")
    if source.startswith("s3://"):
        _require_empty(code_dir)
        with tempfile.TemporaryDirectory(prefix="optml-code-") as tmp:
            archive = Path(tmp) / "code.tar"
            _download_s3(source, archive, environ)
            _extract_archive(archive, code_dir, source)
        return code_dir

    path = _local_path(source)
    if path.is_dir():
        return path
    if not path.exists():
        raise CodeSourceError(source, "no such file or directory")
    if not path.is_file():
        raise CodeSourceError(source, "neither a directory nor a regular file")
    _require_empty(code_dir)
    _extract_archive(path, code_dir, source)
    return code_dir


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract the tar ``archive`` (any compression) into ``dest``, refusing unsafe members.

    Refused (with :class:`UnsafeArchiveError`, before anything is written): absolute names, names
    with a ``..`` component, names that pass through a symlink of the archive or of ``dest``,
    symlinks whose target leaves ``dest``, hard links to anything but an earlier regular member,
    and devices, FIFOs or other special members. A file that is not a readable tar archive raises
    :class:`InvalidArchiveError`. Regular files keep their permission bits (executable scripts stay
    executable) minus setuid/setgid/sticky and group/other write; ownership is never copied.

    If writing fails half-way, the entries this call created at the top of ``dest`` are removed.
    """
    try:
        tar = tarfile.open(archive, mode="r:*")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise CodeSourceError(str(archive), "no such file") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise InvalidArchiveError(str(archive), f"not a readable tar archive ({exc})") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise InvalidArchiveError(str(archive), f"corrupt tar archive ({exc})") from None
        plan = _validate(members, dest)
        dest.mkdir(parents=True, exist_ok=True)
        before = set(os.listdir(dest))
        try:
            _write(tar, plan, dest)
        except BaseException as exc:
            _remove_new_entries(dest, before)
            if isinstance(exc, (tarfile.TarError, EOFError, zlib.error)):
                raise InvalidArchiveError(str(archive), f"corrupt tar archive ({exc})") from None
            if isinstance(exc, OSError):
                raise CodeSourceError(str(archive), f"cannot extract into {dest}: {exc}") from None
            raise


# -- sources -------------------------------------------------------------------------------------

def _local_path(source: str) -> Path:
    if "://" not in source:
        return Path(source)
    parts = urlsplit(source)
    if parts.scheme != "file":
        raise CodeSourceError(source, f"unsupported URI scheme {parts.scheme!r} "
                                      "(use a local path, file:// or s3://)")
    if parts.netloc not in ("", "localhost"):
        raise CodeSourceError(source, f"file:// URI names a remote host {parts.netloc!r}")
    return Path(unquote(parts.path))


def _require_empty(code_dir: Path) -> None:
    if not code_dir.exists():
        return
    if not code_dir.is_dir():
        raise CodeSourceError(str(code_dir), "code directory exists and is not a directory")
    with os.scandir(code_dir) as entries:
        if any(True for _ in entries):
            raise CodeDirNotEmptyError(code_dir)


def _extract_archive(archive: Path, code_dir: Path, source: str) -> None:
    try:
        safe_extract(archive, code_dir)
    except CodeSourceError as exc:
        if exc.source != str(archive) or source == str(archive):
            raise
        # Name what the user gave (an S3 URI), not our temporary download.
        raise type(exc)(source, exc.reason) from None


def _parse_s3_uri(uri: str) -> tuple[str, str]:
    # Not urlsplit: S3 keys may legally contain '?' and '#'.
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket or not key:
        raise CodeSourceError(uri, "an S3 code source must look like s3://bucket/key")
    return bucket, key


def _download_s3(uri: str, target: Path, environ: Mapping[str, str]) -> None:
    """Download ``uri`` to ``target`` with boto3, configured only from ``environ``."""
    bucket, key = _parse_s3_uri(uri)
    try:
        import boto3  # optional extra, imported only when needed
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise CodeSourceError(uri, "boto3 is needed to fetch code from S3; install "
                                   "'optml[s3]'") from None
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or _DEFAULT_REGION
    # Credentials given in ``environ`` are passed explicitly; without them boto3 falls back to its
    # default chain (container/instance role), which is how the platform provides them.
    session = boto3.session.Session(
        aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY") or None,
        aws_session_token=environ.get("AWS_SESSION_TOKEN") or None,
        region_name=region,
    )
    try:
        client = session.client("s3", endpoint_url=endpoint,
                                config=Config(retries={"mode": "standard"}))
        client.download_file(bucket, key, str(target))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}:
            raise CodeSourceError(uri, "no such S3 object (missing bucket or key)") from None
        if code in {"403", "AccessDenied", "Forbidden"}:
            raise CodeSourceError(uri, "access denied by S3") from None
        message = error.get("Message") or str(exc)
        raise CodeSourceError(uri, f"S3 download failed: {code} {message}".strip()) from None
    except BotoCoreError as exc:
        raise CodeSourceError(uri, f"S3 download failed: {exc}") from None


# -- validation ----------------------------------------------------------------------------------

def _split_name(name: str) -> tuple[str, ...]:
    """Member name as path components, with empty and ``.`` components dropped."""
    return tuple(part for part in name.split("/") if part not in ("", "."))


def _validate(members: list[tarfile.TarInfo], dest: Path) -> list[tuple[tarfile.TarInfo,
                                                                       tuple[str, ...]]]:
    """Check every member; return ``(member, components)`` for the ones to write, in order."""
    symlinks = {_split_name(m.name) for m in members if m.issym()}
    plan: list[tuple[tarfile.TarInfo, tuple[str, ...]]] = []
    written_files: set[tuple[str, ...]] = set()
    checked_on_disk: set[tuple[str, ...]] = set()
    for member in members:
        parts = _check_path(member.name, member.name, "name")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise UnsafeArchiveError(member.name, f"{_kind(member)} members are not allowed")
        if not parts:
            if member.isdir():
                continue  # "./": the destination itself
            raise UnsafeArchiveError(member.name, "a non-directory member names the root")
        for depth in range(1, len(parts)):
            prefix = parts[:depth]
            if prefix in symlinks:
                raise UnsafeArchiveError(member.name, f"path goes through the archive's symlink "
                                                      f"{'/'.join(prefix)!r}")
            if prefix not in checked_on_disk:
                checked_on_disk.add(prefix)
                if dest.joinpath(*prefix).is_symlink():
                    raise UnsafeArchiveError(member.name, "path goes through a symlink already in "
                                                          f"{dest}")
        if member.issym():
            _check_symlink_target(member, parts)
        elif member.islnk():
            target = _check_path(member.name, member.linkname, "hard link target")
            if target not in written_files or target in symlinks:
                raise UnsafeArchiveError(member.name, f"hard link target {member.linkname!r} is "
                                                      "not an earlier regular file of the archive")
        if member.isreg() or member.islnk():
            written_files.add(parts)
        plan.append((member, parts))
    return plan


def _check_path(member: str, path: str, what: str) -> tuple[str, ...]:
    if path.startswith("/"):
        raise UnsafeArchiveError(member, f"absolute {what} {path!r}")
    parts = _split_name(path)
    if ".." in parts:
        raise UnsafeArchiveError(member, f"{what} {path!r} contains '..'")
    return parts


def _check_symlink_target(member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
    """Allow relative targets that stay inside: leading ``..`` steps, then plain names.

    The link's own directory holds no symlinks (checked by the caller), so leading ``..`` steps are
    resolved exactly; a ``..`` *after* a name could climb out of a directory reached through another
    symlink, so it is refused rather than reasoned about.
    """
    target = member.linkname
    if not target:
        raise UnsafeArchiveError(member.name, "symlink with an empty target")
    if target.startswith("/"):
        raise UnsafeArchiveError(member.name, f"symlink target {target!r} is absolute")
    ups = 0
    seen_name = False
    for part in _split_name(target):
        if part == "..":
            if seen_name:
                raise UnsafeArchiveError(member.name, f"symlink target {target!r} has '..' after "
                                                      "a path component")
            ups += 1
        else:
            seen_name = True
    if ups > len(parts) - 1:
        raise UnsafeArchiveError(member.name, f"symlink target {target!r} escapes the destination")


def _kind(member: tarfile.TarInfo) -> str:
    if member.ischr():
        return "character device"
    if member.isblk():
        return "block device"
    if member.isfifo():
        return "FIFO"
    return f"type {member.type!r}"


# -- writing -------------------------------------------------------------------------------------

def _file_mode(mode: int) -> int:
    """Keep read/execute bits, always owner read/write; drop setuid/setgid/sticky and g/o write."""
    return (mode & 0o755) | 0o600


def _write(tar: tarfile.TarFile, plan: list[tuple[tarfile.TarInfo, tuple[str, ...]]],
           dest: Path) -> None:
    directories: list[tuple[Path, tarfile.TarInfo]] = []
    for member, parts in plan:
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if member.isdir():
            if target.is_symlink():
                target.unlink()
            target.mkdir(exist_ok=True)
            directories.append((target, member))
            continue
        _remove_non_directory(target)
        if member.issym():
            os.symlink(member.linkname, target)
        elif member.islnk():
            os.link(dest.joinpath(*_split_name(member.linkname)), target, follow_symlinks=False)
        else:
            _write_file(tar, member, target)
    # Directory modes last (deepest first) so a read-only directory does not block its own files.
    for path, member in reversed(directories):
        os.chmod(path, (member.mode & 0o755) | 0o700)


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    source = tar.extractfile(member)
    if source is None:  # pragma: no cover - isreg() members always have data
        raise tarfile.ReadError(f"no data for {member.name!r}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | \
        getattr(os, "O_CLOEXEC", 0)
    fd = os.open(target, flags, 0o600)
    with source, os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, _COPY_BUFFER)
        os.fchmod(out.fileno(), _file_mode(member.mode))
    with contextlib.suppress(OverflowError, ValueError, OSError):  # an out-of-range timestamp
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)  # is no failure


def _remove_non_directory(target: Path) -> None:
    """A later member with the same name replaces an earlier file or link (as tar does)."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()


def _remove_new_entries(dest: Path, before: set[str]) -> None:
    for name in set(os.listdir(dest)) - before:
        path = dest / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
