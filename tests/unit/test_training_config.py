"""toolkit.training.config: the job's config files, parsed and validated."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.errors import ConfigError
from toolkit.layout import Layout
from toolkit.training.config import (
    COMPRESSION_TYPES,
    DISTRIBUTION_TYPES,
    INPUT_MODES,
    MAX_CHANNELS,
    MAX_HYPERPARAMETERS,
    RECORD_WRAPPER_TYPES,
    RESERVED_HYPERPARAMETERS,
    CheckpointConfig,
    Hyperparameters,
    ResourceConfig,
    decode_hyperparameter,
    load_job_config,
    parse_input_data_config,
)

# -- helpers ---------------------------------------------------------------------------------


def _expected_decode(raw: str) -> Any:
    """The contract: decode with JSON, keep the raw string when that fails (for any reason)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw


def _same(a: Any, b: Any) -> bool:
    """Equality that also holds for NaN (json.loads accepts ``NaN``)."""
    return type(a) is type(b) and json.dumps(a) == json.dumps(b)


def _raises(call: Any, *args: Any, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    return info.value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
hp_names = (
    st.text(min_size=1, max_size=30).filter(lambda n: "=" not in n and "\x00" not in n)
    | st.sampled_from(sorted(RESERVED_HYPERPARAMETERS))
    | st.from_regex(r"sagemaker_[a-z_]{1,20}", fullmatch=True)
)
hp_values = (
    st.text().filter(lambda v: "\x00" not in v)
    | json_values.map(json.dumps)
    | st.sampled_from(["0.5", "1e-3", "true", "null", "[1,2]", '{"a":1}', '"train.py"',
                       "NaN", "-Infinity", "01", "1.", "train.py", "", " 3 "])
)


# -- decode_hyperparameter / Hyperparameters.parse -------------------------------------------

@pytest.mark.parametrize(("raw", "value"), [
    ('"train.py"', "train.py"),
    ("train.py", "train.py"),
    ("0.5", 0.5),
    ("10", 10),
    ("true", True),
    ("True", "True"),
    ("null", None),
    ("[1, 2]", [1, 2]),
    ('{"a": [1]}', {"a": [1]}),
    ("", ""),
    ("[1, 2", "[1, 2"),
    ("[" * 100_000, "[" * 100_000),
])
def test_decode_hyperparameter(raw: str, value: Any) -> None:
    assert decode_hyperparameter(raw) == value


def test_decode_keeps_numbers_python_cannot_convert() -> None:
    # Python >= 3.11 refuses int() of more than 4300 digits with a plain ValueError, which is not
    # a JSONDecodeError: the value must stay raw instead of escaping as an internal error.
    huge = "1" * 5000
    assert decode_hyperparameter(huge) == huge
    assert Hyperparameters.parse({"seed": huge}).user["seed"] == huge


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(hp_names, hp_values, max_size=MAX_HYPERPARAMETERS))
def test_any_valid_hyperparameters_parse(data: dict[str, str]) -> None:
    hps = Hyperparameters.parse(data)
    assert list(hps.raw.items()) == list(data.items())
    for name, raw in data.items():
        section = (hps.reserved if name in RESERVED_HYPERPARAMETERS
                   else hps.framework if name.startswith("sagemaker_") else hps.user)
        assert _same(section[name], _expected_decode(raw))
    # Every key lands in exactly one section, and each section keeps the job's order.
    assert len(hps.user) + len(hps.framework) + len(hps.reserved) == len(data)
    for section in (hps.user, hps.framework, hps.reserved):
        keys = list(section)
        assert keys == [k for k in data if k in section]


def test_split_into_user_framework_reserved() -> None:
    hps = Hyperparameters.parse({
        "epochs": "3",
        "sagemaker_program": '"train.py"',
        "sagemaker_torch_distributed_enabled": "true",
        "lr": "0.1",
        "sagemaker_submit_directory": '"s3://b/code.tar.gz"',
        "_tuning_objective_metric": '"loss"',
        "sagemaker_mpi_num_of_processes_per_host": "4",
        "sagemakerish": "x",
    })
    assert dict(hps.user) == {"epochs": 3, "lr": 0.1, "sagemakerish": "x"}
    assert list(hps.user) == ["epochs", "lr", "sagemakerish"]
    assert dict(hps.framework) == {"sagemaker_torch_distributed_enabled": True,
                                   "sagemaker_mpi_num_of_processes_per_host": 4}
    assert dict(hps.reserved) == {"sagemaker_program": "train.py",
                                  "sagemaker_submit_directory": "s3://b/code.tar.gz",
                                  "_tuning_objective_metric": "loss"}


