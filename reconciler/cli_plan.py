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

from reconciler import generate, pipeline
from reconciler.applyset import ApplySet
from reconciler.cluster import errors
from reconciler.cluster.client import Cluster, Connection
from reconciler.manifests.yamlsafe import Limits, parse_yaml
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


def parse_share(value: str) -> float:
    """ "30%", "0.3" or "30" -> 0.3."""
    text = value.strip().rstrip("%")
    number = float(text)
    share = number / 100 if value.strip().endswith("%") or number > 1 else number
    if not 0 <= share <= 1:
        raise click.BadParameter(f"{value!r} is not a share between 0% and 100%")
    return share


def parse_calico_version(value: str) -> tuple[int, int]:
    major, _, minor = value.removeprefix("v").partition(".")
    return int(major), int(minor.partition(".")[0])


def common_options(fn: F) -> F:
    """DIRECTORY, -o and the plan options: what `plan` and `apply` share."""
    options = [
        click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path)),
        click.option(
            "-o",
            "--output",
            type=click.Choice(["text", "json", "markdown"]),
            default="text",
            show_default=True,
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return plan_options(fn)


def plan_options(fn: F) -> F:
    """Which cluster, and how to plan: shared with `report`, which takes two directories."""
    options = [
        click.option("--kubeconfig", envvar="KUBECONFIG", default="", help="Kubeconfig file."),
        click.option("--context", default="", help="Kubeconfig context [default: current]."),
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
    settings = settings_of(**kw)
    return Common(kw["directory"], kw["kubeconfig"], kw["context"], kw["output"], settings)


def settings_of(**kw: Any) -> pipeline.Settings:
    """The pipeline settings from the values of `plan_options`."""
    options = PlanOptions(
        prune=kw["prune"],
        adopt=kw["adopt"],
        max_prune=parse_share(kw["max_prune"]),
        allow_empty=kw["allow_empty"],
    )
    return pipeline.Settings(
        applyset=ApplySet(kw["applyset_name"], kw["ns"]),
        options=options,
        default_namespace=kw["default_namespace"],
        calico=parse_calico_version(kw["calico_version"]),
    )


_INVENTORY_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("plan")
@common_options
@click.option("--offline", is_flag=True, help="Validate and render with no cluster at all.")
@click.option(
    "--nodes-file",
    type=_INVENTORY_FILE,
    help="With --offline: Nodes to expand host endpoint templates over "
    "(`kubectl get nodes -o yaml`).",
)
@click.option(
    "--namespaces-file",
    type=_INVENTORY_FILE,
    help="With --offline: Namespaces to expand namespace templates over "
    "(`kubectl get namespaces -o yaml`).",
)
def plan_command(
    offline: bool, nodes_file: Path | None, namespaces_file: Path | None, **kw: Any
) -> None:
    """Show what `apply` would change in the cluster, and why. Writes nothing."""
    common = _common(**kw)
    rendered = _render(common)
    if offline:
        plan = pipeline.plan_offline(
            rendered,
            common.settings,
            nodes=_inventory(nodes_file, "Node", generate.node_from_api),
            namespaces=_inventory(namespaces_file, "Namespace", generate.namespace_from_api),
        )
        _exit(common, plan, None)
    if nodes_file or namespaces_file:
        raise click.UsageError("--nodes-file and --namespaces-file go with --offline")
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
    if plan.errors or (result is not None and not result.ok):
        return EXIT_ERROR
    if result is None or dry_run:
        return EXIT_CHANGES if plan.has_changes else EXIT_CLEAN
    return EXIT_CLEAN


__all__ = ["apply_command", "plan_command", "plan_options", "settings_of"]
