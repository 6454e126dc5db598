"""One revision through the stages: render -> observe -> plan -> execute.

A straight pipeline (as kustomize-controller's reconcile loop) shared by the CLI
and the controller. Each step is a function of the previous step's value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import applyset as aset
from reconciler.apply import Inventories, Target, execute
from reconciler.apply.executor import Progress
from reconciler.calico.flavour import Flavour, crd_flavour, v3_flavour
from reconciler.cluster.client import CONFIGMAPS, Cluster
from reconciler.kinds import CALICO_CRD, CALICO_V3
from reconciler.manifests import load_dir
from reconciler.model import Action, ApplyResult, Finding, GroupKind, Plan, Resource, Revision
from reconciler.observe import CalicoMissing, Types, discover, read_live
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
    """Everything the repo asks for at one revision, or why it cannot be used."""

    revision: Revision
    resources: tuple[Resource, ...]
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class Planned:
    plan: Plan
    types: Types
    inventories: Inventories
    suspended: bool = False


def render(path: Path, revision: Revision, settings: Settings) -> Rendered:
    loaded = load_dir(path, default_namespace=settings.default_namespace)
    return Rendered(revision, loaded.resources, loaded.findings)


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


def plan_offline(rendered: Rendered, settings: Settings) -> Plan:
    """No cluster: what would be created in an empty cluster with Calico's CRDs."""
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
    kinds = frozenset(
        GroupKind(lv.body["apiVersion"].rpartition("/")[0], lv.body["kind"]) for lv in kept
    )
    namespaces = frozenset(lv.ref.namespace for lv in kept if lv.ref.namespace)
    return aset.Inventory(kinds, namespaces)
