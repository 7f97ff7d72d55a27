"""toolkit.training.environment: the SM_* variables given to user code."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.layout import Layout
from toolkit.training.arguments import to_arguments
from toolkit.training.config import Hyperparameters, load_job_config
from toolkit.training.entry_point import resolve_entry_point
from toolkit.training.environment import (
    TrainingContext,
    build_environment,
    env_value,
    training_env,
)

#: The contract's variables, every name except the per-channel / per-hyperparameter families.
PLATFORM_VARIABLES = (
    "SM_MODEL_DIR", "SM_INPUT_DIR", "SM_INPUT_CONFIG_DIR", "SM_OUTPUT_DIR", "SM_OUTPUT_DATA_DIR",
    "SM_OUTPUT_INTERMEDIATE_DIR", "SM_CHANNELS", "SM_HPS", "SM_USER_ARGS", "SM_HOSTS",
    "SM_CURRENT_HOST", "SM_CURRENT_INSTANCE_TYPE", "SM_NETWORK_INTERFACE_NAME", "SM_NUM_CPUS",
    "SM_NUM_GPUS", "SM_LOG_LEVEL", "SM_MODULE_NAME", "SM_MODULE_DIR", "SM_USER_ENTRY_POINT",
    "SM_FRAMEWORK_PARAMS", "SM_RESOURCE_CONFIG", "SM_INPUT_DATA_CONFIG", "SM_TRAINING_ENV",
)
SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

HYPERPARAMETERS = {
    "batch-size": "64",
    "learning.rate": "0.01",
    "epochs": "3",
    "optimizer": '"adam"',
    "layers": "[64, 32]",
    "use_cuda": "false",
    "note": "two words",
    "sagemaker_program": '"train.py"',
    "sagemaker_submit_directory": '"s3://bucket/code.tar.gz"',
    "sagemaker_torch_distributed_enabled": "true",
    "sagemaker_container_log_level": "20",
}
INPUT_DATA_CONFIG = {
    "train": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
              "RecordWrapperType": "None"},
    "my-val": {"TrainingInputMode": "Pipe", "ContentType": "text/csv"},
    "test.v2": {"TrainingInputMode": "FastFile"},
}
RESOURCE_CONFIG = {
    "current_host": "algo-2",
    "current_instance_type": "ml.m5.xlarge",
    "current_group_name": "homogeneousCluster",
    "hosts": ["algo-2", "algo-1", "algo-3"],
    "network_interface_name": "eth0",
    "instance_groups": [{"instance_group_name": "homogeneousCluster",
                         "instance_type": "ml.m5.xlarge",
                         "hosts": ["algo-3", "algo-2", "algo-1"]}],
}


def _context(root: Path, *, hyperparameters: dict[str, str] | None = None,
             resource_config: dict[str, Any] | None = None) -> TrainingContext:
    layout = Layout(root)
    layout.input_config_dir.mkdir(parents=True)
    layout.hyperparameters_file.write_text(json.dumps(hyperparameters or HYPERPARAMETERS))
    layout.input_data_config_file.write_text(json.dumps(INPUT_DATA_CONFIG))
    layout.resource_config_file.write_text(json.dumps(resource_config or RESOURCE_CONFIG))
    layout.code_dir.mkdir()
    (layout.code_dir / "train.py").write_text("print('hi')\n")
    config = load_job_config(layout)
    return TrainingContext(
        layout=layout, config=config,
        entry_point=resolve_entry_point("train.py", layout.code_dir),
        module_dir="s3://bucket/code.tar.gz", num_cpus=2, num_gpus=0, log_level=20,
        job_name="job-42", checkpoint_dir=layout.default_checkpoint_dir)


@pytest.fixture()
def ctx(tmp_path: Path) -> TrainingContext:
    return _context(tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> TrainingContext:
    """One context on disk for property tests, which vary the parsed config in memory."""
    return _context(tmp_path_factory.mktemp("env"))


def _build(ctx: TrainingContext, base: dict[str, str] | None = None) -> dict[str, str]:
    return build_environment(ctx, to_arguments(ctx.config.hyperparameters.user), base or {})


def test_every_contract_variable_has_its_value(ctx: TrainingContext) -> None:
    env = _build(ctx)
    root = ctx.layout.root
    code = ctx.entry_point.code_dir
    for name in PLATFORM_VARIABLES:
        assert name in env, name
    assert env["SM_MODEL_DIR"] == str(root / "model")
    assert env["SM_INPUT_DIR"] == str(root / "input")
    assert env["SM_INPUT_CONFIG_DIR"] == str(root / "input" / "config")
    assert env["SM_OUTPUT_DIR"] == str(root / "output")
    assert env["SM_OUTPUT_DATA_DIR"] == str(root / "output" / "data")
    assert env["SM_OUTPUT_INTERMEDIATE_DIR"] == str(root / "output" / "intermediate")
    assert env["SM_CHECKPOINT_DIR"] == str(root / "checkpoints")
    assert env["SM_CHANNELS"] == '["my-val","test.v2","train"]'
    assert json.loads(env["SM_HPS"]) == {"batch-size": 64, "learning.rate": 0.01, "epochs": 3,
                                         "optimizer": "adam", "layers": [64, 32],
                                         "use_cuda": False, "note": "two words"}
    assert list(json.loads(env["SM_HPS"])) == ["batch-size", "learning.rate", "epochs",
                                               "optimizer", "layers", "use_cuda", "note"]
    assert json.loads(env["SM_USER_ARGS"]) == [
        "--batch-size", "64", "--learning.rate", "0.01", "--epochs", "3", "--optimizer", "adam",
        "--layers", "[64,32]", "--use_cuda", "False", "--note", "two words"]
    assert env["SM_HOSTS"] == '["algo-1","algo-2","algo-3"]'
    assert env["SM_CURRENT_HOST"] == "algo-2"
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "ml.m5.xlarge"
    assert env["SM_NETWORK_INTERFACE_NAME"] == "eth0"
    assert env["SM_NUM_CPUS"] == "2"
    assert env["SM_NUM_GPUS"] == "0"
    assert env["SM_LOG_LEVEL"] == "20"
    assert env["SM_MODULE_NAME"] == "train"
    assert env["SM_MODULE_DIR"] == "s3://bucket/code.tar.gz"
    assert env["SM_USER_ENTRY_POINT"] == "train.py"
    assert json.loads(env["SM_FRAMEWORK_PARAMS"]) == {
        "sagemaker_torch_distributed_enabled": True}
    assert json.loads(env["SM_RESOURCE_CONFIG"]) == RESOURCE_CONFIG
    assert json.loads(env["SM_INPUT_DATA_CONFIG"]) == INPUT_DATA_CONFIG
    assert env["SM_CURRENT_INSTANCE_GROUP"] == "homogeneousCluster"
    assert json.loads(env["SM_CURRENT_INSTANCE_GROUP_HOSTS"]) == ["algo-3", "algo-2", "algo-1"]
    assert json.loads(env["SM_INSTANCE_GROUPS"]) == ["homogeneousCluster"]
    assert env["SM_MASTER_ADDR"] == "algo-1"
    assert env["SM_IS_MASTER"] == "false"
    assert env["PYTHONPATH"] == str(code)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["TRAINING_JOB_NAME"] == "job-42"


def test_channel_variables_and_their_shell_twins(ctx: TrainingContext) -> None:
    env = _build(ctx)
    data = ctx.layout.input_data_dir
    assert env["SM_CHANNEL_TRAIN"] == str(data / "train")
    assert env["SM_CHANNEL_MY-VAL"] == str(data / "my-val")
    assert env["SM_CHANNEL_MY_VAL"] == str(data / "my-val")
    assert env["SM_CHANNEL_TEST.V2"] == str(data / "test.v2")
    assert env["SM_CHANNEL_TEST_V2"] == str(data / "test.v2")


def test_hyperparameter_variables_and_their_shell_twins(ctx: TrainingContext) -> None:
    env = _build(ctx)
    assert env["SM_HP_BATCH-SIZE"] == env["SM_HP_BATCH_SIZE"] == "64"
    assert env["SM_HP_LEARNING.RATE"] == env["SM_HP_LEARNING_RATE"] == "0.01"
    assert env["SM_HP_EPOCHS"] == "3"
    assert env["SM_HP_OPTIMIZER"] == "adam"
    assert env["SM_HP_LAYERS"] == "[64,32]"
    assert env["SM_HP_USE_CUDA"] == "false"
    assert env["SM_HP_NOTE"] == "two words"
    # Reserved and framework keys are not user hyperparameters.
    assert not any(name.startswith("SM_HP_SAGEMAKER") for name in env)


def test_only_names_with_odd_characters_get_twins(ctx: TrainingContext) -> None:
    env = _build(ctx)
    sm_names = {name for name in env if name.startswith("SM_")}
    odd = {name for name in sm_names if not SHELL_NAME.fullmatch(name)}
    assert odd == {"SM_CHANNEL_MY-VAL", "SM_CHANNEL_TEST.V2", "SM_HP_BATCH-SIZE",
                   "SM_HP_LEARNING.RATE"}


def test_exact_name_wins_over_a_twin(tmp_path: Path) -> None:
    for order in (("batch-size", "batch_size"), ("batch_size", "batch-size")):
        hps = {order[0]: f'"{order[0]}"', order[1]: f'"{order[1]}"'}
        ctx = _context(tmp_path / "_".join(order), hyperparameters=hps)
        env = _build(ctx)
        assert env["SM_HP_BATCH_SIZE"] == "batch_size"
        assert env["SM_HP_BATCH-SIZE"] == "batch-size"


def test_twin_is_refreshed_over_a_stale_base_value(ctx: TrainingContext) -> None:
    # The image (or an outer shell) may already carry SM_HP_BATCH_SIZE from another job; the
    # twin must carry this job's value, not the stale one.
    env = _build(ctx, {"SM_HP_BATCH_SIZE": "stale", "SM_CHANNEL_MY_VAL": "/stale"})
    assert env["SM_HP_BATCH_SIZE"] == "64"
    assert env["SM_CHANNEL_MY_VAL"] == str(ctx.layout.channel_dir("my-val"))


def test_twins_are_shell_names_even_for_unicode(tmp_path: Path) -> None:
    ctx = _context(tmp_path, hyperparameters={"größe": "3", "naïve-mode": "true"})
    env = _build(ctx)
    hp_names = [name for name in env if name.startswith("SM_HP_")]
    assert any(SHELL_NAME.fullmatch(n) and env[n] == "3" for n in hp_names), hp_names
    assert any(SHELL_NAME.fullmatch(n) and env[n] == "true" for n in hp_names), hp_names


def test_training_env_content(ctx: TrainingContext) -> None:
    env = _build(ctx)
    info = json.loads(env["SM_TRAINING_ENV"])
    assert info == training_env(ctx)
    assert info["is_master"] is False
    assert info["master_hostname"] == "algo-1"
    assert info["job_name"] == "job-42"
    assert info["hosts"] == ["algo-1", "algo-2", "algo-3"]
    assert info["distribution_hosts"] == ["algo-1", "algo-2", "algo-3"]
    assert info["current_host"] == "algo-2"
    assert info["channel_input_dirs"] == {
        name: str(ctx.layout.channel_dir(name)) for name in ("my-val", "test.v2", "train")}
    assert info["hyperparameters"]["layers"] == [64, 32]
    assert info["additional_framework_parameters"] == {
        "sagemaker_torch_distributed_enabled": True}
    assert info["module_name"] == "train"
    assert info["user_entry_point"] == "train.py"
    assert info["num_cpus"] == 2
    assert info["num_gpus"] == 0
    assert info["log_level"] == 20
    assert info["checkpoint_dir"] == str(ctx.layout.default_checkpoint_dir)
    assert info["input_data_config"] == INPUT_DATA_CONFIG
    assert info["resource_config"] == RESOURCE_CONFIG


def test_master_host_sees_is_master(tmp_path: Path) -> None:
    ctx = _context(tmp_path, resource_config={**RESOURCE_CONFIG, "current_host": "algo-1"})
    env = _build(ctx)
    assert env["SM_IS_MASTER"] == "true"
    assert json.loads(env["SM_TRAINING_ENV"])["is_master"] is True


def test_minimal_resource_config(tmp_path: Path) -> None:
    rc = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth1"}
    env = _build(_context(tmp_path, resource_config=rc))
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "local"
    assert env["SM_CURRENT_INSTANCE_GROUP"] == ""
    assert env["SM_CURRENT_INSTANCE_GROUP_HOSTS"] == '["algo-1"]'
    assert env["SM_INSTANCE_GROUPS"] == "[]"
    assert env["SM_NETWORK_INTERFACE_NAME"] == "eth1"


def test_pythonpath_is_prepended(ctx: TrainingContext) -> None:
    env = _build(ctx, {"PYTHONPATH": "/opt/lib:/more"})
    assert env["PYTHONPATH"] == f"{ctx.entry_point.code_dir}:/opt/lib:/more"


def test_base_environment_is_kept_and_not_mutated(ctx: TrainingContext) -> None:
    base = {"PATH": "/usr/bin", "HOME": "/root", "TRAINING_JOB_NAME": "from-platform"}
    env = _build(ctx, base)
    assert env["PATH"] == "/usr/bin"
    assert env["HOME"] == "/root"
    assert env["TRAINING_JOB_NAME"] == "from-platform"
    assert base == {"PATH": "/usr/bin", "HOME": "/root", "TRAINING_JOB_NAME": "from-platform"}


def test_every_value_is_a_string(ctx: TrainingContext) -> None:
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in _build(ctx).items())


@pytest.mark.parametrize(("value", "text"), [
    ("text", "text"), (3, "3"), (0.5, "0.5"), (True, "true"), (None, "null"),
    ([1, "a"], '[1,"a"]'), ({"k": "ü"}, '{"k":"ü"}'),
])
def test_env_value(value: Any, text: str) -> None:
    assert env_value(value) == text


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_.\-]{0,12}", fullmatch=True),
                       st.sampled_from(["1", '"s"', "[1]", "x y"]), min_size=1, max_size=8))
def test_every_user_hyperparameter_is_readable_by_a_shell(shared: TrainingContext,
                                                         hps: dict[str, str]) -> None:
    config = dataclasses.replace(shared.config, hyperparameters=Hyperparameters.parse(hps))
    env = _build(dataclasses.replace(shared, config=config))
    shell_hp = {name for name in env if name.startswith("SM_HP_") and SHELL_NAME.fullmatch(name)}
    for name in hps:
        twin = "SM_HP_" + re.sub(r"[^A-Za-z0-9_]", "_", name.upper())
        assert twin in shell_hp
