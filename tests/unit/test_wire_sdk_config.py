"""The SageMaker SDK configuration a wire-API server writes: found where the SDK finds the user's,
merged with it, and read back by the SDK's own loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from local_mode.wire.sdk_config import (
    CONFIG_NAME,
    OVERRIDE_VARIABLE,
    default_bucket,
    user_config_path,
    write_sdk_config,
)

BUCKET = default_bucket("us-east-1", "000000000000")


def _modules(config: dict[str, Any]) -> dict[str, Any]:
    modules: dict[str, Any] = config["SageMaker"]["PythonSDK"]["Modules"]
    return modules


def _user_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


USERS = {
    "SchemaVersion": "1.0",
    "SageMaker": {
        "PythonSDK": {"Modules": {"Session": {"DefaultS3Bucket": "my-own-bucket",
                                              "DefaultS3ObjectKeyPrefix": "team/a"},
                                  "TelemetryOptOut": False}},
        "TrainingJob": {"RoleArn": "arn:aws:iam::000000000000:role/mine"},
    },
}


def test_the_default_bucket_is_the_sdks_name() -> None:
    assert BUCKET == "sagemaker-us-east-1-000000000000"


# -- where the user's file is -----------------------------------------------------------------------

def test_the_users_file_is_under_home(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert user_config_path(env) is None
    path = _user_config(tmp_path / ".config" / "sagemaker" / "config.yaml", USERS)
    assert user_config_path(env) == path


def test_xdg_config_home_wins_over_home(tmp_path: Path) -> None:
    _user_config(tmp_path / ".config" / "sagemaker" / "config.yaml", USERS)
    xdg = _user_config(tmp_path / "xdg" / "sagemaker" / "config.yaml", USERS)
    assert user_config_path({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}) \
        == xdg
    # an empty XDG_CONFIG_HOME is unset (the XDG specification says so)
    assert user_config_path({"HOME": str(tmp_path), "XDG_CONFIG_HOME": ""}) == \
        tmp_path / ".config" / "sagemaker" / "config.yaml"


def test_the_override_names_a_file_or_a_directory(tmp_path: Path) -> None:
    _user_config(tmp_path / ".config" / "sagemaker" / "config.yaml", USERS)
    named = _user_config(tmp_path / "elsewhere" / "my.yaml", USERS)
    in_dir = _user_config(tmp_path / "dir" / "config.yaml", USERS)
    home = str(tmp_path)
    assert user_config_path({"HOME": home, OVERRIDE_VARIABLE: str(named)}) == named
    assert user_config_path({"HOME": home, OVERRIDE_VARIABLE: str(in_dir.parent)}) == in_dir
    # an override naming nothing is no configuration (not a fallback to the default one)
    assert user_config_path({"HOME": home, OVERRIDE_VARIABLE: str(tmp_path / "gone")}) is None
    assert user_config_path({"HOME": home, OVERRIDE_VARIABLE: str(tmp_path)}) is None


def test_without_home_or_override_there_is_none() -> None:
    assert user_config_path({}) is None


# -- what is written -------------------------------------------------------------------------------

def test_without_a_users_file_the_bucket_and_opt_out_are_written(tmp_path: Path) -> None:
    path = write_sdk_config(tmp_path / "state", BUCKET, {"HOME": str(tmp_path)})
    assert path == tmp_path / "state" / CONFIG_NAME
    written = yaml.safe_load(path.read_text())
    assert written["SchemaVersion"] == "1.0"
    assert _modules(written) == {"Session": {"DefaultS3Bucket": BUCKET}, "TelemetryOptOut": True}


def test_the_users_choices_are_kept(tmp_path: Path) -> None:
    source = _user_config(tmp_path / ".config" / "sagemaker" / "config.yaml", USERS)
    before = source.read_text()
    written = yaml.safe_load(write_sdk_config(tmp_path / "state", BUCKET,
                                              {"HOME": str(tmp_path)}).read_text())
    assert written == USERS
    assert source.read_text() == before  # the user's own file is not touched


def test_members_the_user_left_unset_are_filled_in(tmp_path: Path) -> None:
    partial = {"SchemaVersion": "1.0", "SageMaker": {
        "PythonSDK": {"Modules": {"Session": {"DefaultS3ObjectKeyPrefix": "p"}}},
        "Model": {"EnableNetworkIsolation": True}}}
    source = _user_config(tmp_path / "cfg" / "config.yaml", partial)
    written = yaml.safe_load(write_sdk_config(
        tmp_path / "state", BUCKET, {OVERRIDE_VARIABLE: str(source.parent)}).read_text())
    assert _modules(written) == {"Session": {"DefaultS3ObjectKeyPrefix": "p",
                                             "DefaultS3Bucket": BUCKET},
                                 "TelemetryOptOut": True}
    assert written["SageMaker"]["Model"] == {"EnableNetworkIsolation": True}


@pytest.mark.parametrize("content", ["", "# nothing yet\n", "[1, 2]\n", "just text\n"])
def test_a_users_file_that_is_no_mapping_is_replaced(tmp_path: Path, content: str) -> None:
    source = tmp_path / "config.yaml"
    source.write_text(content)
    written = yaml.safe_load(write_sdk_config(tmp_path / "state", BUCKET,
                                              {OVERRIDE_VARIABLE: str(source)}).read_text())
    assert _modules(written)["Session"] == {"DefaultS3Bucket": BUCKET}


def test_the_servers_own_file_is_not_merged_into_itself(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = write_sdk_config(state, "first-bucket", {})
    # a shell that exported the first server's variables starts the next one
    again = write_sdk_config(state, BUCKET, {OVERRIDE_VARIABLE: str(first)})
    assert again == first
    assert _modules(yaml.safe_load(again.read_text()))["Session"]["DefaultS3Bucket"] == BUCKET


# -- what the SDK reads ---------------------------------------------------------------------------

@pytest.fixture()
def sdk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """``sagemaker.config`` with no configuration of the caller's in effect."""
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    monkeypatch.delenv(OVERRIDE_VARIABLE, raising=False)
    monkeypatch.delenv("SAGEMAKER_ADMIN_CONFIG_OVERRIDE", raising=False)
    import sagemaker.config

    return sagemaker.config


@pytest.mark.parametrize("users", [None, USERS], ids=["alone", "merged"])
def test_the_sdk_loads_the_written_file(sdk: Any, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        users: dict[str, Any] | None) -> None:
    env = {"HOME": str(tmp_path)}
    if users is not None:
        _user_config(tmp_path / ".config" / "sagemaker" / "config.yaml", users)
    path = write_sdk_config(tmp_path / "state", BUCKET, env)
    loaded = sdk.load_sagemaker_config([str(path)])  # validated against the SDK's schema
    expected_bucket = BUCKET if users is None else "my-own-bucket"
    assert _modules(loaded)["Session"]["DefaultS3Bucket"] == expected_bucket
    assert _modules(loaded)["TelemetryOptOut"] is (users is None)

    # as a session of the server finds it: through the override variable the server exports
    monkeypatch.setenv(OVERRIDE_VARIABLE, str(path))
    assert _modules(sdk.load_sagemaker_config())["Session"]["DefaultS3Bucket"] == \
        expected_bucket
