"""Names reach the state store from users (CLI arguments, request members, URL paths): the store
builds ``<root>/<kind>/<name>`` only for a name the service accepts for that kind, so no name can
reach, read or delete anything outside ``<root>/<kind>/``."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local_mode.errors import ResourceNotFound, ValidationException
from local_mode.state import KINDS, NAME_RULES, StateStore
from local_mode.validation import service_model

OPERATIONS = {
    "training-jobs": ("CreateTrainingJob", "DescribeTrainingJob", "DeleteTrainingJob",
                      "StopTrainingJob"),
    "processing-jobs": ("CreateProcessingJob", "DescribeProcessingJob", "DeleteProcessingJob",
                        "StopProcessingJob"),
    "transform-jobs": ("CreateTransformJob", "DescribeTransformJob", "StopTransformJob"),
    "endpoints": ("CreateEndpoint", "DescribeEndpoint", "DeleteEndpoint", "UpdateEndpoint"),
    "endpoint-configs": ("CreateEndpointConfig", "DescribeEndpointConfig",
                         "DeleteEndpointConfig"),
    "models": ("CreateModel", "DescribeModel", "DeleteModel"),
}
"""The operations local mode implements on each kind, each naming the resource."""


def test_every_kind_has_a_name_rule() -> None:
    assert set(NAME_RULES) == set(KINDS) == set(OPERATIONS)


@pytest.mark.parametrize("kind", KINDS)
def test_the_name_rules_are_botocores(kind: str) -> None:
    """Every operation on the kind takes the name with the shape, pattern and maximum length the
    table says: the store accepts exactly the names the service does."""
    rule = NAME_RULES[kind]
    model = service_model("sagemaker")
    for operation in OPERATIONS[kind]:
        shape = model.operation_model(operation).input_shape.members[rule.member]
        assert (shape.name, shape.metadata["pattern"], shape.metadata["max"]) == \
            (rule.member, rule.pattern, rule.max_length), operation
        assert shape.metadata.get("min", 0) <= 1  # the pattern needs one character anyway


@pytest.mark.parametrize("kind", KINDS)
@given(name=st.text(max_size=80))
@settings(max_examples=150, deadline=None)
def test_a_name_is_accepted_exactly_when_botocores_pattern_and_length_allow_it(
        kind: str, name: str) -> None:
    rule = NAME_RULES[kind]
    shape = service_model("sagemaker").shape_for(rule.member)
    expected = (len(name) <= shape.metadata["max"]
                and re.fullmatch(shape.metadata["pattern"], name) is not None)
    assert rule.accepts(name) is expected


def _escaping_names() -> st.SearchStrategy[str]:
    """Text of every kind, and text built to look like a path: ``..``, ``/``, NUL, absolute
    paths, valid names with separators around them."""
    valid = st.from_regex(r"[a-zA-Z0-9](-?[a-zA-Z0-9]){0,10}", fullmatch=True)
    piece = st.one_of(valid, st.sampled_from(["..", ".", "", "~", "\x00", " ", "\n", "-"]))
    separator = st.sampled_from(["/", "//", "\\", "\x00", "/../", "/./"])
    joined = st.lists(st.tuples(piece, separator), min_size=1, max_size=4).map(
        lambda parts: "".join(p + s for p, s in parts)).flatmap(
        lambda prefix: st.one_of(st.just(prefix), valid.map(lambda v: prefix + v)))
    return st.one_of(st.text(), joined,
                     st.sampled_from(["..", ".", "/", "/etc", "../training-jobs/fast",
                                      "fast/..", "fast\x00", "fast/", "a" * 64]))


def _planted(root: Path) -> Path:
    """A resource directory outside every ``<root>/<kind>/``: what an escaping name would find."""
    outside = root / "training-jobs" / "fast"
    outside.mkdir(parents=True)
    (outside / "description.json").write_text("{}")
    return outside


@given(name=_escaping_names(), kind=st.sampled_from(KINDS))
@settings(max_examples=400, deadline=None)
def test_no_name_resolves_outside_its_kind_directory(name: str, kind: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "state"
        planted = _planted(root)
        store = StateStore(root)
        kind_dir = (root / kind).resolve()

        try:
            found = store.get(kind, name)
        except ResourceNotFound:
            pass
        else:  # only a name that is the planted job's own, looked up as a training job
            assert found.path.resolve().parent == kind_dir
            assert (kind, name) == ("training-jobs", "fast")

        if NAME_RULES[kind].accepts(name):
            if (kind, name) != ("training-jobs", "fast"):
                created = store.create(kind, name, {"n": 1}, {})
                assert created.path.resolve().parent == kind_dir
                assert created.path.name == name
                store.delete(kind, name)
        else:
            with pytest.raises(ResourceNotFound):
                store.delete(kind, name)
            with pytest.raises(ValidationException, match=re.escape(repr(name))):
                store.create(kind, name, {"n": 1}, {})
        assert (planted / "description.json").is_file()  # nothing reached it
        # and nothing was made anywhere but in kind directories
        assert sorted(p.name for p in root.iterdir()) == sorted(
            {"training-jobs"} | ({kind} if (root / kind).exists() else set()))
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["state"]


def test_a_relative_name_cannot_reach_another_kinds_resource(tmp_path: Path) -> None:
    """``optml local processing-jobs rm ../training-jobs/fast`` must not delete the training job
    ``fast``: it is not a processing job, and no processing job can have that name."""
    store = StateStore(tmp_path / "state")
    store.create("training-jobs", "fast", {"TrainingJobName": "fast"}, {})
    for name in ("../training-jobs/fast", "..", "./../training-jobs/fast"):
        with pytest.raises(ResourceNotFound, match="does not exist"):
            store.get("processing-jobs", name)
        with pytest.raises(ResourceNotFound, match="does not exist"):
            store.delete("processing-jobs", name)
    assert store.get("training-jobs", "fast").describe() == {"TrainingJobName": "fast"}


def test_an_absolute_name_cannot_reach_a_directory_elsewhere(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "description.json").write_text("{}")
    store = StateStore(tmp_path / "state")
    with pytest.raises(ResourceNotFound):
        store.get("models", str(elsewhere))
    with pytest.raises(ResourceNotFound):
        store.delete("models", str(elsewhere))
    assert (elsewhere / "description.json").is_file()


def test_create_names_the_refused_name_and_the_rule(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    with pytest.raises(ValidationException) as caught:
        store.create("endpoints", "../x/evil", {}, {})
    message = caught.value.response["Error"]["Message"]
    assert "'../x/evil'" in message and "EndpointName" in message
    assert NAME_RULES["endpoints"].pattern in message
    assert not (tmp_path / "state").exists()  # nothing made for a refused name


def test_the_longest_name_the_service_allows_is_stored(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    longest = "m" + "-a" * 31  # 63 characters
    store.create("models", longest, {"ModelName": longest}, {})
    assert store.get("models", longest).name == longest
    assert [r.name for r in store.list("models")] == [longest]
    with pytest.raises(ValidationException):
        store.create("models", longest + "b", {}, {})


def test_list_leaves_out_a_directory_no_resource_could_have(tmp_path: Path) -> None:
    """A directory made by hand with a name the service refuses: it cannot be described or
    deleted by name, so listing it would only hand out a name that fails later."""
    store = StateStore(tmp_path / "state")
    store.create("models", "kept", {"ModelName": "kept"}, {})
    odd = tmp_path / "state" / "models" / "under_score"
    odd.mkdir()
    (odd / "description.json").write_text("{}")
    assert [r.name for r in store.list("models")] == ["kept"]
