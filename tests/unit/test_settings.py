"""toolkit.settings: every variable parsed, defaults, and bad values named in a ConfigError."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolkit.errors import ConfigError
from toolkit.layout import DEFAULT_ROOT, Layout
from toolkit.settings import ServingSettings, Settings, TrainingSettings


def _bad(env: dict[str, str], section: str) -> ConfigError:
    settings = Settings.from_environ(env)
    with pytest.raises(ConfigError) as info:
        getattr(settings, section)
    return info.value


# -- Settings --------------------------------------------------------------------------------

def test_defaults_with_an_empty_environment() -> None:
    settings = Settings.from_environ({})
    assert settings.base_dir == DEFAULT_ROOT
    assert settings.layout == Layout(DEFAULT_ROOT)
    assert settings.training == TrainingSettings()
    assert settings.serving == ServingSettings()
    assert dict(settings.environ) == {}


def test_base_dir_relocates_the_layout(tmp_path: Path) -> None:
    settings = Settings.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)})
    assert settings.base_dir == tmp_path
    assert settings.layout.failure_file == tmp_path / "output" / "failure"


def test_empty_base_dir_means_the_default() -> None:
    assert Settings.from_environ({"SAGEMAKER_BASE_DIR": ""}).base_dir == DEFAULT_ROOT


def test_environ_is_a_read_only_snapshot() -> None:
    source = {"A": "1"}
    settings = Settings.from_environ(source)
    source["A"] = "2"
    source["B"] = "3"
    assert dict(settings.environ) == {"A": "1"}
    with pytest.raises(TypeError):
        settings.environ["A"] = "x"  # type: ignore[index]


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "from-os-environ.py")
    settings = Settings.from_environ()
    assert settings.training.program == "from-os-environ.py"
    assert settings.environ["SAGEMAKER_PROGRAM"] == "from-os-environ.py"


def test_settings_are_frozen() -> None:
    settings = Settings.from_environ({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.base_dir = Path("/elsewhere")  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.training.program = "x"  # type: ignore[misc]


def test_sections_are_parsed_once() -> None:
    settings = Settings.from_environ({"OPTML_MASTER_PORT": "1234"})
    assert settings.training is settings.training
    assert settings.serving is settings.serving


def test_a_bad_serving_variable_does_not_break_training() -> None:
    settings = Settings.from_environ({"SAGEMAKER_BIND_TO_PORT": "eighty",
                                      "SAGEMAKER_PROGRAM": "train.py"})
    assert settings.training.program == "train.py"
    with pytest.raises(ConfigError) as info:
        _ = settings.serving
    assert info.value.field == "SAGEMAKER_BIND_TO_PORT"


def test_a_bad_training_variable_does_not_break_serving() -> None:
    settings = Settings.from_environ({"OPTML_STOP_GRACE_SECONDS": "soon"})
    assert settings.serving.port == 8080
    with pytest.raises(ConfigError) as info:
        _ = settings.training
    assert info.value.field == "OPTML_STOP_GRACE_SECONDS"


# -- TrainingSettings ------------------------------------------------------------------------

def test_every_training_variable_is_read() -> None:
    env = {
        "SAGEMAKER_PROGRAM": "train.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "s3://bucket/code.tar.gz",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "10",
        "SAGEMAKER_REGION": "eu-west-1",
        "TRAINING_JOB_NAME": "job-1",
        "TRAINING_JOB_ARN": "arn:aws:sagemaker:eu-west-1:1:training-job/job-1",
        "OPTML_STOP_GRACE_SECONDS": "12.5",
        "OPTML_HOST_RESOLVE_TIMEOUT": "30",
        "OPTML_MASTER_PORT": "29500",
        "OPTML_INSTALL_REQUIREMENTS": "false",
        "OPTML_TORCH_DISTRIBUTED": "true",
        "OPTML_NPROC_PER_NODE": "4",
    }
    assert Settings.from_environ(env).training == TrainingSettings(
        program="train.py",
        submit_directory="s3://bucket/code.tar.gz",
        log_level=10,
        region="eu-west-1",
        job_name="job-1",
        job_arn="arn:aws:sagemaker:eu-west-1:1:training-job/job-1",
        stop_grace_seconds=12.5,
        host_resolve_timeout_seconds=30.0,
        master_port=29500,
        install_requirements=False,
        torch_distributed=True,
        nproc_per_node=4,
    )


def test_training_defaults() -> None:
    training = TrainingSettings.from_environ({})
    assert training.program is None
    assert training.submit_directory is None
    assert training.log_level is None
    assert training.region is None
    assert training.job_name is None
    assert training.job_arn is None
    assert training.stop_grace_seconds == 110.0
    assert training.host_resolve_timeout_seconds == 300.0
    assert training.master_port == 7777
    assert training.install_requirements is True
    assert training.torch_distributed is None
    assert training.nproc_per_node is None


def test_empty_strings_count_as_unset() -> None:
    env = {name: "" for name in ("SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY",
                                 "SAGEMAKER_CONTAINER_LOG_LEVEL", "TRAINING_JOB_NAME",
                                 "OPTML_STOP_GRACE_SECONDS", "OPTML_MASTER_PORT",
                                 "OPTML_NPROC_PER_NODE")}
    training = TrainingSettings.from_environ(env)
    assert training.program is None
    assert training.submit_directory is None
    assert training.log_level is None
    assert training.job_name is None
    assert training.stop_grace_seconds == 110.0
    assert training.master_port == 7777
    assert training.nproc_per_node is None


def test_region_falls_back_to_aws_region() -> None:
    assert TrainingSettings.from_environ({"AWS_REGION": "us-west-2"}).region == "us-west-2"
    both = {"AWS_REGION": "us-west-2", "SAGEMAKER_REGION": "eu-central-1"}
    assert TrainingSettings.from_environ(both).region == "eu-central-1"


@pytest.mark.parametrize(("raw", "level"), [
    ("10", 10), ("20", 20), (" 40 ", 40), ("DEBUG", 10), ("info", 20), ("Warning", 30),
    ("WARN", 30), ("error", 40), ("CRITICAL", 50), ("FATAL", 50), ("NOTSET", 0),
])
def test_log_level_accepts_numbers_and_names(raw: str, level: int) -> None:
    env = {"SAGEMAKER_CONTAINER_LOG_LEVEL": raw}
    assert TrainingSettings.from_environ(env).log_level == level
    assert ServingSettings.from_environ(env).log_level == level


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "on", " On "])
def test_booleans_true(raw: str) -> None:
    training = TrainingSettings.from_environ({"OPTML_INSTALL_REQUIREMENTS": raw,
                                              "OPTML_TORCH_DISTRIBUTED": raw})
    assert training.install_requirements is True
    assert training.torch_distributed is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "off", ""])
def test_booleans_false(raw: str) -> None:
    training = TrainingSettings.from_environ({"OPTML_INSTALL_REQUIREMENTS": raw,
                                              "OPTML_TORCH_DISTRIBUTED": raw})
    assert training.install_requirements is False
    assert training.torch_distributed is False


@pytest.mark.parametrize(("name", "raw"), [
    ("OPTML_STOP_GRACE_SECONDS", "soon"),
    ("OPTML_STOP_GRACE_SECONDS", "-1"),
    ("OPTML_HOST_RESOLVE_TIMEOUT", "5m"),
    ("OPTML_HOST_RESOLVE_TIMEOUT", "-0.5"),
    ("OPTML_MASTER_PORT", "http"),
    ("OPTML_MASTER_PORT", "0"),
    ("OPTML_MASTER_PORT", "1.5"),
    ("OPTML_NPROC_PER_NODE", "0"),
    ("OPTML_NPROC_PER_NODE", "auto"),
    ("OPTML_INSTALL_REQUIREMENTS", "maybe"),
    ("OPTML_TORCH_DISTRIBUTED", "2"),
    ("SAGEMAKER_CONTAINER_LOG_LEVEL", "LOUD"),
])
def test_bad_training_values_name_the_variable(name: str, raw: str) -> None:
    error = _bad({name: raw}, "training")
    assert error.field == name
    assert error.source == "environment"
    assert name in str(error)
    assert repr(raw) in str(error) or raw.strip() in str(error)


@pytest.mark.parametrize("name", ["OPTML_STOP_GRACE_SECONDS", "OPTML_HOST_RESOLVE_TIMEOUT"])
def test_durations_must_not_be_nan(name: str) -> None:
    # A NaN deadline never expires (``nan <= 0`` is false), so wait_for_hosts would loop for ever.
    assert _bad({name: "nan"}, "training").field == name


def test_stop_grace_must_be_finite() -> None:
    # threading.Timer(inf) raises OverflowError inside the timer thread: SIGKILL would never come.
    assert _bad({"OPTML_STOP_GRACE_SECONDS": "inf"}, "training").field == \
        "OPTML_STOP_GRACE_SECONDS"


def test_master_port_must_be_a_tcp_port() -> None:
    error = _bad({"OPTML_MASTER_PORT": "70000"}, "training")
    assert error.field == "OPTML_MASTER_PORT"


@given(st.integers(min_value=1, max_value=65535))
def test_any_valid_master_port_parses(port: int) -> None:
    assert TrainingSettings.from_environ({"OPTML_MASTER_PORT": str(port)}).master_port == port


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_any_non_negative_grace_parses(seconds: float) -> None:
    env = {"OPTML_STOP_GRACE_SECONDS": repr(seconds)}
    assert TrainingSettings.from_environ(env).stop_grace_seconds == seconds


# -- ServingSettings -------------------------------------------------------------------------

def test_every_serving_variable_is_read() -> None:
    env = {
        "SAGEMAKER_BIND_TO_PORT": "9090",
        "SAGEMAKER_SAFE_PORT_RANGE": "20000-20999",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "120",
        "SAGEMAKER_PROGRAM": "serve.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "WARNING",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "50",
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "2",
        "SAGEMAKER_MULTI_MODEL": "true",
        "OPTML_DEBUG_ERRORS": "1",
        "OPTML_PRELOAD_MODEL": "0",
        "OPTML_INSTALL_REQUIREMENTS": "no",
        "OPTML_DEFAULT_HANDLERS": "framework.handlers",
        "OPTML_BIND_HOST": "127.0.0.1",
        "OPTML_UNIX_SOCKET": "/run/optml/serve.sock",
    }
    assert Settings.from_environ(env).serving == ServingSettings(
        port=9090,
        bind_host="127.0.0.1",
        unix_socket="/run/optml/serve.sock",
        safe_port_range=(20000, 20999),
        workers=3,
        timeout_seconds=120,
        program="serve.py",
        submit_directory="/opt/ml/model/code",
        default_accept="application/json",
        log_level=30,
        max_payload_mb=50,
        batch=True,
        batch_strategy="SINGLE_RECORD",
        max_concurrent_transforms=2,
        multi_model=True,
        debug_errors=True,
        preload_model=False,
        install_requirements=False,
        default_handlers="framework.handlers",
    )


def test_serving_defaults() -> None:
    serving = ServingSettings.from_environ({})
    assert serving.port == 8080
    assert serving.safe_port_range is None
    assert serving.workers is None
    assert serving.timeout_seconds == 60
    assert serving.program == "inference.py"
    assert serving.submit_directory is None
    assert serving.default_accept is None
    assert serving.log_level == 20
    assert serving.max_payload_mb == 6
    assert serving.batch is False
    assert serving.batch_strategy is None
    assert serving.max_concurrent_transforms is None
    assert serving.multi_model is False
    assert serving.debug_errors is False
    assert serving.preload_model is True
    assert serving.install_requirements is True
    assert serving.default_handlers is None


def test_max_payload_zero_means_streaming() -> None:
    assert ServingSettings.from_environ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "0"}).max_payload_mb == 0


@pytest.mark.parametrize(("raw", "strategy"), [
    ("MULTI_RECORD", "MULTI_RECORD"), ("multi_record", "MULTI_RECORD"),
    ("MultiRecord", "MULTI_RECORD"), ("multi-record", "MULTI_RECORD"),
    ("SingleRecord", "SINGLE_RECORD"), (" single_record ", "SINGLE_RECORD"),
])
def test_batch_strategy_spellings(raw: str, strategy: str) -> None:
    assert ServingSettings.from_environ({"SAGEMAKER_BATCH_STRATEGY": raw}).batch_strategy == \
        strategy


@pytest.mark.parametrize(("name", "raw"), [
    ("SAGEMAKER_BIND_TO_PORT", "eighty"),
    ("SAGEMAKER_BIND_TO_PORT", "0"),
    ("SAGEMAKER_SAFE_PORT_RANGE", "20000"),
    ("SAGEMAKER_SAFE_PORT_RANGE", "b-a"),
    ("SAGEMAKER_SAFE_PORT_RANGE", "20999-20000"),
    ("SAGEMAKER_MODEL_SERVER_WORKERS", "0"),
    ("SAGEMAKER_MODEL_SERVER_WORKERS", "many"),
    ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "0"),
    ("SAGEMAKER_CONTAINER_LOG_LEVEL", "chatty"),
    ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "-1"),
    ("SAGEMAKER_BATCH", "sometimes"),
    ("SAGEMAKER_BATCH_STRATEGY", "ALL_AT_ONCE"),
    ("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", "0"),
    ("SAGEMAKER_MULTI_MODEL", "2"),
    ("OPTML_DEBUG_ERRORS", "please"),
    ("OPTML_PRELOAD_MODEL", "nah"),
])
def test_bad_serving_values_name_the_variable(name: str, raw: str) -> None:
    error = _bad({name: raw}, "serving")
    assert error.field == name
    assert name in str(error)


def test_bind_port_must_be_a_tcp_port() -> None:
    assert _bad({"SAGEMAKER_BIND_TO_PORT": "65536"}, "serving").field == "SAGEMAKER_BIND_TO_PORT"


@pytest.mark.parametrize(("raw", "expected"), [(None, True), ("false", False), ("0", False),
                                               ("true", True)])
def test_warm_runners_switch(raw: str | None, expected: bool) -> None:
    env = {} if raw is None else {"OPTML_LOCAL_WARM_RUNNERS": raw}
    assert Settings.from_environ(env).local.warm_runners is expected


def test_bad_warm_runners_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="OPTML_LOCAL_WARM_RUNNERS"):
        _ = Settings.from_environ({"OPTML_LOCAL_WARM_RUNNERS": "sometimes"}).local


def test_cli_clients_start_no_runner_ahead(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from local_mode.cli.options import sagemaker_client

    monkeypatch.setenv("OPTML_LOCAL_WARM_RUNNERS", "true")
    client = sagemaker_client(tmp_path / "state", "process")
    assert client.settings.local.warm_runners is False
