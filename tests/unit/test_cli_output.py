"""local_mode.cli.output, .table and .progress: the shapes scripts read and what a pipe sees."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click
import pytest
from click.testing import CliRunner

from local_mode.cli.output import print_description
from local_mode.cli.progress import TransformProgress, on_terminal, waiting
from local_mode.cli.table import print_table

WHEN = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)


def _run(body: object) -> str:
    @click.command()
    def command() -> None:
        body()  # type: ignore[operator]

    result = CliRunner().invoke(command, [])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_table_in_a_pipe_is_plain_aligned_columns_without_trailing_blanks() -> None:
    out = _run(lambda: print_table(("NAME", "STATUS"), [("a-long-name", "Completed"),
                                                        ("b", "Failed")]))
    assert out.splitlines() == ["NAME         STATUS", "a-long-name  Completed", "b            Failed"]
    wide = "x" * 500  # a pipe is never wrapped
    assert _run(lambda: print_table(("NAME",), [(wide,)])).splitlines()[1] == wide


def test_markup_in_a_cell_is_printed_as_it_is() -> None:
    assert "[bold]x[/bold]" in _run(lambda: print_table(("NAME",), [("[bold]x[/bold]",)]))


def test_a_description_as_json_drops_the_response_metadata_and_keeps_times() -> None:
    described = {"EndpointName": "e", "CreationTime": WHEN, "ResponseMetadata": {"x": 1}}
    assert json.loads(_run(lambda: print_description(described, "json"))) == {
        "EndpointName": "e", "CreationTime": "2026-12-03T10:00:00+00:00"}


def test_a_description_as_a_table_has_a_row_per_member() -> None:
    described = {"EndpointName": "e", "ProductionVariants": [{"VariantName": "v"}]}
    lines = _run(lambda: print_description(described, "table")).splitlines()
    assert lines[0].split() == ["MEMBER", "VALUE"]
    assert lines[2].split(None, 1) == ["ProductionVariants", '[{"VariantName":"v"}]']


def test_no_progress_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert not on_terminal()
    with waiting("deploying e") as show:
        show("Creating")
    with TransformProgress("t") as progress:
        progress.update("InProgress", 1, 2, 10)
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
