"""`policy-reconciler plan DIR` and `apply DIR`. Exit codes as `flux diff`/`argocd app diff`:
0 no changes (or applied cleanly), 1 changes pending, 2 error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from reconciler import pipeline
from reconciler.cli import options as opt
from reconciler.cli.errors import EXIT_CHANGES, EXIT_CLEAN, EXIT_ERROR, Command
from reconciler.cluster.client import Cluster
from reconciler.generate import Namespace, Node
from reconciler.model import ApplyResult, Change, Plan, Revision
from reconciler.observe.inventory_file import read_inventory
from reconciler.pipeline.review import offline_against
from reconciler.report import render_json, render_markdown, render_text
from reconciler.report.checks import skip_warnings

_DIRECTORY = click.argument("directory", type=opt.DIRECTORY)
_OUTPUT = opt.output("text", "json", "markdown")


@click.command("plan", cls=Command)
@_DIRECTORY
@_OUTPUT
@opt.plan_options
@click.option("--offline", is_flag=True, help="Validate and render with no cluster at all.")
@opt.INVENTORY
@click.option(
    "--base",
    "base_dir",
    type=opt.DIRECTORY,
    help="With --offline: plan against this directory's render, as if it were applied "
    "(ConnectivityChecks then start from it; without it, from an empty cluster).",
)
@click.option(
    "--nodes-file",
    type=opt.EXISTING_FILE,
    help="With --offline: only the Nodes of an inventory (`kubectl get nodes -o yaml`).",
)
@click.option(
    "--namespaces-file",
    type=opt.EXISTING_FILE,
    help="With --offline: only the Namespaces (`kubectl get namespaces -o yaml`).",
)
def plan_command(**kw: Any) -> None:
    """Show what `apply` would change in the cluster, and why. Writes nothing."""
    args = opt.plan_args(kw)
    if not args.offline and (
        args.inventory or args.nodes_file or args.namespaces_file or args.base_dir
    ):
        raise click.UsageError(
            "--inventory, --nodes-file, --namespaces-file and --base go with --offline"
        )
    rendered = _render(args)
    if args.offline:
        _exit(args, _plan_offline(args, rendered), None)
    planned = pipeline.plan(_connect(args), rendered, args.settings)
    _exit(args, planned.plan, None)


@click.command("apply", cls=Command)
@_DIRECTORY
@_OUTPUT
@opt.plan_options
@click.option("--dry-run", is_flag=True, help="Server-side dry-run only: validate, write nothing.")
def apply_command(**kw: Any) -> None:
    """Apply DIR to the cluster in firewall-safe order, then prune what Git dropped."""
    args = opt.plan_args(kw)
    rendered = _render(args)
    cluster = _connect(args)
    planned = pipeline.plan(cluster, rendered, args.settings)
    result = pipeline.apply(
        cluster,
        planned,
        args.settings,
        dry_run=args.dry_run,
        progress=None if args.output != "text" else _progress,
    )
    _exit(args, planned.plan, result)


def _render(args: opt.PlanArgs) -> pipeline.Rendered:
    revision = Revision(id=f"dir:{args.directory}", path=str(args.directory))
    return pipeline.render(args.directory, revision, args.settings)


def _plan_offline(args: opt.PlanArgs, rendered: pipeline.Rendered) -> Plan:
    inventory = inventory_of(args.inventory, args.nodes_file, args.namespaces_file)
    if args.base_dir is None:
        return pipeline.plan_offline(rendered, args.settings, **inventory.kwargs())
    base_revision = Revision(id=f"dir:{args.base_dir}", path=str(args.base_dir))
    base = pipeline.render(args.base_dir, base_revision, args.settings)
    return offline_against(rendered, base, args.settings, inventory)


def inventory_of(
    inventory: Path | None, nodes_file: Path | None = None, namespaces_file: Path | None = None
) -> pipeline.Inventory:
    """Every fact of `--inventory` (pods and service accounts too, for the checks)."""
    nodes, namespaces = offline_inventory(inventory, nodes_file, namespaces_file)
    whole = read_inventory(inventory) if inventory else None
    return pipeline.Inventory(
        nodes=nodes,
        namespaces=namespaces,
        pods=list(whole.pods) if whole else None,
        service_accounts=list(whole.service_accounts) if whole else None,
    )


def offline_inventory(
    inventory: Path | None, nodes_file: Path | None = None, namespaces_file: Path | None = None
) -> tuple[list[Node] | None, list[Namespace] | None]:
    """Nodes and Namespaces from `--inventory`, or from the older one-kind files (aliases):
    each read by the same hostile-input parser (file:line errors, never a traceback)."""
    whole = read_inventory(inventory) if inventory else None
    nodes_from = read_inventory(nodes_file) if nodes_file else whole
    namespaces_from = read_inventory(namespaces_file) if namespaces_file else whole
    return (
        list(nodes_from.nodes) if nodes_from else None,
        list(namespaces_from.namespaces) if namespaces_from else None,
    )


def _connect(args: opt.PlanArgs) -> Cluster:
    return Cluster.connect(args.cluster.connection())


def _progress(change: Change, status: str) -> None:
    click.echo(f"  {change.action.value:<8} {change.ref} ... {status}", err=True)


def _color(args: opt.PlanArgs) -> bool:
    return args.output == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _exit(args: opt.PlanArgs, plan: Plan, result: ApplyResult | None) -> NoReturn:
    for warning in skip_warnings(plan):
        click.echo(warning, err=True)
    click.echo(_rendered(args, plan, result), nl=False)
    sys.exit(exit_code(plan, result, dry_run=args.dry_run))


def _rendered(args: opt.PlanArgs, plan: Plan, result: ApplyResult | None) -> str:
    if args.output == "json":
        return render_json(plan, result=result) + "\n"
    if args.output == "markdown":
        return render_markdown(plan, result=result)
    return render_text(plan, color=_color(args), result=result)


def exit_code(plan: Plan, result: ApplyResult | None, *, dry_run: bool = False) -> int:
    if plan.errors or plan.failing_checks or (result is not None and not result.ok):
        return EXIT_ERROR
    if result is None or dry_run:
        return EXIT_CHANGES if plan.has_changes else EXIT_CLEAN
    return EXIT_CLEAN


__all__ = ["apply_command", "exit_code", "inventory_of", "plan_command"]
