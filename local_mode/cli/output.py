"""``--output json|table``: every listing and describe, for people or for scripts.

``json`` is shaped as the service answers: a listing is its List operation's response
(``{"TrainingJobSummaries": [...]}``, every page merged), a description its Describe response
without ``ResponseMetadata`` (as the AWS CLI prints it), times as ISO 8601 strings. ``table`` is
aligned columns (:mod:`local_mode.cli.table`); for a description, one row per member with nested
members as compact JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import click

from local_mode.cli.options import from_group
from local_mode.cli.table import print_table

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("json", "table")


def output_option(default: str, json_is: str = "the service's response shape"
                  ) -> Callable[[F], F]:
    """``-o/--output json|table`` with ``default``; ``json_is`` says what the JSON is."""
    return click.option("-o", "--output", "output", type=click.Choice(FORMATS), default=default,
                        show_default=True, callback=from_group,
                        help=f"json: {json_is}, for scripts; table: aligned columns.")


def json_default(value: Any) -> Any:
    """JSON for what a response holds beyond JSON's types (its times)."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=json_default))


def print_description(description: Mapping[str, Any], output: str) -> None:
    """A Describe response as JSON (without ResponseMetadata) or as a MEMBER/VALUE table."""
    body = {k: v for k, v in description.items() if k != "ResponseMetadata"}
    if output == "json":
        print_json(body)
        return
    print_table(("MEMBER", "VALUE"), [(key, _cell(value)) for key, value in body.items()])


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=json_default, separators=(",", ":"))
    return str(value)


def short_time(value: datetime | None) -> str:
    """A time as the tables show it: local, to the second."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


__all__ = ["FORMATS", "json_default", "output_option", "print_description", "print_json",
           "short_time"]
