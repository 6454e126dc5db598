"""`policy-reconciler plan DIR` and `apply DIR`. Exit codes as `flux diff`/`argocd app diff`:
0 no changes (or applied cleanly), 1 changes pending, 2 error.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

import click

from reconciler import pipeline
from reconciler.apply.executor import APPLIES
from reconciler.cli import options as opt
from reconciler.cli.errors import EXIT_CHANGES, EXIT_CLEAN, EXIT_ERROR, Command
from reconciler.cluster.client import Cluster
from reconciler.generate import Namespace, Node
from reconciler.model import Action, ApplyResult, Change, Plan, Revision
from reconciler.observe.inventory_file import read_inventory
from reconciler.pipeline.review import offline_against
from reconciler.report import render_json, render_markdown, render_text
from reconciler.report.checks import skip_warnings
from reconciler.report.text import DiffStyle

_DIRECTORY = click.argument("directory", type=opt.DIRECTORY)
_OUTPUT = opt.output("text", "json", "markdown")


@click.command("plan", cls=Command)
@_DIRECTORY
@_OUTPUT
@opt.plan_options
@opt.diff_options
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
@opt.diff_options
@click.option("--dry-run", is_flag=True, help="Server-side dry-run only: validate, write nothing.")
@click.option(
    "--create-namespace",
    is_flag=True,
    help="Create missing namespaces first: the ApplySet parent's and the objects'.",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Print every change's diff too, not only the failures."
)
def apply_command(**kw: Any) -> None:
    """Apply DIR to the cluster in firewall-safe order, then prune what Git dropped."""
    args = opt.plan_args(kw)
    rendered = _render(args)
    cluster = _connect(args)
    planned = pipeline.plan(cluster, rendered, args.settings)
    text = args.output == "text"
    if text:
        _announce(planned)
    result = pipeline.apply(
        cluster,
        planned,
        args.settings,
        dry_run=args.dry_run,
        progress=Counter(planned.plan) if text else None,
    )
    _exit(args, planned.plan, result)


class Counter:
    """`[ 1200/3000 ] create Kind.group/ns/name` on stderr, one line per write.

    A lock keeps the count right if the executor ever reports from several threads."""

    def __init__(self, plan: Plan) -> None:
        self.total = sum(1 for c in plan.changes if c.action.writes)
        self.done = 0
        self._lock = threading.Lock()

    def __call__(self, change: Change, status: str) -> None:
        with self._lock:
            self.done += 1
            width = len(str(self.total))
            tail = "" if status == "done" else f" ({status})"
            line = f"[ {self.done:>{width}}/{self.total} ] {change.action.value:<6} "
            click.echo(line + change.ref.qualified + tail, err=True)


def _announce(planned: pipeline.Planned) -> None:
    """The dry-run phase is silent work on the server: say what it is doing."""
    plan = planned.plan
    checked = sum(1 for c in plan.changes if c.action in APPLIES)
    if plan.errors or plan.count(Action.CONFLICT) or not checked:
        return
    if planned.namespaces_to_create:
        names = ", ".join(planned.namespaces_to_create)
        click.echo(f"[ namespaces ] creating {names}", err=True)
    noun = "object" if checked == 1 else "objects"
    click.echo(
        f"[ dry-run ] {checked} {noun} sent to the API server (server-side dry-run, "
        "nothing written yet)",
        err=True,
    )


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
    style = DiffStyle(show_managed=args.show_managed, fields=args.diff_style == "fields")
    if args.output == "markdown":
        return render_markdown(plan, result=result, style=style)
    return render_text(
        plan,
        color=_color(args),
        result=result,
        show_managed=style.show_managed,
        fields=style.fields,
        only_failures=result is not None and not args.verbose,
    )


def exit_code(plan: Plan, result: ApplyResult | None, *, dry_run: bool = False) -> int:
    if plan.errors or plan.failing_checks or (result is not None and not result.ok):
        return EXIT_ERROR
    if result is None or dry_run:
        return EXIT_CHANGES if plan.has_changes else EXIT_CLEAN
    return EXIT_CLEAN


__all__ = ["apply_command", "exit_code", "inventory_of", "plan_command"]
