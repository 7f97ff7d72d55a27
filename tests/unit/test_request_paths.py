"""Paths in request files and local code: relative paths of a job file resolve against the file
(local_mode.request_files.PATH_MEMBERS), and the code a training job names on this machine is
checked at create and, for containers, named by its read-only mount (local_mode.training)."""

from __future__ import annotations

import json
import os
import posixpath
import stat
import string
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode.cluster.docker import DockerBackend
from local_mode.cluster.process import ProcessBackend
from local_mode.errors import ValidationException
from local_mode.request_files import PATH_MEMBERS, PathMember, load_request, resolve_paths
from local_mode.storage import Location
from local_mode.training.hosts import Host, write_config
from local_mode.training.spec import CODE_SOURCE_DIR, TrainingJobSpec, platform_environment
from local_mode.training.workload import for_backend, host_mounts
from toolkit.layout import Layout
from toolkit.settings import Settings
from toolkit.training.code_source import _local_path  # how the toolkit reads a code source
from toolkit.training.config import decode_hyperparameter

BASE = Path("/jobs/project")

# -- the table ---------------------------------------------------------------------------------


def _request_with(member: PathMember, value: str) -> dict[str, Any]:
    """The smallest request in which ``member`` holds ``value`` (one element per list)."""
    names = member.path.split(".")
    node: Any = value
    for name in reversed(names):
        node = {name.removesuffix("[]"): [node] if name.endswith("[]") else node}
    return node


def _value_of(member: PathMember, request: dict[str, Any]) -> Any:
    node: Any = request
    for name in member.path.split("."):
        node = node[name.removesuffix("[]")]
        if name.endswith("[]"):
            node = node[0]
    return node


@pytest.mark.parametrize("member", PATH_MEMBERS, ids=lambda m: m.path)
def test_every_member_of_the_table_resolves_a_relative_file_uri(member: PathMember) -> None:
    request = _request_with(member, "file://./data/")
    resolved = resolve_paths(request, BASE)
    assert _value_of(member, resolved) == "file:///jobs/project/data/"
    assert _value_of(member, request) == "file://./data/"  # the input is left alone


@pytest.mark.parametrize("member", [m for m in PATH_MEMBERS if m.bare], ids=lambda m: m.path)
def test_code_members_resolve_a_bare_relative_path(member: PathMember) -> None:
    assert _value_of(member, resolve_paths(_request_with(member, "./code"), BASE)) == \
        "/jobs/project/code"


@pytest.mark.parametrize("member", [m for m in PATH_MEMBERS if not m.bare], ids=lambda m: m.path)
def test_storage_members_leave_a_bare_path_to_the_client(member: PathMember) -> None:
    """Where local mode takes only s3:// or file://, a bare path is refused later by the client
    (naming the member), not turned into something it did not say."""
    assert _value_of(member, resolve_paths(_request_with(member, "data"), BASE)) == "data"


def test_a_whole_training_request() -> None:
    request = {
        "TrainingJobName": "j",
        "HyperParameters": {"sagemaker_submit_directory": "code", "sagemaker_program": "t.py",
                            "lr": "./not-a-path"},
        "Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "file://../vendor/src.tar.gz",
                        "OTHER": "./x"},
        "InputDataConfig": [
            {"ChannelName": "a", "DataSource": {"S3DataSource": {"S3Uri": "file:data/a"}}},
            {"ChannelName": "b", "DataSource": {"S3DataSource": {"S3Uri": "s3://bucket/b"}}},
            {"ChannelName": "c", "DataSource": {"S3DataSource": {"S3Uri": "file:///abs/c"}}},
        ],
        "OutputDataConfig": {"S3OutputPath": "file://out"},
        "CheckpointConfig": {"S3Uri": "file://./ck", "LocalPath": "ck"},
    }
    resolved = resolve_paths(request, BASE)
    assert resolved["HyperParameters"] == {"sagemaker_submit_directory": "/jobs/project/code",
                                           "sagemaker_program": "t.py", "lr": "./not-a-path"}
    assert resolved["Environment"] == {
        "SAGEMAKER_SUBMIT_DIRECTORY": "file:///jobs/vendor/src.tar.gz", "OTHER": "./x"}
    assert [c["DataSource"]["S3DataSource"]["S3Uri"] for c in resolved["InputDataConfig"]] == \
        ["file:///jobs/project/data/a", "s3://bucket/b", "file:///abs/c"]
    assert resolved["OutputDataConfig"]["S3OutputPath"] == "file:///jobs/project/out"
    # the container's LocalPath is not a path of this machine
    assert resolved["CheckpointConfig"] == {"S3Uri": "file:///jobs/project/ck",
                                            "LocalPath": "ck"}


