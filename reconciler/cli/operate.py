"""What an operator does to a running controller, through annotations on the ApplySet
parent that it watches (as `flux suspend|resume|reconcile` do on Flux's objects)."""

from __future__ import annotations

from typing import Any

import click

from reconciler.applyset import REQUESTED_AT, SOURCE_REQUESTED_AT, SUSPEND, ApplySet
from reconciler.cli import options as opt
from reconciler.cli.errors import Command, no_applyset
from reconciler.cluster.client import CONFIGMAPS, Cluster
from reconciler.controller.status import now_rfc3339


@click.command("suspend", cls=Command)
@opt.cluster_options
def suspend_command(**kw: Any) -> None:
    """Pause the controller: it keeps running and reporting, and writes nothing."""
    _annotate(kw, {SUSPEND: "true"})
    click.echo("suspended: the controller writes nothing until `policy-reconciler resume`")


@click.command("resume", cls=Command)
@opt.cluster_options
def resume_command(**kw: Any) -> None:
    """Resume a suspended controller: it reconciles at once (and records a Resumed Event)."""
    _annotate(kw, {SUSPEND: None})
    click.echo("resumed: the controller reconciles now")


@click.command("reconcile", cls=Command)
@opt.cluster_options
@click.option(
    "--with-source",
    is_flag=True,
    help="Fetch the repo first; without it, the revision in force is re-applied.",
)
def reconcile_command(with_source: bool, **kw: Any) -> None:
    """Ask the running controller to reconcile now (`policy-reconciler status` shows the run)."""
    asked = now_rfc3339()
    _annotate(kw, {SOURCE_REQUESTED_AT if with_source else REQUESTED_AT: asked})
    what = "fetch and reconcile" if with_source else "re-apply the revision in force"
    click.echo(f"requested at {asked}: the controller will {what} within seconds")


def _annotate(kw: dict[str, Any], annotations: dict[str, str | None]) -> None:
    args = opt.cluster_args(kw)
    cluster = Cluster.connect(args.connection())
    try:
        _patch(cluster, args.applyset, annotations)
    finally:
        cluster.close()


def _patch(cluster: Cluster, applyset: ApplySet, annotations: dict[str, str | None]) -> None:
    if cluster.get(CONFIGMAPS, applyset.name, applyset.namespace) is None:
        no_applyset(applyset)
    cluster.request(
        "PATCH",
        CONFIGMAPS.path(applyset.namespace, applyset.name),
        verb="patch",
        query={"fieldManager": "policy-reconciler-cli"},
        body={"metadata": {"annotations": annotations}},
        content_type="application/merge-patch+json",
    )