def test_every_reserved_name_of_the_contract() -> None:
    assert {
        "sagemaker_program", "sagemaker_submit_directory", "sagemaker_region",
        "sagemaker_container_log_level", "sagemaker_job_name",
        "sagemaker_enable_cloudwatch_metrics", "sagemaker_s3_output", "_tuning_objective_metric",
    } == RESERVED_HYPERPARAMETERS


def test_missing_or_null_hyperparameters_are_empty() -> None:
    assert dict(Hyperparameters.parse(None).user) == {}
    assert dict(Hyperparameters.parse({}).raw) == {}


def test_parsed_hyperparameters_are_read_only() -> None:
    hps = Hyperparameters.parse({"a": "1"})
    with pytest.raises(TypeError):
        hps.user["a"] = 2  # type: ignore[index]


def test_exactly_100_entries_parse() -> None:
    data = {f"h{i}": str(i) for i in range(MAX_HYPERPARAMETERS)}
    assert len(Hyperparameters.parse(data).user) == 100


@given(st.integers(min_value=MAX_HYPERPARAMETERS + 1, max_value=150))
def test_more_than_100_entries_fail(count: int) -> None:
    error = _raises(Hyperparameters.parse, {f"h{i}": "1" for i in range(count)}, source="hp.json")
    assert error.source == "hp.json"
    assert error.field == "<root>"
    assert str(count) in error.message


@pytest.mark.parametrize("value", [1, 0.5, True, None, ["a"], {"a": "b"}])
def test_non_string_values_fail_naming_the_field(value: Any) -> None:
    error = _raises(Hyperparameters.parse, {"ok": "1", "bad": value})
    assert error.field == "bad"
    assert "string" in error.message


@pytest.mark.parametrize("name", ["", "a=b", "=", "nul\x00name"])
def test_bad_names_fail_naming_the_field(name: str) -> None:
    error = _raises(Hyperparameters.parse, {name: "1"})
    assert error.field == name


def test_nul_in_a_value_fails() -> None:
    assert _raises(Hyperparameters.parse, {"x": "a\x00b"}).field == "x"


@pytest.mark.parametrize("data", [[], "text", 3, [["a", "1"]]])
def test_hyperparameters_root_must_be_an_object(data: Any) -> None:
    assert _raises(Hyperparameters.parse, data).field == "<root>"


# -- parse_input_data_config -----------------------------------------------------------------

channel_names = st.from_regex(r"[A-Za-z0-9.\-_]{1,64}", fullmatch=True).filter(
    lambda n: n not in {".", ".."})
channel_entries = st.fixed_dictionaries({}, optional={
    "TrainingInputMode": st.sampled_from(INPUT_MODES),
    "S3DistributionType": st.sampled_from(DISTRIBUTION_TYPES),
    "RecordWrapperType": st.sampled_from(RECORD_WRAPPER_TYPES),
    "CompressionType": st.sampled_from(COMPRESSION_TYPES),
    "ContentType": st.sampled_from(["text/csv", "application/x-recordio-protobuf",
                                    "application/jsonlines"]),
})


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(channel_names, channel_entries, max_size=MAX_CHANNELS))
def test_any_valid_input_data_config_parses(data: dict[str, dict[str, str]]) -> None:
    channels = parse_input_data_config(data)
    assert list(channels) == list(data)
    for name, entry in data.items():
        channel = channels[name]
        assert channel.name == name
        assert channel.input_mode == entry.get("TrainingInputMode", "File")
        assert channel.distribution == entry.get("S3DistributionType", "FullyReplicated")
        assert channel.record_wrapper == entry.get("RecordWrapperType", "None")
        assert channel.compression == entry.get("CompressionType", "None")
        assert channel.content_type == entry.get("ContentType")
        assert dict(channel.raw) == entry


