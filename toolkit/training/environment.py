"""Build the ``SM_*`` environment given to user code.

Names are exactly the training toolkit's. Two deliberate improvements: every name that contains
``-`` (``SM_HP_BATCH-SIZE``, ``SM_CHANNEL_MY-VAL``) is also set with ``_`` so shells can read it,
and ``SM_NUM_CPUS`` honours cgroup quotas and CPU affinity. ``SM_CHECKPOINT_DIR`` is an optml
addition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.layout import Layout
from toolkit.training.config import JobConfig
from toolkit.training.entry_point import EntryPoint


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def env_value(value: Any) -> str:
    """Strings as they are; everything else as compact JSON."""
    return value if isinstance(value, str) else _compact(value)


def _set(env: dict[str, str], name: str, value: str, exact: set[str]) -> None:
    """Set ``name`` and, when it contains characters a shell cannot use, a ``_`` twin."""
    env[name] = value
    exact.add(name)
    shell_name = "".join(ch if (ch.isascii() and ch.isalnum()) or ch == "_" else "_"
                         for ch in name)
    if shell_name != name and shell_name not in exact:
        env[shell_name] = value


@dataclass(frozen=True)
class TrainingContext:
    """Facts about this run that are not in the config files."""

    layout: Layout
    config: JobConfig
    entry_point: EntryPoint
    module_dir: str
    num_cpus: int
    num_gpus: int
    log_level: int
    job_name: str | None
    checkpoint_dir: Path


def current_instance_group(config: JobConfig) -> tuple[str | None, list[str]]:
    resources = config.resources
    for group in resources.instance_groups:
        hosts = list(group.get("hosts", []))
        if resources.current_host in hosts:
            return group.get("instance_group_name"), hosts
    return resources.current_group_name, list(resources.hosts)


def training_env(ctx: TrainingContext) -> dict[str, Any]:
    """The object behind ``SM_TRAINING_ENV`` (and the source of every other variable)."""
    layout, config = ctx.layout, ctx.config
    resources = config.resources
    group_name, group_hosts = current_instance_group(config)
    channels = sorted(config.channels)
    return {
        "additional_framework_parameters": dict(config.hyperparameters.framework),
        "channel_input_dirs": {name: str(layout.channel_dir(name)) for name in channels},
        "checkpoint_dir": str(ctx.checkpoint_dir),
        "current_host": resources.current_host,
        "current_instance_group": group_name,
        "current_instance_group_hosts": group_hosts,
        "current_instance_type": resources.current_instance_type,
        "distribution_hosts": list(resources.sorted_hosts),
        "hosts": list(resources.sorted_hosts),
        "hyperparameters": dict(config.hyperparameters.user),
        "input_config_dir": str(layout.input_config_dir),
        "input_data_config": dict(config.input_data_config_raw),
        "input_dir": str(layout.input_dir),
        "instance_groups": [g.get("instance_group_name") for g in resources.instance_groups],
        "is_master": resources.is_master,
        "job_name": ctx.job_name,
        "log_level": ctx.log_level,
        "master_hostname": resources.master_host,
        "model_dir": str(layout.model_dir),
        "module_dir": ctx.module_dir,
        "module_name": ctx.entry_point.module_name,
        "network_interface_name": resources.network_interface_name,
        "num_cpus": ctx.num_cpus,
        "num_gpus": ctx.num_gpus,
        "output_data_dir": str(layout.output_data_dir),
        "output_dir": str(layout.output_dir),
        "output_intermediate_dir": str(layout.output_intermediate_dir),
        "resource_config": dict(resources.raw),
        "user_entry_point": ctx.entry_point.program,
    }


def build_environment(ctx: TrainingContext, user_args: list[str],
                      base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (the container's environment) plus every ``SM_*`` variable."""
    env = dict(base)
    info = training_env(ctx)
    config = ctx.config
    simple = {
        "SM_MODEL_DIR": info["model_dir"],
        "SM_INPUT_DIR": info["input_dir"],
        "SM_INPUT_CONFIG_DIR": info["input_config_dir"],
        "SM_OUTPUT_DIR": info["output_dir"],
        "SM_OUTPUT_DATA_DIR": info["output_data_dir"],
        "SM_OUTPUT_INTERMEDIATE_DIR": info["output_intermediate_dir"],
        "SM_CHECKPOINT_DIR": info["checkpoint_dir"],
        "SM_CHANNELS": _compact(sorted(config.channels)),
        "SM_HPS": _compact(info["hyperparameters"]),
        "SM_USER_ARGS": _compact(user_args),
        "SM_HOSTS": _compact(info["hosts"]),
        "SM_CURRENT_HOST": info["current_host"],
        "SM_CURRENT_INSTANCE_TYPE": info["current_instance_type"] or "local",
        "SM_CURRENT_INSTANCE_GROUP": info["current_instance_group"] or "",
        "SM_CURRENT_INSTANCE_GROUP_HOSTS": _compact(info["current_instance_group_hosts"]),
        "SM_INSTANCE_GROUPS": _compact(info["instance_groups"]),
        "SM_MASTER_ADDR": info["master_hostname"],
        "SM_IS_MASTER": _compact(info["is_master"]),
        "SM_NETWORK_INTERFACE_NAME": info["network_interface_name"],
        "SM_NUM_CPUS": str(ctx.num_cpus),
        "SM_NUM_GPUS": str(ctx.num_gpus),
        "SM_LOG_LEVEL": str(ctx.log_level),
        "SM_MODULE_NAME": info["module_name"],
        "SM_MODULE_DIR": info["module_dir"],
        "SM_USER_ENTRY_POINT": info["user_entry_point"],
        "SM_FRAMEWORK_PARAMS": _compact(info["additional_framework_parameters"]),
        "SM_RESOURCE_CONFIG": _compact(info["resource_config"]),
        "SM_INPUT_DATA_CONFIG": _compact(info["input_data_config"]),
        "SM_TRAINING_ENV": _compact(info),
    }
    exact: set[str] = set()
    for name, value in simple.items():
        _set(env, name, value, exact)
    for channel, path in info["channel_input_dirs"].items():
        _set(env, f"SM_CHANNEL_{channel.upper()}", path, exact)
    for name, value in config.hyperparameters.user.items():
        _set(env, f"SM_HP_{name.upper()}", env_value(value), exact)
    code_dir = str(ctx.entry_point.code_dir)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = code_dir if not existing else f"{code_dir}:{existing}"
    env["PYTHONUNBUFFERED"] = "1"
    if ctx.job_name:
        env.setdefault("TRAINING_JOB_NAME", ctx.job_name)
    return env
