"""One revision through the stages: render -> observe -> plan -> execute.

A straight pipeline (as kustomize-controller's reconcile loop) shared by the CLI
and the controller. Each step is a function of the previous step's value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from reconciler import applyset as aset
from reconciler import generate
from reconciler.apply import Inventories, Target, execute
from reconciler.apply.executor import Progress
from reconciler.calico.flavour import Flavour, crd_flavour, v3_flavour
from reconciler.cluster.client import CONFIGMAPS, Cluster
from reconciler.kinds import CALICO_CRD, CALICO_V3, group_kind_of
from reconciler.manifests import load_dir
from reconciler.manifests.templates import Template
from reconciler.model import Action, ApplyResult, Finding, Plan, Resource, Revision, Severity
from reconciler.observe import (
    CalicoMissing,
    Types,
    discover,
    read_kube_controllers,
    read_live,
    read_namespaces,
    read_nodes,
)
from reconciler.plan import Desired, Live, PlanOptions, make_plan


@dataclass(frozen=True, slots=True)
class Settings:
    applyset: aset.ApplySet = field(
        default_factory=lambda: aset.ApplySet("policy-reconciler", "policy-reconciler")
    )
    options: PlanOptions = field(default_factory=PlanOptions)
    default_namespace: str = ""
    calico: tuple[int, int] = (3, 31)


@dataclass(frozen=True, slots=True)
class Rendered:
    """Everything the repo asks for at one revision, or why it cannot be used.

    `templates` are expanded over the live cluster at every plan (so a new Node or a
    relabelled Namespace changes the plan without a new revision); `resources` holds the
    files' objects until then, and the generated ones added after.
    """

    revision: Revision
    resources: tuple[Resource, ...]
    findings: tuple[Finding, ...]
    templates: tuple[Template, ...] = ()


@dataclass(frozen=True, slots=True)
class Planned:
    plan: Plan
    types: Types
    inventories: Inventories
    suspended: bool = False


def render(path: Path, revision: Revision, settings: Settings) -> Rendered:
    loaded = load_dir(path, default_namespace=settings.default_namespace)
    trusted = _without_errors(loaded.resources, loaded.findings)
    return Rendered(revision, trusted, loaded.findings, loaded.templates)


def _without_errors(
    resources: Sequence[Resource], findings: Sequence[Finding]
) -> tuple[Resource, ...]:
    """An object with an error is reported, never converted or planned: later stages may
    trust the types the schema checked (a revision with errors writes nothing anyway)."""
    refused = {f.ref for f in findings if f.severity is Severity.ERROR and f.ref}
    return tuple(r for r in resources if r.ref not in refused)


def detect_flavour(cluster: Cluster, calico: tuple[int, int]) -> Flavour:
    """Write v3 where the Calico API server serves it, else the CRDs Calico reads."""
    v3 = cluster.resources(f"{CALICO_V3}/v3")
    if v3 and "GlobalNetworkPolicy" in v3:
        return v3_flavour()
    if cluster.resources(f"{CALICO_CRD}/v1"):
        return crd_flavour(calico)
    raise CalicoMissing(
        "Calico is not installed in this cluster: neither projectcalico.org/v3 nor "
        "crd.projectcalico.org/v1 is served"
    )


def plan(cluster: Cluster, rendered: Rendered, settings: Settings) -> Planned:
    flavour = detect_flavour(cluster, settings.calico)
    types = discover(cluster, flavour)
    rendered = expand_templates(cluster, rendered, types=types, calico_group=flavour.group)
    parent = cluster.get(CONFIGMAPS, settings.applyset.name, settings.applyset.namespace)
    recorded = aset.read_inventory(parent) if parent else None
    desired = _desired(rendered.resources, flavour, settings.applyset)
    wanted = aset.inventory_of(rendered.resources, calico_group=flavour.group)
    live = read_live(
        cluster,
        flavour=flavour,
        types=types,
        applyset=settings.applyset,
        inventory=wanted.union(recorded or aset.Inventory()),
        desired=desired,
    )
    result = make_plan(
        revision=rendered.revision,
        desired=desired,
        live=live,
        options=settings.options,
        target=cluster.name,
        findings=rendered.findings,
    )
    final = wanted.union(_kept(result, live))
    return Planned(result, types, Inventories(recorded, final), aset.is_suspended(parent))


def expand_templates(
    cluster: Cluster, rendered: Rendered, *, types: Types, calico_group: str
) -> Rendered:
    """The templates over what they need of the live cluster: one LIST of Nodes and/or
    Namespaces, and for host endpoint templates Calico's automatic host endpoints setting
    (from the repo, else one GET)."""
    if not rendered.templates:
        return rendered
    need = generate.needs(rendered.templates)
    auto = None
    if need.nodes:
        kcc = _repo_kube_controllers(rendered.resources)
        live = None if kcc else read_kube_controllers(cluster, types, calico_group)
        auto = _auto(kcc, live)
    expanded = generate.expand(
        rendered.templates,
        nodes=read_nodes(cluster) if need.nodes else (),
        namespaces=read_namespaces(cluster) if need.namespaces else (),
        auto=auto,
    )
    return _with_generated(rendered, expanded)


def _with_generated(rendered: Rendered, expanded: generate.Expanded, *notes: Finding) -> Rendered:
    resources, clashes = generate.merge(rendered.resources, expanded.resources)
    findings = (*rendered.findings, *notes, *expanded.findings, *clashes)
    return replace(rendered, resources=_without_errors(resources, findings), findings=findings)


def _repo_kube_controllers(resources: Iterable[Resource]) -> Resource | None:
    found = (r for r in resources if r.ref.kind == "KubeControllersConfiguration")
    return next((r for r in found if r.ref.name == "default"), None)


def _auto(
    repo: Resource | None, live: dict[str, object] | None
) -> generate.AutoHostEndpoints | None:
    """The repo's setting wins: it is what the cluster will have once this plan is applied."""
    if repo is not None:
        return generate.auto_host_endpoints(repo.body, source=f"{repo.ref} at {repo.origin}")
    source = "KubeControllersConfiguration/default in the cluster"
    return generate.auto_host_endpoints(live, source=source)