def test_unknown_keys_are_kept_in_raw() -> None:
    entry = {"TrainingInputMode": "Pipe", "ShuffleConfig": {"Seed": 7},
             "S3DataDistributionType": "FullyReplicated"}
    channel = parse_input_data_config({"train": entry})["train"]
    assert channel.input_mode == "Pipe"
    assert dict(channel.raw) == entry


@given(channel_names,
       st.sampled_from(["TrainingInputMode", "S3DistributionType", "RecordWrapperType",
                        "CompressionType"]),
       st.one_of(st.text().filter(lambda v: v not in INPUT_MODES + DISTRIBUTION_TYPES
                                  + RECORD_WRAPPER_TYPES + COMPRESSION_TYPES),
                 st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)))
def test_bad_enum_values_name_channel_and_key(name: str, key: str, value: Any) -> None:
    error = _raises(parse_input_data_config, {name: {key: value}}, source="idc.json")
    assert error.source == "idc.json"
    assert error.field == f"{name}.{key}"


@pytest.mark.parametrize(("key", "value"), [
    ("TrainingInputMode", "file"), ("TrainingInputMode", "Stream"),
    ("S3DistributionType", "Sharded"), ("RecordWrapperType", "recordio"),
    ("CompressionType", "gzip"),
])
def test_enum_values_are_case_sensitive(key: str, value: str) -> None:
    assert _raises(parse_input_data_config, {"train": {key: value}}).field == f"train.{key}"


@pytest.mark.parametrize("value", [1, ["text/csv"], {"a": 1}, True])
def test_content_type_must_be_a_string(value: Any) -> None:
    error = _raises(parse_input_data_config, {"val": {"ContentType": value}})
    assert error.field == "val.ContentType"


@pytest.mark.parametrize("name", ["", "a/b", "x" * 65, "trän", "has space", "a:b", "../up"])
def test_bad_channel_names_fail(name: str) -> None:
    assert _raises(parse_input_data_config, {name: {}}).field == name


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_channel_names_are_refused(name: str) -> None:
    # The name pattern admits "." and "..", whose channel_dir() would be input/data itself or
    # input/ — data would be written outside /opt/ml/input/data.
    assert _raises(parse_input_data_config, {name: {}}).field == name


@pytest.mark.parametrize("entry", [[], "File", None, 3])
def test_channel_entry_must_be_an_object(entry: Any) -> None:
    assert _raises(parse_input_data_config, {"train": entry}).field == "train"


def test_at_most_20_channels() -> None:
    ok: dict[str, dict[str, str]] = {f"c{i}": {} for i in range(MAX_CHANNELS)}
    assert len(parse_input_data_config(ok)) == MAX_CHANNELS
    error = _raises(parse_input_data_config, {f"c{i}": {} for i in range(MAX_CHANNELS + 1)})
    assert error.field == "<root>"


def test_input_data_config_root() -> None:
    assert dict(parse_input_data_config(None)) == {}
    assert _raises(parse_input_data_config, ["train"]).field == "<root>"


# -- ResourceConfig --------------------------------------------------------------------------

def _resources(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "current_host": "algo-2",
        "current_instance_type": "ml.m5.xlarge",
        "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1", "algo-2"],
        "network_interface_name": "eth0",
        "instance_groups": [{"instance_group_name": "homogeneousCluster",
                             "instance_type": "ml.m5.xlarge", "hosts": ["algo-2", "algo-1"]}],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not ...}


def test_contract_example_parses() -> None:
    res = ResourceConfig.parse(_resources())
    assert res.current_host == "algo-2"
    assert res.hosts == ("algo-1", "algo-2")
    assert res.network_interface_name == "eth0"
    assert res.current_instance_type == "ml.m5.xlarge"
    assert res.current_group_name == "homogeneousCluster"
    assert res.instance_groups[0]["hosts"] == ["algo-2", "algo-1"]
    assert dict(res.raw) == _resources()


