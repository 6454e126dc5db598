"""`policy-reconciler plan DIR` and `apply DIR`. Exit codes as `flux diff`/`argocd app diff`:
0 no changes (or applied cleanly), 1 changes pending, 2 error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from reconciler import generate, pipeline
from reconciler.cli import options as opt
from reconciler.cli.errors import EXIT_CHANGES, EXIT_CLEAN, EXIT_ERROR, Command
from reconciler.cluster.client import Cluster
from reconciler.manifests.yamlsafe import Limits, parse_yaml
from reconciler.model import ApplyResult, Change, Plan, Revision
from reconciler.report import render_json, render_markdown, render_text

_DIRECTORY = click.argument("directory", type=opt.DIRECTORY)
_OUTPUT = opt.output("text", "json", "markdown")


@click.command("plan", cls=Command)
@_DIRECTORY
@_OUTPUT
@opt.plan_options
@click.option("--offline", is_flag=True, help="Validate and render with no cluster at all.")
@click.option(
    "--nodes-file",
    type=opt.EXISTING_FILE,
    help="With --offline: Nodes to expand host endpoint templates over "
    "(`kubectl get nodes -o yaml`).",
)
@click.option(
    "--namespaces-file",
    type=opt.EXISTING_FILE,
    help="With --offline: Namespaces to expand namespace templates over "
    "(`kubectl get namespaces -o yaml`).",
)
def plan_command(**kw: Any) -> None:
    """Show what `apply` would change in the cluster, and why. Writes nothing."""
    args = opt.plan_args(kw)
    if not args.offline and (args.nodes_file or args.namespaces_file):
        raise click.UsageError("--nodes-file and --namespaces-file go with --offline")
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
    return pipeline.plan_offline(
        rendered,
        args.settings,
        nodes=_inventory(args.nodes_file, "Node", generate.node_from_api),
        namespaces=_inventory(args.namespaces_file, "Namespace", generate.namespace_from_api),
    )


T = TypeVar("T")
# A node list of a big cluster is large (images in status): room for it, still bounded.
_INVENTORY_LIMITS = Limits(max_bytes=512 * 1024 * 1024, max_nodes=50_000_000, max_depth=64)


def _inventory(path: Path | None, kind: str, build: Callable[[Any], T]) -> list[T] | None:
    """Objects of `kind` in a file (a `kubectl get -o yaml|json` List, or plain documents)."""
    if path is None:
        return None
    parsed = parse_yaml(path.read_text(), path=str(path), limits=_INVENTORY_LIMITS)
    if parsed.findings:
        raise click.BadParameter(str(parsed.findings[0]), param_hint=f"--{kind.lower()}s-file")
    found = [item for doc in parsed.documents for item in _items(doc.value)]
    return [build(obj) for obj in found if obj.get("kind", kind) == kind]


def _items(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict) and isinstance(value.get("items"), list):
        return [i for i in value["items"] if isinstance(i, dict)]
    return [value] if isinstance(value, dict) else []


def _connect(args: opt.PlanArgs) -> Cluster:
    return Cluster.connect(args.cluster.connection())


def _progress(change: Change, status: str) -> None:
    click.echo(f"  {change.action.value:<8} {change.ref} ... {status}", err=True)


def _color(args: opt.PlanArgs) -> bool:
    return args.output == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _exit(args: opt.PlanArgs, plan: Plan, result: ApplyResult | None) -> NoReturn:
    click.echo(_rendered(args, plan, result), nl=False)
    sys.exit(exit_code(plan, result, dry_run=args.dry_run))


def _rendered(args: opt.PlanArgs, plan: Plan, result: ApplyResult | None) -> str:
    if args.output == "json":
        return render_json(plan, result=result) + "\n"
    if args.output == "markdown":
        return render_markdown(plan, result=result)
    return render_text(plan, color=_color(args), result=result)


def exit_code(plan: Plan, result: ApplyResult | None, *, dry_run: bool = False) -> int:
    if plan.errors or (result is not None and not result.ok):
        return EXIT_ERROR
    if result is None or dry_run:
        return EXIT_CHANGES if plan.has_changes else EXIT_CLEAN
    return EXIT_CLEAN


__all__ = ["apply_command", "exit_code", "plan_command"]
