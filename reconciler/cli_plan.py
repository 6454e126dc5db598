"""`policy-reconciler plan DIR` and `apply DIR`. Exit codes as `flux diff`/`argocd app diff`:
0 no changes (or applied cleanly), 1 changes pending, 2 error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler import pipeline
from reconciler.applyset import ApplySet
from reconciler.cluster import errors
from reconciler.cluster.client import Cluster, Connection
from reconciler.model import ApplyResult, Change, Plan, Revision
from reconciler.plan import PlanOptions
from reconciler.report import render_json, render_markdown, render_text

EXIT_CLEAN, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Common:
    directory: Path
    kubeconfig: str
    context: str
    output: str
    settings: pipeline.Settings


def _percent(value: str) -> float:
    """ "30%", "0.3" or "30" -> 0.3."""
    text = value.strip().rstrip("%")
    number = float(text)
    share = number / 100 if value.strip().endswith("%") or number > 1 else number
    if not 0 <= share <= 1:
        raise click.BadParameter(f"{value!r} is not a share between 0% and 100%")
    return share


def _calico(value: str) -> tuple[int, int]:
    major, _, minor = value.removeprefix("v").partition(".")
    return int(major), int(minor.partition(".")[0])


def common_options(fn: F) -> F:
    options = [
        click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path)),
        click.option("--kubeconfig", envvar="KUBECONFIG", default="", help="Kubeconfig file."),
        click.option("--context", default="", help="Kubeconfig context [default: current]."),
        click.option(
            "-o",
            "--output",
            type=click.Choice(["text", "json", "markdown"]),
            default="text",
            show_default=True,
        ),
        click.option(
            "--namespace",
            "ns",
            envvar="POLICY_RECONCILER_NAMESPACE",
            default="policy-reconciler",
            show_default=True,
            help="Namespace of the ApplySet parent ConfigMap that records what we own.",
        ),
        click.option(
            "--applyset",
            "applyset_name",
            default="policy-reconciler",
            show_default=True,
            help="Name of the ApplySet parent ConfigMap.",
        ),
        click.option(
            "--default-namespace",
            default="",
            help="Namespace for namespaced objects that name none.",
        ),
        click.option(
            "--prune/--no-prune",
            default=True,
            show_default=True,
            help="Delete managed objects that Git no longer holds.",
        ),
        click.option(
            "--max-prune",
            default="30%",
            show_default=True,
            help="Refuse to delete more than this share of managed objects in one run.",
        ),
        click.option(
            "--allow-empty",
            is_flag=True,
            help="Allow an empty render to prune everything we manage.",
        ),
        click.option(
            "--adopt",
            is_flag=True,
            help="Take over existing objects of the same name that we do not manage.",
        ),
        click.option(
            "--calico-version",
            default="3.31",
            show_default=True,
            help="Calico release whose CRD storage rules apply (without its API server).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _common(**kw: Any) -> Common:
    options = PlanOptions(
        prune=kw["prune"],
        adopt=kw["adopt"],
        max_prune=_percent(kw["max_prune"]),
        allow_empty=kw["allow_empty"],
    )
    settings = pipeline.Settings(
        applyset=ApplySet(kw["applyset_name"], kw["ns"]),
        options=options,
        default_namespace=kw["default_namespace"],
        calico=_calico(kw["calico_version"]),
    )
    return Common(kw["directory"], kw["kubeconfig"], kw["context"], kw["output"], settings)


@click.command("plan")
@common_options
@click.option("--offline", is_flag=True, help="Validate and render with no cluster at all.")
def plan_command(offline: bool, **kw: Any) -> None:
    """Show what `apply` would change in the cluster, and why. Writes nothing."""
    common = _common(**kw)
    rendered = _render(common)
    if offline:
        plan = pipeline.plan_offline(rendered, common.settings)
        _exit(common, plan, None)
    with _guarded():
        cluster = _connect(common)
        planned = pipeline.plan(cluster, rendered, common.settings)
    _exit(common, planned.plan, None)


@click.command("apply")
@common_options
@click.option("--dry-run", is_flag=True, help="Server-side dry-run only: validate, write nothing.")
def apply_command(dry_run: bool, **kw: Any) -> None:
    """Apply DIR to the cluster in firewall-safe order, then prune what Git dropped."""
    common = _common(**kw)
    rendered = _render(common)
    with _guarded():
        cluster = _connect(common)
        planned = pipeline.plan(cluster, rendered, common.settings)
        result = pipeline.apply(
            cluster,
            planned,
            common.settings,
            dry_run=dry_run,
            progress=None if common.output != "text" else _progress,
        )
    _exit(common, planned.plan, result, dry_run=dry_run)


def _render(common: Common) -> pipeline.Rendered:
    revision = Revision(id=f"dir:{common.directory}", path=str(common.directory))
    return pipeline.render(common.directory, revision, common.settings)


def _connect(common: Common) -> Cluster:
    return Cluster.connect(Connection(kubeconfig=common.kubeconfig, context=common.context))


@contextmanager
def _guarded() -> Iterator[None]:
    """Turn API errors into one clear line and exit code 2, never a traceback."""
    try:
        yield
    except errors.KubeError as exc:
        click.echo(f"error: {explain(exc)}", err=True)
        sys.exit(EXIT_ERROR)


def explain(exc: errors.KubeError) -> str:
    if isinstance(exc, errors.Unreachable):
        return f"cannot reach the Kubernetes API server: {exc.message}"
    if isinstance(exc, errors.Unauthorized | errors.Forbidden):
        return f"the API server refused our credentials or permissions: {exc.message}"
    return exc.message


def _progress(change: Change, status: str) -> None:
    click.echo(f"  {change.action.value:<8} {change.ref} ... {status}", err=True)


def _color(common: Common) -> bool:
    return common.output == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _exit(common: Common, plan: Plan, result: ApplyResult | None, *, dry_run: bool = False) -> None:
    click.echo(_rendered(common, plan, result), nl=False)
    sys.exit(exit_code(plan, result, dry_run=dry_run))


def _rendered(common: Common, plan: Plan, result: ApplyResult | None) -> str:
    if common.output == "json":
        return render_json(plan, result=result) + "\n"
    if common.output == "markdown":
        return render_markdown(plan, result=result)
    return render_text(plan, color=_color(common), result=result)


def exit_code(plan: Plan, result: ApplyResult | None, *, dry_run: bool = False) -> int:
    if plan.errors or (result is not None and not result.ok) or (result and result.notes):
        return EXIT_ERROR
    if result is None or dry_run:
        return EXIT_CHANGES if plan.has_changes else EXIT_CLEAN
    return EXIT_CLEAN


__all__ = ["apply_command", "plan_command"]