def test_master_is_the_first_sorted_host_not_the_first_of_instance_groups() -> None:
    res = ResourceConfig.parse(_resources(current_host="algo-2", hosts=["algo-2", "algo-1"]))
    assert res.sorted_hosts == ("algo-1", "algo-2")
    assert res.master_host == "algo-1"
    assert res.node_rank == 1
    assert res.is_master is False
    first = ResourceConfig.parse(_resources(current_host="algo-1", hosts=["algo-2", "algo-1"]))
    assert first.is_master is True
    assert first.node_rank == 0


@given(st.lists(st.from_regex(r"algo-[1-9][0-9]{0,2}", fullmatch=True), min_size=1,
                max_size=20, unique=True), st.data())
def test_every_host_agrees_on_master_and_ranks(hosts: list[str], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(hosts))
    ranks = {}
    masters = set()
    for current in hosts:
        res = ResourceConfig.parse(_resources(current_host=current, hosts=list(shuffled),
                                              instance_groups=[]))
        ranks[current] = res.node_rank
        masters.add(res.master_host)
        assert res.is_master == (res.node_rank == 0)
    assert masters == {min(hosts)}
    assert sorted(ranks.values()) == list(range(len(hosts)))


def test_only_the_guaranteed_keys_are_needed() -> None:
    res = ResourceConfig.parse({"current_host": "algo-1", "hosts": ["algo-1"],
                                "network_interface_name": "eth0"})
    assert res.current_instance_type is None
    assert res.current_group_name is None
    assert res.instance_groups == ()
    assert res.is_master


@pytest.mark.parametrize("key", ["current_host", "hosts", "network_interface_name"])
def test_missing_required_keys(key: str) -> None:
    error = _raises(ResourceConfig.parse, _resources(**{key: ...}), source="rc.json")
    assert (error.source, error.field) == ("rc.json", key)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"current_host": "algo-3"}, "current_host"),
    ({"current_host": 1}, "current_host"),
    ({"hosts": []}, "hosts"),
    ({"hosts": "algo-1,algo-2"}, "hosts"),
    ({"hosts": ["algo-1", "algo-2", "algo-1"]}, "hosts"),
    ({"hosts": ["algo-1", ""]}, "hosts[1]"),
    ({"hosts": ["algo-2", 7]}, "hosts[1]"),
    ({"network_interface_name": None}, "network_interface_name"),
    ({"current_instance_type": 5}, "current_instance_type"),
    ({"current_group_name": ["g"]}, "current_group_name"),
    ({"instance_groups": {"hosts": []}}, "instance_groups"),
    ({"instance_groups": ["group"]}, "instance_groups[0]"),
    ({"instance_groups": [{"hosts": "algo-1"}]}, "instance_groups[0].hosts"),
])
def test_bad_resource_config_names_the_field(overrides: dict[str, Any], field: str) -> None:
    assert _raises(ResourceConfig.parse, _resources(**overrides)).field == field


def test_resource_config_root_must_be_an_object() -> None:
    assert _raises(ResourceConfig.parse, None).field == "<root>"
    assert _raises(ResourceConfig.parse, ["algo-1"]).field == "<root>"


# -- CheckpointConfig ------------------------------------------------------------------------

def test_checkpoint_defaults_without_a_file(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    assert CheckpointConfig.parse(None, layout) == CheckpointConfig(tmp_path / "checkpoints")


def test_checkpoint_config_values(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    cp = CheckpointConfig.parse({"LocalPath": "/ckpt/here", "S3Uri": "s3://b/ckpt"}, layout)
    assert cp == CheckpointConfig(Path("/ckpt/here"), "s3://b/ckpt")
    only_s3 = CheckpointConfig.parse({"S3Uri": "s3://b/ckpt"}, layout)
    assert only_s3.local_path == tmp_path / "checkpoints"


@pytest.mark.parametrize(("data", "field"), [
    ({"LocalPath": "relative/dir"}, "LocalPath"),
    ({"LocalPath": ""}, "LocalPath"),
    ({"LocalPath": 3}, "LocalPath"),
    ({"S3Uri": ["s3://b"]}, "S3Uri"),
    (["/ckpt"], "<root>"),
])
def test_bad_checkpoint_config(tmp_path: Path, data: Any, field: str) -> None:
    error = _raises(CheckpointConfig.parse, data, Layout(tmp_path), source="cp.json")
    assert (error.source, error.field) == ("cp.json", field)


# -- load_job_config -------------------------------------------------------------------------

def _write_job(layout: Layout, **files: Any) -> None:
    contents = {
        "hyperparameters_file": {"epochs": "2", "sagemaker_program": '"train.py"'},
        "input_data_config_file": {"train": {"TrainingInputMode": "File"}},
        "resource_config_file": {"current_host": "algo-1", "hosts": ["algo-1"],
                                 "network_interface_name": "eth0"},
    }
    contents.update(files)
    layout.input_config_dir.mkdir(parents=True, exist_ok=True)
    for attribute, content in contents.items():
        if content is ...:
            continue
        path: Path = getattr(layout, attribute)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content))


