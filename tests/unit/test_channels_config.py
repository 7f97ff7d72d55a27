"""inputdataconfig.json parsing for channel readers: good values, and errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.channels.config import (
    ChannelConfig,
    Compression,
    InputMode,
    RecordWrapper,
    load_channel_config,
    parse_channel_config,
)
from toolkit.errors import ConfigError


def write_config(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "inputdataconfig.json"
    path.write_text(json.dumps(document))
    return path


def test_reads_the_fields_a_reader_needs(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"train": {
        "TrainingInputMode": "Pipe", "S3DistributionType": "ShardedByS3Key",
        "RecordWrapperType": "RecordIO", "CompressionType": "Gzip",
        "ContentType": "application/x-recordio"}})
    assert load_channel_config(path, "train") == ChannelConfig(
        "train", InputMode.PIPE, RecordWrapper.RECORDIO, Compression.GZIP,
        "application/x-recordio")


def test_defaults_when_fields_are_absent() -> None:
    config = parse_channel_config({"eval": {}}, "eval", source="x")
    assert config == ChannelConfig("eval")
    assert config.input_mode is InputMode.FILE


@pytest.mark.parametrize(("field", "value"), [
    ("TrainingInputMode", "Streaming"), ("RecordWrapperType", "TFRecord"),
    ("CompressionType", "zip"), ("TrainingInputMode", 3)])
def test_bad_enum_value_names_file_and_field(tmp_path: Path, field: str, value: object) -> None:
    path = write_config(tmp_path, {"train": {field: value}})
    with pytest.raises(ConfigError) as info:
        load_channel_config(path, "train")
    assert info.value.source == str(path)
    assert info.value.field == f"train.{field}"


def test_missing_channel_lists_known_channels(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"train": {}, "validation": {}})
    with pytest.raises(ConfigError, match="train, validation") as info:
        load_channel_config(path, "test")
    assert info.value.field == "test"


def test_missing_file_and_bad_json_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file is missing"):
        load_channel_config(tmp_path / "nope.json", "train")
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": ')
    with pytest.raises(ConfigError, match="is not valid JSON: .* at line 1"):
        load_channel_config(bad, "train")


def test_non_object_documents_are_rejected() -> None:
    with pytest.raises(ConfigError, match="JSON object"):
        parse_channel_config([], "train", source="s")
    with pytest.raises(ConfigError, match="JSON object") as info:
        parse_channel_config({"train": "File"}, "train", source="s")
    assert info.value.field == "train"
    with pytest.raises(ConfigError, match="string") as info:
        parse_channel_config({"train": {"ContentType": 1}}, "train", source="s")
    assert info.value.field == "train.ContentType"


@pytest.mark.parametrize("name", ["", "../etc", "a/b", "x" * 65, "tr ain"])
def test_invalid_channel_names_are_rejected(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid channel name"):
        parse_channel_config({name: {}}, name, source="s")
