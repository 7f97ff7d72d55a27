"""``optml local ps`` and ``optml local prune``: what runs now, and clearing what is over.

``ps`` shows every job that has not ended and every endpoint, whatever its kind, with its age,
backend and -- for an endpoint -- its healthy instances and URL. ``prune`` removes ended jobs,
Failed endpoints, orphaned endpoint configs and models, and containers or networks left behind
(:func:`local_mode.housekeeping.prune`); it asks first on a terminal, and needs ``--yes``
elsewhere, unless ``--dry-run``.

In JSON a resource's ``Kind`` is its command group (``training-jobs``, ``endpoints``), what
``optml local <kind> rm NAME`` takes back; tables say it in words.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from local_mode.cli.errors import EXIT_INVALID, fail
from local_mode.cli.kinds import BY_COMMAND, ResourceKind, healthy_instances, in_words, router_url
from local_mode.cli.options import parse_duration, sagemaker_client, state_dir_option
from local_mode.cli.output import output_option, print_json
from local_mode.cli.table import print_table

if TYPE_CHECKING:
    from local_mode.housekeeping import Removal



def parse_age(text: str) -> timedelta:
    """``--older-than``: ``0s``, ``30m``, ``12h``, ``7d``."""
    age = parse_duration(text)
    if age is None:
        raise click.BadParameter(f"{text!r} is not an age such as 30m, 12h or 7d",
                                 param_hint="--older-than")
    return age


def _detail(kind: ResourceKind, described: Mapping[str, Any]) -> str:
    if kind.command == "endpoints":
        return f"{healthy_instances(described)} healthy  {router_url(described)}"
    if kind.command == "transform-jobs":
        return f"model {described.get('ModelName', '')}"
    resources = described.get("ResourceConfig") or \
        (described.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    count = resources.get("InstanceCount")
    return f"{count} host{'s' if count != 1 else ''}" if count else ""


@click.command("ps", short_help="Show what runs: jobs, transforms, endpoints.")
@output_option("table", json_is='{"Resources": [{Kind, Name, Status, ...}]}')
@state_dir_option
def ps(output: str, state_dir: Path | None) -> None:
    """Show everything that runs: jobs that have not ended and endpoints, with their age,
    backend, and an endpoint's healthy instances and URL."""
    from local_mode.housekeeping import age, running

    client = sagemaker_client(state_dir)
    found = [(BY_COMMAND[kind], d) for kind, d in running(client.store)]
    if output == "json":
        print_json({"Resources": [
            {"Kind": kind.command, "Name": d[kind.name_member],
             "Status": d[kind.status_member or ""], "CreationTime": d["CreationTime"],
             "Backend": d.get("Backend"),
             **({"Url": router_url(d), "Instances": d.get("Instances") or []}
                if kind.command == "endpoints" else {})} for kind, d in found]})
        return
    if not found:
        click.echo(f"nothing runs in {client.store.root}", err=True)
        return
    print_table(("KIND", "NAME", "STATUS", "AGE", "BACKEND", "DETAIL"),
                [(kind.what, d[kind.name_member], d[kind.status_member or ""],
                  age(d["CreationTime"]), str(d.get("Backend") or "-"), _detail(kind, d))
                 for kind, d in found])


@click.command("prune", short_help="Remove ended jobs, orphans and leftovers.")
@click.option("--older-than", "older_than", default="0s", show_default=True, metavar="AGE",
              help="Only what ended (or, for models and configs, was created) at least this "
                   "long ago: 30m, 12h, 7d.")
@click.option("--all", "everything", is_flag=True,
              help="Also endpoint configs and models you made yourself that nothing uses "
                   "(without it, only those deploy made).")
@click.option("--dry-run", is_flag=True, help="Only show what would be removed.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask (needed when stdin is no terminal).")
@output_option("table", json_is='{"DryRun": ..., "Removed": [{Kind, Name, Reason}]}')
@state_dir_option
def prune(older_than: str, everything: bool, dry_run: bool, yes: bool, output: str,
          state_dir: Path | None) -> None:
    """Remove what is over: ended jobs (records and logs; outputs stay), Failed endpoints,
    endpoint configs and models deploy made that nothing uses any more (--all: any nothing
    uses), and containers or networks left behind. What is shown is exactly what goes."""
    from local_mode.housekeeping import apply_prune, plan_prune

    cutoff = parse_age(older_than)
    if not dry_run and not yes and not sys.stdin.isatty():
        fail("prune removes records and logs: pass --yes (or --dry-run to see what it would "
             "remove)", EXIT_INVALID)
    client = sagemaker_client(state_dir)
    plan = plan_prune(client, cutoff, everything=everything)
    if not dry_run and not yes and plan:
        _show(plan, "table", dry_run=True)
        if not click.confirm(f"Remove these {len(plan)}?", default=False, err=True):
            return
    removed = plan if dry_run else apply_prune(client, plan)
    if output == "json":
        _show(removed, "json", dry_run=dry_run)
        return
    if not removed:
        click.echo("nothing to prune", err=True)
        return
    if dry_run or yes:
        _show(removed, "table", dry_run=dry_run)
    click.echo(f"{'would remove' if dry_run else 'removed'} {len(removed)}"
               + (f" of {len(plan)} (the others changed meanwhile)"
                  if len(removed) < len(plan) and not dry_run else ""), err=True)


def _show(removals: Sequence[Removal], output: str, *, dry_run: bool) -> None:
    if output == "json":
        print_json({"DryRun": dry_run, "Removed": [
            {"Kind": r.kind, "Name": r.name, "Reason": r.why} for r in removals]})
        return
    print_table(("KIND", "NAME", "WHY"), [(in_words(r.kind), r.name, r.why) for r in removals])


COMMANDS = (ps, prune)
"""``ps`` and ``prune``, attached to ``optml local`` by :mod:`local_mode.cli`."""

__all__ = ["COMMANDS", "parse_age"]
