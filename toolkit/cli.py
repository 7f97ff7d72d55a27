"""The ``optml`` command.

``optml train`` and ``optml serve`` are the container commands of the /opt/ml contract;
``optml entrypoint ARGS...`` is what images use as their exec-form ENTRYPOINT: it dispatches
``train`` and ``serve`` and runs anything else as a supervised child (signals forwarded, children
reaped), so an image needs neither tini nor bare ``train``/``serve`` scripts on a user's PATH.
Other commands (``optml local ...``, ``optml check``) come from installed packages through the
:data:`COMMAND_GROUP` entry-point group and load only when named (or listed by ``--help``), so the
toolkit names no other package and ``optml train`` in an image loads nothing it does not run.
Heavy modules are imported inside the commands so ``optml --help`` stays fast.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING

import click

from toolkit import __version__

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

COMMAND_GROUP = "optml.commands"
"""The entry-point group other packages register ``optml`` subcommands in (name = a click
command object, e.g. ``local = "package.module:group"``)."""


class NoSuchCommand(click.ClickException):
    """A command this install does not have (or cannot load): one line, usage-error status."""

    exit_code = 2


@functools.cache
def registered_commands() -> dict[str, EntryPoint]:
    """The commands installed packages register under :data:`COMMAND_GROUP`, by name."""
    # here, not at the top: optml train/serve in an image never look at entry points
    from importlib.metadata import entry_points

    return {entry.name: entry for entry in entry_points(group=COMMAND_GROUP)}


class OptmlGroup(click.Group):
    """The built-in commands plus those registered under :data:`COMMAND_GROUP`, each loaded the
    first time it is named."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._names()

    def _names(self) -> list[str]:
        return sorted({*self.commands, *registered_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        try:
            return self._command(cmd_name)
        except NoSuchCommand:
            return None  # --help lists what loads; naming it says why it does not

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = click.utils.make_str(args[0])
        if not name.startswith("-") and not ctx.resilient_parsing:
            self._command(name)  # raises NoSuchCommand, as one line
        return super().resolve_command(ctx, args)

    def _command(self, name: str) -> click.Command:
        command = self.commands.get(name)
        if command is not None:
            return command
        entry = registered_commands().get(name)
        if entry is None:
            raise NoSuchCommand(f"no command {name!r} in this install (it has "
                                f"{', '.join(self._names())}; packages add commands through "
                                f"the {COMMAND_GROUP!r} entry points)")
        try:
            command = entry.load()
        except (ImportError, AttributeError) as exc:  # a module, or a name in it, is missing
            raise NoSuchCommand(f"command {name!r} is registered ({entry.value}) but cannot "
                                f"be loaded here: {exc}") from None
        if not isinstance(command, click.Command):
            raise NoSuchCommand(f"command {name!r} is registered ({entry.value}) but that is "
                                "not a click command")
        self.add_command(command, name)
        return command


@click.group(cls=OptmlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="optml")
def cli() -> None:
    """Build and run /opt/ml-contract containers, and emulate the service locally."""


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def train(args: tuple[str, ...]) -> None:
    """Run a training job under the /opt/ml contract (what `docker run IMAGE train` does).

    train has no options of its own: ARGS are appended to the program's command line, after the
    arguments made from the hyperparameters. The job comes from /opt/ml/input/config, the rest
    from the environment (docs/training.md, "Variables optml reads"), e.g.:

    \b
      SAGEMAKER_BASE_DIR          the root of the layout (/opt/ml)
      SAGEMAKER_PROGRAM           the entry point (train.py when present)
      SAGEMAKER_SUBMIT_DIRECTORY  where the code comes from
      OPTML_INSTALL_REQUIREMENTS  false skips requirements.txt
      OPTML_STOP_GRACE_SECONDS    SIGTERM-to-SIGKILL grace (110)

    Exit status: the program's own; 2 for a bad configuration (a malformed variable included,
    named on one line); 1 when the code cannot be set up.
    """
    from toolkit.training.main import main as train_main

    sys.exit(train_main(list(args)))


# --help and -h included, every argument goes to the server's own parser: one parser, so
# `optml serve --help` lists what `docker run IMAGE serve` takes, and the two never disagree.
@cli.command(add_help_option=False,
             context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def serve(args: tuple[str, ...]) -> None:
    """Start the model server (what `docker run IMAGE serve` does)."""
    from toolkit.serving.server import main as serve_main

    sys.exit(serve_main(list(args)))


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def entrypoint(command: tuple[str, ...]) -> None:
    """Image ENTRYPOINT: dispatch `train` / `serve`, or run COMMAND supervised."""
    from toolkit.entrypoint import main as entry_main

    sys.exit(entry_main(list(command)))


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
