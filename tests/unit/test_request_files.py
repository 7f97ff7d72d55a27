"""Request files (local_mode.request_files): every way a file can be wrong is one
RequestFileError naming the file and the problem; any content either loads or is refused so."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode.request_files import RequestFileError, load_request
from tests.unreadable import unreadable_file, without_read_permission

REQUEST = {"TransformJobName": "t", "ModelName": "m", "Nested": {"List": [1, "two"]}}


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml", ".YAML"])
def test_a_request_loads_from_json_or_yaml(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"job{suffix}"
    text = json.dumps(REQUEST) if suffix == ".json" else yaml.safe_dump(REQUEST)
    path.write_text(text)
    assert load_request(path) == REQUEST


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("job.json", b"{not json", "invalid JSON at line 1, column 2: Expecting property name"),
    ("job.json", b'{"a": 1,\n "b": }', "invalid JSON at line 2, column 7"),
    ("job.yaml", b"a: [unclosed", "invalid YAML at line 1, column 13"),
    ("job.yaml", b"a: b\n c: d: e", "invalid YAML at line 2"),
    ("job.json", b"[1, 2]", "must hold one request object, not a list"),
    ("job.json", b'"text"', "must hold one request object, not a string"),
    ("job.yaml", b"", "is empty; a request file must hold one request object"),
    ("job.yaml", b"1: one", "request fields are names; found 1 (number)"),
    ("job.json", b"\xff\xfe{}", "not UTF-8 text (byte offset 0)"),
    ("job.json", b"[" * 100_000, "nested too deeply"),
])
def test_bad_content_is_named(tmp_path: Path, name: str, content: bytes, problem: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RequestFileError) as caught:
        load_request(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert problem in caught.value.problem
    assert caught.value.path == path
    assert "\n" not in str(caught.value)


def test_a_missing_file_and_a_directory(tmp_path: Path) -> None:
    with pytest.raises(RequestFileError, match="absent.json: no such file$"):
        load_request(tmp_path / "absent.json")
    with pytest.raises(RequestFileError, match="is a directory, not a request file"):
        load_request(tmp_path)


def test_an_unreadable_file_says_permission_denied() -> None:
    def load() -> str:
        try:
            load_request(path)
        except RequestFileError as exc:
            return str(exc)
        return "loaded"

    with unreadable_file("job.json") as path:
        assert without_read_permission(load) == f"{path}: Permission denied"


@settings(max_examples=150, deadline=None)
@given(content=st.one_of(st.binary(max_size=200),
                         st.text(alphabet=st.sampled_from('{}[]:,"ab1 \n-?&*!|>%@`\t'),
                                 max_size=80).map(str.encode)),
       suffix=st.sampled_from([".json", ".yaml"]))
def test_any_content_loads_as_an_object_or_is_refused_by_name(content: bytes,
                                                               suffix: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"request{suffix}"
        path.write_bytes(content)
        try:
            request = load_request(path)
        except RequestFileError as exc:
            assert str(exc).startswith(f"{path}: ") and exc.problem
            assert "\n" not in str(exc)
        else:
            assert isinstance(request, dict) and all(isinstance(k, str) for k in request)