def plan_offline(
    rendered: Rendered,
    settings: Settings,
    *,
    nodes: Sequence[generate.Node] | None = None,
    namespaces: Sequence[generate.Namespace] | None = None,
) -> Plan:
    """No cluster: what would be created in an empty cluster with Calico's CRDs. Templates
    expand over `nodes`/`namespaces` when given (from files), else each gets a note."""
    given = generate.Needs(nodes=nodes is not None, namespaces=namespaces is not None)
    ready = [t for t in rendered.templates if not generate.unexpanded([t], given)]
    expanded = generate.expand(
        ready,
        nodes=nodes or (),
        namespaces=namespaces or (),
        auto=_auto(_repo_kube_controllers(rendered.resources), None),
    )
    notes = generate.unexpanded(rendered.templates, given)
    rendered = _with_generated(rendered, expanded, *notes)
    desired = _desired(rendered.resources, crd_flavour(settings.calico), settings.applyset)
    return make_plan(
        revision=rendered.revision,
        desired=desired,
        live=[],
        options=settings.options,
        target="offline render (no cluster)",
        findings=rendered.findings,
    )


def apply(
    cluster: Cluster,
    planned: Planned,
    settings: Settings,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ApplyResult:
    target = Target(cluster, planned.types, settings.applyset, settings.options.field_manager)
    return execute(
        target, planned.plan, inventories=planned.inventories, dry_run=dry_run, progress=progress
    )


def _desired(
    resources: Iterable[Resource], flavour: Flavour, applyset: aset.ApplySet
) -> list[Desired]:
    labelled = (aset.label(r, applyset) for r in resources)
    return [Desired(r, flavour.to_cluster(r)) for r in labelled]


def _kept(plan: Plan, live: Sequence[Live]) -> aset.Inventory:
    """Owned objects this plan leaves in place still need the parent to list them."""
    pruned = {c.ref.key for c in plan.changes if c.action is Action.PRUNE}
    kept = [lv for lv in live if lv.owned and lv.ref.key not in pruned]
    kinds = frozenset(group_kind_of(lv.body) for lv in kept)
    namespaces = frozenset(lv.ref.namespace for lv in kept if lv.ref.namespace)
    return aset.Inventory(kinds, namespaces)