@pytest.mark.parametrize("value", [
    "file:///abs/data", "file:/abs/data", "file://localhost/abs", "file://localhost",
    "file://", "file:", "s3://bucket/key", "S3://bucket/key", "https://example.com/x", "data",
    "", "FILE:///abs",
])
def test_what_is_not_a_relative_local_uri_is_left_as_it_is(value: str) -> None:
    member = PathMember("OutputDataConfig.S3OutputPath")
    assert _value_of(member, resolve_paths(_request_with(member, value), BASE)) == value


def test_a_json_encoded_hyperparameter_stays_encoded() -> None:
    """SDKs JSON-encode hyperparameters; the toolkit decodes them; so does the resolution."""
    resolved = resolve_paths({"HyperParameters": {
        "sagemaker_submit_directory": json.dumps("./src")}}, BASE)
    assert json.loads(resolved["HyperParameters"]["sagemaker_submit_directory"]) == \
        "/jobs/project/src"
    number = {"HyperParameters": {"sagemaker_submit_directory": "12"}}
    assert resolve_paths(number, BASE) == number  # not a string once decoded: not a path


def test_members_of_the_wrong_type_are_left_for_the_client_to_name() -> None:
    request = {"InputDataConfig": {"not": "a list"}, "HyperParameters": ["x"],
               "OutputDataConfig": {"S3OutputPath": 3},
               "ProcessingInputs": [None, "x", {"S3Input": None}]}
    assert resolve_paths(request, BASE) == request


# -- properties --------------------------------------------------------------------------------

SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "-_ é", min_size=1,
                  max_size=8).filter(lambda s: s not in (".", ".."))
"""A path component as one writes it in a URI without escaping it."""
RELATIVE = st.lists(st.one_of(SEGMENT, st.sampled_from([".", ".."])), min_size=1,
                    max_size=5).map("/".join)
BASE_DIR = st.lists(st.text(alphabet=string.ascii_letters + " #?%é&;=+", min_size=1,
                            max_size=6).filter(lambda s: s not in (".", "..")),
                    min_size=1, max_size=4).map(lambda parts: Path("/" + "/".join(parts)))
"""Any absolute directory, with the characters a URI must escape."""


@settings(max_examples=300, deadline=None)
@given(base=BASE_DIR, relative=RELATIVE, slash=st.booleans(),
       form=st.sampled_from(["file://./{}", "file://{}", "file:{}", "FILE://{}"]))
def test_a_relative_file_uri_parses_back_to_its_place_below_the_file(
        base: Path, relative: str, slash: bool, form: str) -> None:
    if form.lower().startswith("file://") and relative.split("/")[0] == "localhost":
        relative = "./" + relative  # file://localhost/... is an absolute URI
    relative += "/" if slash else ""
    member = PathMember("TransformOutput.S3OutputPath")
    uri = _value_of(member, resolve_paths(_request_with(member, form.format(relative)), base))
    expected = posixpath.normpath(posixpath.join(str(base), relative))
    assert uri.startswith("file:///")
    assert Location.parse(uri).key == expected + ("/" if slash and expected != "/" else "")
    # once absolute, it stays what it is
    assert resolve_paths(_request_with(member, uri), Path("/elsewhere")) == \
        _request_with(member, uri)


