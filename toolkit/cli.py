"""The ``optml`` command.

``optml train`` and ``optml serve`` are the container commands of the /opt/ml contract;
``optml entrypoint ARGS...`` is what images use as their exec-form ENTRYPOINT: it dispatches
``train`` and ``serve`` and runs anything else as a supervised child (signals forwarded, children
reaped), so an image needs neither tini nor bare ``train``/``serve`` scripts on a user's PATH.
``optml local ...`` (the emulator) is added by :mod:`local_mode` when it provides a CLI.
Heavy modules are imported inside the commands so ``optml --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import click

from toolkit import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="optml")
def cli() -> None:
    """Build and run /opt/ml-contract containers, and emulate the service locally."""


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def train(args: tuple[str, ...]) -> None:
    """Run a training job under the /opt/ml contract (what `docker run IMAGE train` does)."""
    from toolkit.training.main import main as train_main

    sys.exit(train_main(list(args)))


@cli.command(context_settings={"ignore_unknown_options": True})
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


def _add_optional_groups() -> None:
    """Attach ``optml local`` and ``optml check`` when :mod:`local_mode.cli` exists (they land
    with local mode)."""
    try:
        module = importlib.import_module("local_mode.cli")
    except ModuleNotFoundError as exc:
        if exc.name not in {"local_mode.cli"}:
            raise
        return
    cli.add_command(module.local)
    cli.add_command(module.check)


def main() -> None:
    _add_optional_groups()
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
