"""``optml local ps`` and ``optml local prune``: what runs now, and clearing what is over.

``ps`` shows every job that has not ended and every endpoint, whatever its kind, with its age,
backend and -- for an endpoint -- its healthy instances and URL. ``prune`` removes ended jobs,
Failed endpoints, orphaned endpoint configs and models, and containers or networks left behind
(:func:`local_mode.housekeeping.prune`); it asks first on a terminal, and needs ``--yes``
elsewhere, unless ``--dry-run``.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from local_mode.cli.errors import EXIT_INVALID, fail
from local_mode.cli.kinds import healthy_instances, router_url
from local_mode.cli.options import sagemaker_client, state_dir_option
from local_mode.cli.output import output_option, print_json
from local_mode.cli.table import print_table

AGE = re.compile(r"^(\d+)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
KIND_NAMES = {"training-jobs": "training job", "processing-jobs": "processing job",
              "transform-jobs": "transform job", "endpoints": "endpoint",
              "endpoint-configs": "endpoint config", "models": "model"}
NAME_MEMBERS = {"training-jobs": "TrainingJobName", "processing-jobs": "ProcessingJobName",
                "transform-jobs": "TransformJobName", "endpoints": "EndpointName"}
STATUS_MEMBERS = {"training-jobs": "TrainingJobStatus", "processing-jobs": "ProcessingJobStatus",
                  "transform-jobs": "TransformJobStatus", "endpoints": "EndpointStatus"}


def parse_age(text: str) -> timedelta:
    """``--older-than``: ``0s``, ``30m``, ``12h``, ``7d``."""
    match = AGE.match(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not an age such as 30m, 12h or 7d",
                                 param_hint="--older-than")
    return timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])


def age(then: datetime, now: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _detail(kind: str, described: dict[str, Any]) -> str:
    if kind == "endpoints":
        return f"{healthy_instances(described)} healthy  {router_url(described)}"
    if kind == "transform-jobs":
        return str(described.get("ModelName", ""))
    resources = described.get("ResourceConfig") or \
        (described.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    count = resources.get("InstanceCount")
    return f"{count} host{'s' if count != 1 else ''}" if count else ""


@click.command("ps")
@output_option("table")
@state_dir_option
def ps(output: str, state_dir: Path | None) -> None:
    """Show everything that runs: jobs that have not ended and endpoints, with their age,
    backend, and an endpoint's healthy instances and URL."""
    from local_mode.housekeeping import running

    client = sagemaker_client(state_dir)
    now = datetime.now(timezone.utc)
    found = list(running(client))
    if output == "json":
        print_json({"Resources": [
            {"Kind": KIND_NAMES[kind], "Name": d[NAME_MEMBERS[kind]],
             "Status": d[STATUS_MEMBERS[kind]], "CreationTime": d["CreationTime"],
             "Backend": d.get("Backend"),
             **({"Url": router_url(d), "Instances": d.get("Instances") or []}
                if kind == "endpoints" else {})} for kind, d in found]})
        return
    if not found:
        click.echo(f"nothing runs in {client.store.root}", err=True)
        return
    print_table(("KIND", "NAME", "STATUS", "AGE", "BACKEND", "DETAIL"),
                [(KIND_NAMES[kind], d[NAME_MEMBERS[kind]], d[STATUS_MEMBERS[kind]],
                  age(d["CreationTime"], now), str(d.get("Backend") or "-"), _detail(kind, d))
                 for kind, d in found])


@click.command("prune")
@click.option("--older-than", "older_than", default="0s", show_default=True, metavar="AGE",
              help="Only what ended (or, for models and configs, was created) at least this "
                   "long ago: 30m, 12h, 7d.")
@click.option("--dry-run", is_flag=True, help="Only show what would be removed.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask (needed when stdin is no terminal).")
@output_option("table")
@state_dir_option
def prune(older_than: str, dry_run: bool, yes: bool, output: str,
          state_dir: Path | None) -> None:
    """Remove what is over: ended jobs (records and logs), Failed endpoints, endpoint configs
    no endpoint uses, models nothing uses, and containers or networks left behind."""
    from local_mode.housekeeping import prune as plan_prune

    cutoff = parse_age(older_than)
    client = sagemaker_client(state_dir)
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            fail("prune removes records and logs: pass --yes (or --dry-run to see what it "
                 "would remove)", EXIT_INVALID)
        preview = plan_prune(client, cutoff, dry_run=True)
        if not preview:
            click.echo("nothing to prune", err=True)
            return
        _show(preview, "json" if output == "json" else "table")
        if not click.confirm(f"Remove these {len(preview)}?", default=False, err=True):
            return
    removed = plan_prune(client, cutoff, dry_run=dry_run)
    if output == "json":
        print_json({"DryRun": dry_run, "Removed": [
            {"Kind": r.kind, "Name": r.name, "Reason": r.why} for r in removed]})
        return
    if not removed:
        click.echo("nothing to prune", err=True)
        return
    _show(removed, output)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {len(removed)}", err=True)


def _show(removals: list[Any], output: str) -> None:
    if output == "json":
        print_json({"Removed": [{"Kind": r.kind, "Name": r.name, "Reason": r.why}
                                for r in removals]})
        return
    print_table(("KIND", "NAME", "WHY"),
                [(KIND_NAMES.get(r.kind, r.kind), r.name, r.why) for r in removals])


COMMANDS = (ps, prune)

__all__ = ["COMMANDS", "parse_age"]