def test_load_job_config(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    _write_job(layout, checkpoint_config_file={"LocalPath": "/ckpt", "S3Uri": "s3://b/c"})
    job = load_job_config(layout)
    assert dict(job.hyperparameters.user) == {"epochs": 2}
    assert job.hyperparameters.reserved["sagemaker_program"] == "train.py"
    assert list(job.channels) == ["train"]
    assert job.resources.current_host == "algo-1"
    assert job.checkpoint == CheckpointConfig(Path("/ckpt"), "s3://b/c")
    assert dict(job.input_data_config_raw) == {"train": {"TrainingInputMode": "File"}}


def test_checkpoint_file_is_optional(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    _write_job(layout)
    assert load_job_config(layout).checkpoint.local_path == tmp_path / "checkpoints"


@pytest.mark.parametrize("attribute", ["hyperparameters_file", "input_data_config_file",
                                       "resource_config_file"])
def test_missing_required_file_names_it(tmp_path: Path, attribute: str) -> None:
    layout = Layout(tmp_path)
    _write_job(layout, **{attribute: ...})
    error = _raises(load_job_config, layout)
    assert error.source == str(getattr(layout, attribute))
    assert "missing" in error.message


@pytest.mark.parametrize("attribute", ["hyperparameters_file", "input_data_config_file",
                                       "resource_config_file", "checkpoint_config_file"])
def test_malformed_json_names_the_file_and_position(tmp_path: Path, attribute: str) -> None:
    layout = Layout(tmp_path)
    _write_job(layout, **{attribute: '{\n  "a": 1,\n  oops\n}'})
    error = _raises(load_job_config, layout)
    assert error.source == str(getattr(layout, attribute))
    assert "line 3" in error.message
    assert str(getattr(layout, attribute)) in str(error)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    _write_job(layout, hyperparameters_file=b'{"a": "\xff\xfe"}')
    assert _raises(load_job_config, layout).source == str(layout.hyperparameters_file)


def test_unreadable_path_is_a_config_error(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    _write_job(layout, resource_config_file=...)
    layout.resource_config_file.mkdir()
    error = _raises(load_job_config, layout)
    assert error.source == str(layout.resource_config_file)


def test_field_errors_name_the_real_file(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    _write_job(layout, input_data_config_file={"train": {"TrainingInputMode": "Tape"}})
    error = _raises(load_job_config, layout)
    assert error.source == str(layout.input_data_config_file)
    assert error.field == "train.TrainingInputMode"


def test_null_input_data_config_means_no_channels(tmp_path: Path) -> None:
    # parse_input_data_config accepts null as "no channels"; load_job_config must not then
    # crash with a TypeError on dict(None) (which train would report as an internal error).
    layout = Layout(tmp_path)
    _write_job(layout, input_data_config_file="null")
    job = load_job_config(layout)
    assert dict(job.channels) == {}
    assert dict(job.input_data_config_raw) == {}


@pytest.mark.parametrize("text", ["", "   ", "{", "[1,]", "{'a': '1'}"])
def test_invalid_json_texts(tmp_path: Path, text: str) -> None:
    layout = Layout(tmp_path)
    _write_job(layout, hyperparameters_file=text)
    assert "not valid JSON" in _raises(load_job_config, layout).message


def test_printable_names_roundtrip_through_a_file(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    names = {c * 3: f'"{c}"' for c in string.ascii_letters[:50]}
    _write_job(layout, hyperparameters_file=names)
    assert list(load_job_config(layout).hyperparameters.user) == list(names)
