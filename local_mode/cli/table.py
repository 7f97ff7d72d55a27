"""The CLI's tables: one way for every command that prints one, drawn by rich.

On a terminal the header is bold and columns are as wide as their widest cell; in a pipe the same
columns come out as plain text with no styling, no wrapping and no trailing blanks, so scripts can
cut them (or better, ask for ``--output json``).

rich loads inside :func:`print_table`: this module is imported by every ``optml local`` command.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

UNBOUNDED_WIDTH = 1 << 16
"""The console width used when stdout is not a terminal: a table row is never wrapped."""


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """``header`` and ``rows`` on stdout, each column as wide as its widest cell."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0),
                  header_style="bold", highlight=False)
    for title in header:
        table.add_column(title, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*row)
    terminal = sys.stdout.isatty()
    console = Console(width=None if terminal else UNBOUNDED_WIDTH, no_color=not terminal,
                      highlight=False, soft_wrap=False, markup=False)
    with console.capture() as captured:
        console.print(table)
    for line in captured.get().splitlines():
        click.echo(line.rstrip())


__all__ = ["print_table"]