@settings(max_examples=200, deadline=None)
@given(base=BASE_DIR, relative=st.lists(st.text(alphabet=st.characters(
    min_codepoint=1, max_codepoint=0xD7FF, blacklist_characters="/"), min_size=1, max_size=6),
    min_size=1, max_size=4).map("/".join), encoded=st.booleans(), uri=st.booleans())
def test_a_relative_code_path_reaches_the_toolkit_as_its_place_below_the_file(
        base: Path, relative: str, encoded: bool, uri: bool) -> None:
    """A bare path may hold any character (``#``, ``%``, ``://`` aside); the toolkit reads
    the resolved value as the same path."""
    if "://" in relative or uri and not all(c.isalnum() or c in "._-/" for c in relative):
        relative = "code"  # a URI would need escapes; that form is covered above
    value = f"file://{relative}" if uri else relative
    raw = json.dumps(value) if encoded else value
    resolved = resolve_paths({"HyperParameters": {"sagemaker_submit_directory": raw}}, base)
    got = resolved["HyperParameters"]["sagemaker_submit_directory"]
    source = json.loads(got) if encoded else got
    if uri and relative.split("/")[0] == "localhost" or \
            not isinstance(decode_hyperparameter(raw), str):
        assert got == raw  # file://localhost/... is absolute; 12 or [] is no path to the toolkit
        return
    assert _local_path(source) == Path(posixpath.normpath(posixpath.join(str(base), relative)))


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(
                        ["S3Uri", "DataSource", "S3DataSource", "S3Input", "Outputs",
                         "S3Output", "sagemaker_submit_directory", "ModelDataUrl", "x"]),
                        inner, max_size=3), max_leaves=12)
REQUEST = st.dictionaries(
    st.sampled_from(sorted({m.path.split(".")[0].removesuffix("[]") for m in PATH_MEMBERS})),
    JSON, max_size=5)


@settings(max_examples=300, deadline=None)
@given(request=REQUEST, first=BASE_DIR, second=BASE_DIR)
def test_any_request_resolves_without_error_and_resolving_twice_changes_nothing(
        request: dict[str, Any], first: Path, second: Path) -> None:
    once = resolve_paths(request, first)
    assert resolve_paths(once, second) == once
    assert _shape(once) == _shape(request)  # only strings change


