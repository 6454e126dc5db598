"""`policy-reconciler status`: what the controller recorded of its last runs."""

from __future__ import annotations

import json
from typing import Any

import click

from reconciler.applyset import is_suspended
from reconciler.cli import options as opt
from reconciler.cli.errors import Command, no_applyset
from reconciler.cluster.client import CONFIGMAPS, LEASES, Cluster
from reconciler.controller.status import read_status
from reconciler.report.status import render_status


@click.command("status", cls=Command)
@opt.cluster_options
@opt.output("text", "json")
@click.option(
    "-n",
    "--last",
    "count",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many runs to show, newest first.",
)
def status_command(**kw: Any) -> None:
    """Show what the controller did lately: result, revision and counts of each run."""
    args = opt.args_of(opt.StatusArgs, kw, cluster=opt.cluster_args(kw))
    view = _view(Cluster.connect(args.cluster.connection()), args)
    click.echo(json.dumps(view, indent=2) if args.output == "json" else render_status(view))


def _view(cluster: Cluster, args: opt.StatusArgs) -> dict[str, Any]:
    """Everything `status` shows, as JSON: read once, rendered as text or printed."""
    applyset = args.cluster.applyset
    status = read_status(cluster, applyset)
    parent = cluster.get(CONFIGMAPS, applyset.name, applyset.namespace)
    if parent is None and not status.runs:
        no_applyset(applyset, also=" and no run recorded there")
    lease = cluster.get(LEASES, f"{applyset.name}-leader", applyset.namespace)
    holder = str((lease or {}).get("spec", {}).get("holderIdentity") or "")
    return {
        "applyset": f"{applyset.namespace}/{applyset.name}",
        "suspended": is_suspended(parent),
        "leader": holder,
        "lastAppliedRevision": status.applied_revision,
        "runs": [r.to_json() for r in status.runs[: args.count]],
    }


__all__ = ["status_command"]
