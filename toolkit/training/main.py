"""The ``train`` entry: everything between ``docker run IMAGE train`` and the user's program.

Order of work: validate config → make output dirs → fetch code → install requirements →
build the environment → wait for peers → run the program supervised → write the failure file.
Exit status: the program's own; 2 for a configuration error; 1 when the code cannot be set up.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit import resources
from toolkit.errors import ConfigError, OptmlError
from toolkit.settings import Settings
from toolkit.training import arguments, failure
from toolkit.training.config import JobConfig, load_job_config
from toolkit.training.entry_point import EntryPoint, resolve_entry_point
from toolkit.training.environment import TrainingContext, build_environment
from toolkit.training.process import StopLatch, StopRequested, run_supervised

if TYPE_CHECKING:  # imported where used: single-host jobs (most) never need socket & co.
    from toolkit.training.distributed import TorchrunPlan

log = logging.getLogger("optml.train")

EXIT_CONFIG_ERROR = 2
EXIT_SETUP_ERROR = 1


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _configure_logging(level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("optml %(levelname)s %(message)s"))
    root = logging.getLogger("optml")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for name in ("toolkit",):
        logging.getLogger(name).handlers[:] = [handler]
        logging.getLogger(name).setLevel(level)


DEFAULT_PROGRAM = "train.py"
"""Run when neither SAGEMAKER_PROGRAM nor sagemaker_program names a program, as ``serve``
defaults to inference.py. An image must not set SAGEMAKER_PROGRAM=train.py for this: serve reads
the same variable for its inference module."""


def _program(settings: Settings, config: JobConfig, code_dir: Path) -> str:
    program = settings.training.program or config.hyperparameters.reserved.get("sagemaker_program")
    if not program:
        if (code_dir / DEFAULT_PROGRAM).is_file():
            return DEFAULT_PROGRAM
        raise ConfigError("hyperparameters.json", "no entry point: set the environment variable "
                          "SAGEMAKER_PROGRAM or the hyperparameter, or provide "
                          f"{DEFAULT_PROGRAM} in {code_dir}", field="sagemaker_program")
    if not isinstance(program, str):
        raise ConfigError("hyperparameters.json", "must be a string", field="sagemaker_program")
    return program


def _code_dir(settings: Settings, config: JobConfig) -> tuple[Path, str]:
    """Where the code is, and what SM_MODULE_DIR reports (the submit URI when there is one)."""
    layout = settings.layout
    submit = settings.training.submit_directory or \
        config.hyperparameters.reserved.get("sagemaker_submit_directory")
    if not submit:
        return layout.code_dir, str(layout.code_dir)
    if not isinstance(submit, str):
        raise ConfigError("hyperparameters.json", "must be a string",
                          field="sagemaker_submit_directory")
    from toolkit.training.code_source import fetch_code

    return fetch_code(submit, layout.code_dir, environ=settings.environ), submit


def _install(entry: EntryPoint, settings: Settings) -> None:
    from toolkit.training.requirements import find_requirements_file, install_requirements

    python = sys.executable
    requirements = find_requirements_file(entry.code_dir)
    if requirements is not None and settings.training.install_requirements:
        log.info("installing %s", requirements)
        install_requirements(requirements, python=python, environ=settings.environ)
    if entry.needs_install:
        log.info("installing the user package in %s", entry.code_dir)
        from toolkit.training.requirements import install_package

        install_package(entry.code_dir, python=python, environ=settings.environ)


def _torchrun_plan(settings: Settings, config: JobConfig, num_gpus: int) -> TorchrunPlan | None:
    enabled = settings.training.torch_distributed
    if enabled is None:
        enabled = _truthy(config.hyperparameters.framework.get(
            "sagemaker_torch_distributed_enabled", False))
    if not enabled:
        return None
    from toolkit.training.distributed import TorchrunPlan

    res = config.resources
    return TorchrunPlan(nnodes=len(res.hosts),
                        nproc_per_node=settings.training.nproc_per_node or max(1, num_gpus),
                        node_rank=res.node_rank, master_addr=res.master_host,
                        master_port=settings.training.master_port)


def _log_level(settings: Settings, config: JobConfig | None) -> int:
    if settings.training.log_level is not None:
        return settings.training.log_level
    if config is not None:
        value = config.hyperparameters.reserved.get("sagemaker_container_log_level")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return logging.INFO


def run_training(settings: Settings, extra_args: Sequence[str] = ()) -> int:
    """Run one training job on ``settings``; returns the exit status for the container."""
    latch = StopLatch().install()  # first: a stop during the set-up must not be lost
    layout = settings.layout
    failure_file = failure.FailureFile.prepare(layout.failure_file)
    try:
        with latch.interrupting():
            config, command, env, entry = _set_up(settings, extra_args)
    except StopRequested as exc:
        return _setup_failed(failure_file, "Stopped", exc, 128 + exc.signum)
    except ConfigError as exc:
        return _setup_failed(failure_file, "ConfigError", exc, EXIT_CONFIG_ERROR)
    except OptmlError as exc:
        return _setup_failed(failure_file, type(exc).__name__, exc, EXIT_SETUP_ERROR)
    except Exception as exc:
        log.exception("internal error while preparing the job")
        return _setup_failed(failure_file, f"InternalError ({type(exc).__name__})", exc,
                             EXIT_SETUP_ERROR)

    log.info("running %s", command)
    result = run_supervised(command, env=env, cwd=entry.code_dir,
                            grace_seconds=settings.training.stop_grace_seconds, latch=latch)
    if result.returncode != 0:
        message = failure.user_failure_message(
            returncode=result.returncode, command=command, stderr_tail=result.stderr_tail,
            stopped_by=result.stop_signal, killed_after_grace=result.killed_after_grace,
            grace_seconds=settings.training.stop_grace_seconds)
        failure_file.write(message)
        log.error("%s", message.splitlines()[0])
    elif result.stop_signal is not None:
        log.info("stopped: the program exited 0 after the stop signal")
    return result.returncode


def _set_up(settings: Settings, extra_args: Sequence[str]
            ) -> tuple[JobConfig, list[str], dict[str, str], EntryPoint]:
    """Everything before the program runs: config, code, requirements, environment, peers.
    Returns the job's config, the command, its environment and the entry point."""
    layout = settings.layout
    config = load_job_config(layout)
    level = _log_level(settings, config)
    _configure_logging(level)
    checkpoint_dir = config.checkpoint.local_path
    for directory in (layout.model_dir, layout.output_data_dir,
                      layout.output_intermediate_dir, checkpoint_dir):
        directory.mkdir(parents=True, exist_ok=True)
    code_dir, module_dir = _code_dir(settings, config)
    program = _program(settings, config, code_dir)
    entry = resolve_entry_point(program, code_dir)
    _install(entry, settings)
    num_gpus = resources.gpu_count()
    user_args = arguments.to_arguments(config.hyperparameters.user) + list(extra_args)
    ctx = TrainingContext(layout=layout, config=config, entry_point=entry,
                          module_dir=module_dir, num_cpus=resources.cpu_count(),
                          num_gpus=num_gpus, log_level=level,
                          job_name=settings.training.job_name or
                          config.hyperparameters.reserved.get("sagemaker_job_name"),
                          checkpoint_dir=checkpoint_dir)
    env = build_environment(ctx, user_args, settings.environ)
    plan = _torchrun_plan(settings, config, num_gpus)
    if plan is not None:
        env.update(plan.environment(config.resources.network_interface_name))
        command = plan.command([*entry.target(), *user_args], is_python=entry.is_python)
    else:
        command = entry.command(user_args)
    if len(config.resources.hosts) > 1:
        from toolkit.training.distributed import wait_for_hosts

        wait_for_hosts(config.resources.hosts, settings.training.host_resolve_timeout_seconds)
    return config, command, env, entry


def _setup_failed(failure_file: failure.FailureFile, kind: str, exc: BaseException,
                  code: int) -> int:
    message = f"{kind}: {exc}\n"
    failure_file.write(message)
    if not logging.getLogger("optml").handlers:
        _configure_logging(logging.INFO)
    log.error("%s", message.rstrip())
    return code


def main(argv: Sequence[str] = ()) -> int:
    """``optml train [EXTRA_ARGS...]``: extra arguments are appended after the hyperparameters."""
    return run_training(Settings.from_environ(), argv)


if __name__ == "__main__":  # ``python -m toolkit.training.main``: local mode's lean entry
    sys.exit(main(sys.argv[1:]))