def _shape(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _shape(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_shape(item) for item in node]
    return "<str>" if isinstance(node, str) else node


# -- load_request ------------------------------------------------------------------------------

def test_a_job_file_resolves_against_its_own_directory_not_the_cwd(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "my project#1"
    project.mkdir()
    job = project / "job.yaml"
    job.write_text(yaml.safe_dump({
        "TrainingJobName": "j",
        "HyperParameters": {"sagemaker_submit_directory": "./code"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3Uri": "file://./data"}}}],
        "OutputDataConfig": {"S3OutputPath": "file://out/"}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    request = load_request(Path(os.path.relpath(job, elsewhere)))
    assert request["HyperParameters"]["sagemaker_submit_directory"] == str(project / "code")
    data = request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert Location.parse(data).key == str(project / "data")
    assert data == (project / "data").as_uri()
    assert Location.parse(request["OutputDataConfig"]["S3OutputPath"]).key == \
        f"{project}/out/"


def test_a_symlinked_job_file_resolves_against_the_link_s_directory(tmp_path: Path) -> None:
    """The directory the user names the file in, as a shell would (``cd "$(dirname f)"``)."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "job.json").write_text(json.dumps(
        {"Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "src"}}))
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "job.json").symlink_to(tmp_path / "real" / "job.json")
    assert load_request(tmp_path / "linked" / "job.json")["Environment"] == {
        "SAGEMAKER_SUBMIT_DIRECTORY": str(tmp_path / "linked" / "src")}


# -- local code: checked at create, mounted for containers ------------------------------------

def _spec(tmp_path: Path, hyperparameters: dict[str, str] | None = None,
          environment: dict[str, str] | None = None) -> TrainingJobSpec:
    return TrainingJobSpec.from_request({
        "TrainingJobName": "j",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "HyperParameters": hyperparameters or {},
        "Environment": environment or {},
        "OutputDataConfig": {"S3OutputPath": (tmp_path / "out").as_uri()},
        "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1}})


def _code(tmp_path: Path) -> tuple[Path, Path]:
    directory = tmp_path / "src dir"
    directory.mkdir()
    (directory / "train.py").write_text("print('hi')\n")
    archive = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(directory / "train.py", "train.py")
    return directory, archive


@pytest.mark.parametrize(("hyperparameters", "environment", "member"), [
    ({"sagemaker_submit_directory": "{missing}"}, {},
     "HyperParameters.sagemaker_submit_directory"),
    ({"sagemaker_submit_directory": '"file://{missing}"'}, {},
     "HyperParameters.sagemaker_submit_directory"),
    ({}, {"SAGEMAKER_SUBMIT_DIRECTORY": "{missing}"}, "Environment.SAGEMAKER_SUBMIT_DIRECTORY"),
])
def test_code_that_is_not_there_is_refused_at_create_naming_the_member(
        tmp_path: Path, hyperparameters: dict[str, str], environment: dict[str, str],
        member: str) -> None:
    missing = str(tmp_path / "no-such-code")
    with pytest.raises(ValidationException) as caught:
        _spec(tmp_path, {k: v.format(missing=missing) for k, v in hyperparameters.items()},
              {k: v.format(missing=missing) for k, v in environment.items()})
    assert f"{member}: user code {missing}: no such file or directory" in str(caught.value)
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_a_file_uri_naming_a_host_is_refused_and_a_fifo_is_not_code(tmp_path: Path) -> None:
    with pytest.raises(ValidationException, match=r"sagemaker_submit_directory: 'file://./code' "
                                                  r"is not a file:///absolute/path URI"):
        _spec(tmp_path, {"sagemaker_submit_directory": "file://./code"})
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValidationException, match="neither a directory nor a regular file"):
        _spec(tmp_path, environment={"SAGEMAKER_SUBMIT_DIRECTORY": str(tmp_path / "fifo")})


@pytest.mark.parametrize("value", [
    "s3://bucket/code.tar.gz", "file:///opt/ml/input/data/code/sourcedir.tar.gz", "/opt/ml/code",
    "relative/code", json.dumps("s3://bucket/sdk.tar.gz"),
])
def test_what_is_not_code_on_this_machine_is_passed_on_unchecked(tmp_path: Path,
                                                                 value: str) -> None:
    """s3:// is the toolkit's to fetch; /opt/ml/... is a path in the container (a staged
    channel, the image's code); a relative path in a client call is read where the host runs,
    as it always was."""
    spec = _spec(tmp_path, {"sagemaker_submit_directory": value})
    assert spec.local_code == ()
    assert for_backend(spec, DockerBackend(Settings.from_environ({}))) == spec


def test_the_process_backend_reads_local_code_where_it_is(tmp_path: Path) -> None:
    directory, _ = _code(tmp_path)
    spec = _spec(tmp_path, {"sagemaker_submit_directory": str(directory)})
    assert for_backend(spec, ProcessBackend({}, 5.0)) is spec


def test_containers_get_local_code_read_only_under_code_source(tmp_path: Path) -> None:
    directory, archive = _code(tmp_path)
    spec = _spec(tmp_path, {"sagemaker_submit_directory": json.dumps(directory.as_uri()),
                            "sagemaker_program": "train.py"},
                 {"SAGEMAKER_SUBMIT_DIRECTORY": str(archive), "A": "1"})
    seen = for_backend(spec, DockerBackend(Settings.from_environ({})))
    # each member names the mount in the form the user gave
    assert seen.hyperparameters == {
        "sagemaker_submit_directory": json.dumps(f"file://{CODE_SOURCE_DIR}/src_dir"),
        "sagemaker_program": "train.py"}
    assert seen.environment == {"SAGEMAKER_SUBMIT_DIRECTORY":
                                f"{CODE_SOURCE_DIR}/sourcedir.tar.gz", "A": "1"}
    assert platform_environment(seen, "arn")["SAGEMAKER_SUBMIT_DIRECTORY"] == \
        f"{CODE_SOURCE_DIR}/sourcedir.tar.gz"
    assert spec.hyperparameters["sagemaker_submit_directory"] == \
        json.dumps(directory.as_uri())  # what the job echoes is untouched

    host = Host("algo-1", 0, 1, Layout(tmp_path / "work" / "algo-1"))
    write_config(seen, host, ["algo-1"], "eth0", None)
    assert json.loads(host.layout.hyperparameters_file.read_text()) == seen.hyperparameters
    mounts = {m.target: m for m in host_mounts(seen, host)}
    staged = host.layout.input_dir / "code-source"
    assert mounts[CODE_SOURCE_DIR].source == staged.resolve()
    assert mounts[CODE_SOURCE_DIR].read_only
    assert mounts[f"{CODE_SOURCE_DIR}/src_dir"].source == directory.resolve()
    assert mounts[f"{CODE_SOURCE_DIR}/src_dir"].read_only
    assert "/opt/ml/code" not in mounts
    # the tarball is a copy in the mounted directory; the directory's mount point is there
    assert (staged / "sourcedir.tar.gz").read_bytes() == archive.read_bytes()
    assert stat.S_IMODE((staged / "sourcedir.tar.gz").stat().st_mode) == 0o644
    assert (staged / "src_dir").is_dir() and not any((staged / "src_dir").iterdir())
    write_config(seen, host, ["algo-1"], "eth0", None)  # a restart lays it out again
    assert (staged / "sourcedir.tar.gz").read_bytes() == archive.read_bytes()


def test_one_source_named_twice_is_mounted_once_and_names_never_clash(tmp_path: Path) -> None:
    directory, _ = _code(tmp_path)
    same = _spec(tmp_path, {"sagemaker_submit_directory": str(directory)},
                 {"SAGEMAKER_SUBMIT_DIRECTORY": directory.as_uri() + "/"})
    seen = for_backend(same, DockerBackend(Settings.from_environ({})))
    assert [m.target for m in seen.code_mounts] == [f"{CODE_SOURCE_DIR}/src_dir"]
    other = tmp_path / "b" / "src dir"
    other.mkdir(parents=True)
    two = _spec(tmp_path, {"sagemaker_submit_directory": str(directory)},
                {"SAGEMAKER_SUBMIT_DIRECTORY": str(other)})
    seen = for_backend(two, DockerBackend(Settings.from_environ({})))
    assert [m.target for m in seen.code_mounts] == [f"{CODE_SOURCE_DIR}/src_dir",
                                                    f"{CODE_SOURCE_DIR}/src_dir-2"]


def test_a_job_without_local_code_lays_out_no_code_source(tmp_path: Path) -> None:
    spec = _spec(tmp_path, {"sagemaker_submit_directory": "s3://b/code.tar.gz"})
    host = Host("algo-1", 0, 1, Layout(Path(tempfile.mkdtemp(dir=tmp_path)) / "algo-1"))
    write_config(for_backend(spec, DockerBackend(Settings.from_environ({}))), host, ["algo-1"],
                 "eth0", None)
    assert not (host.layout.input_dir / "code-source").exists()
    assert CODE_SOURCE_DIR not in {m.target for m in host_mounts(spec, host)}
