"""What several ``optml local`` / ``optml check`` commands take the same way: ``--state-dir``,
``--backend``, ``KEY=VALUE`` pairs, and the local clients built from the environment.

The clients and settings load inside the functions: this module is imported by every
``optml local`` invocation, which must not pay for botocore before a command runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from toolkit.settings import LOCAL_BACKENDS

if TYPE_CHECKING:
    from local_mode.runtime import RuntimeClient
    from local_mode.sagemaker import SageMakerClient
    from toolkit.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])



GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
"""Where a value the user gave comes from (not a default)."""


def from_group(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """An option a subcommand was not given takes the value its group was given, so that
    ``optml local endpoints --state-dir D -o json describe E`` means what it says."""
    if param.name is None or ctx.get_parameter_source(param.name) in GIVEN:
        return value
    parent = ctx.parent
    while parent is not None:
        if parent.get_parameter_source(param.name) in GIVEN:
            return parent.params[param.name]
        parent = parent.parent
    return value


def state_dir_option(command: F) -> F:
    """``--state-dir DIR``: which local state directory the command works on."""
    return click.option(
        "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        callback=from_group,
        help="State directory (default: OPTML_LOCAL_STATE_DIR, else ~/.optml/local).")(command)


def complete_names(store_kind: str) -> Callable[[click.Context, click.Parameter, str],
                                                list[Any]]:
    """Shell completion of a NAME argument: the names of ``store_kind`` in the state directory
    the command line names (or the default one)."""

    def complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        from local_mode.state import StateStore
        from toolkit.errors import OptmlError
        from toolkit.settings import Settings

        try:
            # ctx.params holds --state-dir as given here or to the group (from_group)
            root = ctx.params.get("state_dir") or Settings.from_environ().local.state_dir
            names = [r.name for r in StateStore(Path(root)).list(store_kind)]
        except (OptmlError, OSError):
            return []
        return [CompletionItem(n) for n in names if n.startswith(incomplete)]

    return complete


def backend_option(what: str) -> Callable[[F], F]:
    """``--backend auto|docker|process``: where ``what`` (hosts, instances) run."""
    return click.option(
        "--backend", type=click.Choice(LOCAL_BACKENDS), default=None,
        help=f"Where {what} run (default: OPTML_LOCAL_BACKEND, else auto: Docker when an "
             "engine answers).")


DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta | None:
    """A duration as every option takes one: ``90s``, ``1.5m``, ``2h``, ``7d``; None if ``text``
    is not one (the option says what else it takes)."""
    match = DURATION.match(text.strip())
    if not match:
        return None
    return timedelta(seconds=float(match.group(1)) * UNIT_SECONDS[match.group(2)])


def key_value_pairs(option: str, values: tuple[str, ...]) -> dict[str, str]:
    """The ``KEY=VALUE`` values of a repeatable option as a dict (a usage error otherwise)."""
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        pairs[key] = rest
    return pairs


def settings() -> Settings:
    """The settings from the environment (a bad variable is reported by the ``optml local``
    group, :class:`local_mode.cli.errors.OneLineGroup`, on one line with exit status 2)."""
    from toolkit.settings import Settings

    return Settings.from_environ()


def sagemaker_client(state_dir: Path | None, backend: str | None = None) -> SageMakerClient:
    """The local ``sagemaker`` client on ``state_dir`` (None: the default one).

    A command creates one resource at most, so its client starts no runner ahead for a next
    Create (``OPTML_LOCAL_WARM_RUNNERS``: one would only cost CPU while the job starts)."""
    from local_mode.sagemaker import SageMakerClient
    from toolkit.settings import Settings

    base = settings()
    base.local  # noqa: B018 - reads (so checks) every local-mode variable, the user's value too
    one_shot = Settings.from_environ({**base.environ, "OPTML_LOCAL_WARM_RUNNERS": "false"})
    return SageMakerClient(one_shot, state_dir=state_dir, backend=backend)


def runtime_client(state_dir: Path | None) -> RuntimeClient:
    """The local ``sagemaker-runtime`` client on ``state_dir`` (None: the default one)."""
    from local_mode.runtime import RuntimeClient

    return RuntimeClient(settings(), state_dir=state_dir)


__all__ = ["GIVEN", "backend_option", "complete_names", "from_group", "parse_duration", "key_value_pairs", "runtime_client",
           "sagemaker_client", "settings", "state_dir_option"]
