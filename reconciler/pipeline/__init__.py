"""One revision through the stages: render -> observe -> plan -> execute.

A straight pipeline (as kustomize-controller's reconcile loop, which gathers its inputs
before it applies) shared by the CLI and the controller. Each step is a function of the
previous step's value:

    rendered = render(path, revision, settings)              # files -> Resources, templates
    observed, intents = observe(cluster, [rendered], settings)  # every cluster read, once
    planned = decide(intents[0], observed, settings)          # pure
    result = apply(cluster, planned, settings)                # writes

`plan(cluster, rendered, settings)` is the middle two; `plan_observed(rendered, observed,
settings)` plans against facts from anywhere (offline: `observe.offline_facts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reconciler import applyset as aset
from reconciler import generate
from reconciler import observe as obs
from reconciler.apply import Inventories, Target, execute
from reconciler.apply.executor import WORKERS, Progress
from reconciler.calico.flavour import Flavour
from reconciler.cluster.client import Cluster
from reconciler.cluster.types import Types
from reconciler.connectivity import Facts as ConnectivityFacts
from reconciler.connectivity import Flavour as ModelFlavour
from reconciler.kinds import group_kind_of
from reconciler.manifests import load_dir
from reconciler.manifests.templates import Template
from reconciler.model import (
    Action,
    ApplyResult,
    Finding,
    Plan,
    Resource,
    Revision,
    Severity,
)
from reconciler.observe import Facts, Observed
from reconciler.observe.connectivity import read_cluster
from reconciler.pipeline import namespaces
from reconciler.plan import Desired, Live, PlanOptions, make_plan
from reconciler.plan import safe as safety


@dataclass(frozen=True, slots=True)
class Settings:
    applyset: aset.ApplySet = field(
        default_factory=lambda: aset.ApplySet("policy-reconciler", "policy-reconciler")
    )
    options: PlanOptions = field(default_factory=PlanOptions)
    default_namespace: str = ""
    calico: tuple[int, int] = (3, 31)
    create_namespace: bool = False  # apply creates missing namespaces (else: plan errors)


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
class Intent:
    """A render made concrete for one cluster: templates expanded, bodies in its flavour."""

    rendered: Rendered  # templates expanded (and their findings added)
    desired: tuple[Desired, ...]
    wanted: aset.Inventory  # the kinds and namespaces the desired objects need


@dataclass(frozen=True, slots=True)
class Planned:
    plan: Plan
    types: Types
    inventories: Inventories
    suspended: bool = False
    namespaces_to_create: tuple[str, ...] = ()  # with Settings.create_namespace


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


# --- observe: every read of the cluster, before any planning ----------------------------


def observe(
    cluster: Cluster, renders: Sequence[Rendered], settings: Settings
) -> tuple[Observed, list[Intent]]:
    """One read of the cluster for several renders (the PR's head and base share it)."""
    facts = obs.read_facts(
        cluster, calico=settings.calico, applyset=settings.applyset, wanted=wanted_by(renders)
    )
    intents = [intend(r, facts, settings) for r in renders]
    facts = namespaces.read(
        cluster, facts, (i.wanted for i in intents), settings.applyset.namespace
    )
    inventory = facts.recorded or aset.Inventory()
    for intent in intents:
        inventory = inventory.union(intent.wanted)
    objects = obs.read_objects(
        cluster,
        facts,
        applyset=settings.applyset,
        inventory=inventory,
        desired=[d for i in intents for d in i.desired],
    )
    return Observed(facts, objects), intents


def wanted_by(renders: Iterable[Rendered]) -> obs.Wanted:
    """The facts the renders' templates expand over; nothing when they have none."""
    found = list(renders)
    need = generate.needs(t for r in found for t in r.templates)
    kcc = any(generate.needs(r.templates).nodes and not _repo_kcc(r.resources) for r in found)
    return obs.Wanted(nodes=need.nodes, namespaces=need.namespaces, kube_controllers=kcc)


# --- plan: pure functions of the render and what was observed ---------------------------


def plan(cluster: Cluster, rendered: Rendered, settings: Settings) -> Planned:
    observed, (intent,) = observe(cluster, [rendered], settings)
    planned = decide(intent, observed, settings)
    return secure(cluster, planned, observed.facts.flavour, settings)


def secure(cluster: Cluster, planned: Planned, flavour: Flavour, settings: Settings) -> Planned:
    """The plan in a firewall-safe order checked on the connectivity model. The live
    firewall and its endpoints are read only when the plan writes more than one firewall
    object (with one write, no state lies between before and after)."""
    if not safety.has_states_between(planned.plan.changes):
        return planned
    live = read_cluster(cluster, calico=settings.calico)
    around = surroundings(live.objects, live.facts, flavour, settings)
    return ordered(planned, safety.safe_order(planned.plan.changes, around))


def surroundings(
    start: Sequence[Resource], facts: ConnectivityFacts, flavour: Flavour, settings: Settings
) -> safety.Surroundings:
    def prepare(resource: Resource) -> Resource:
        (made,) = _desired([resource], flavour, settings.applyset)
        return Resource(resource.ref, made.body, resource.origin)

    model = ModelFlavour(settings.calico)
    name = safety.bridge_name(settings.applyset.id)
    return safety.Surroundings(
        tuple(start), facts, flavour=model, prepare=prepare, bridge_tier=name
    )


def ordered(planned: Planned, found: safety.Ordered) -> Planned:
    """The plan in the order found; a bridge's kinds are recorded in the ApplySet parent
    while it exists, so that a run that stops half-way still prunes it later."""
    plan = replace(planned.plan, changes=found.changes, order=found.summary)
    if not found.bridged:
        return replace(planned, plan=plan)
    made = [c.desired.body for c in found.changes if c.desired and safety.is_bridge(c.ref)]
    bridge = frozenset(group_kind_of(body) for body in made)
    inventories = replace(planned.inventories, transient=aset.Inventory(bridge))
    return replace(planned, plan=plan, inventories=inventories)


def plan_observed(rendered: Rendered, observed: Observed, settings: Settings) -> Planned:
    return decide(intend(rendered, observed.facts, settings), observed, settings)


def plan_offline(
    rendered: Rendered,
    settings: Settings,
    *,
    nodes: Sequence[generate.Node] | None = None,
    namespaces: Sequence[generate.Namespace] | None = None,
) -> Plan:
    """No cluster: what would be created in an empty cluster with Calico's CRDs. Templates
    expand over `nodes`/`namespaces` when given (from files), else each gets a note."""
    facts = obs.offline_facts(settings.calico, nodes=nodes, namespaces=namespaces)
    return plan_observed(rendered, Observed(facts), settings).plan


# The last intents made: the controller plans one revision again and again, and the same
# Intent (the same desired bodies) lets the planner reuse their normal forms too.
_INTENTS: list[tuple[Rendered, tuple[object, ...], Intent]] = []


def intend(rendered: Rendered, facts: Facts, settings: Settings) -> Intent:
    """The render made concrete for this cluster; the same inputs give the same Intent."""
    key = (settings.applyset, facts.flavour, facts.nodes, facts.namespaces, facts.kube_controllers)
    for seen, seen_key, intent in list(_INTENTS):
        if seen is rendered and seen_key == key:
            return intent
    intent = _intend(rendered, facts, settings)
    _INTENTS[:] = [*_INTENTS[-1:], (rendered, key, intent)]  # head and base of a PR: two
    return intent


def _intend(rendered: Rendered, facts: Facts, settings: Settings) -> Intent:
    expanded = expand_templates(rendered, facts)
    desired = tuple(_desired(expanded.resources, facts.flavour, settings.applyset))
    wanted = aset.inventory_of(expanded.resources, calico_group=facts.flavour.group)
    return Intent(expanded, desired, wanted)


def decide(intent: Intent, observed: Observed, settings: Settings) -> Planned:
    facts = observed.facts
    recorded = facts.recorded
    live = observed.objects.for_plan(
        intent.wanted.union(recorded or aset.Inventory()), intent.desired
    )
    resources = [d.resource for d in intent.desired]
    absent = namespaces.missing(
        facts, resources, settings.applyset, create=settings.create_namespace
    )
    result = make_plan(
        revision=intent.rendered.revision,
        desired=intent.desired,
        live=live,
        options=settings.options,
        target=facts.target,
        findings=(*intent.rendered.findings, *absent),
    )
    final = intent.wanted.union(_kept(result, live))
    create = namespaces.to_create(facts, resources, settings.applyset)
    return Planned(
        result,
        facts.types,
        Inventories(recorded, final),
        facts.suspended,
        tuple(create) if settings.create_namespace else (),
    )


def expand_templates(rendered: Rendered, facts: Facts) -> Rendered:
    """The templates over the Nodes and Namespaces in `facts`; a note for each template
    whose inventory is missing (offline, without a file). Host endpoint templates also
    read Calico's automatic host endpoints setting (from the repo, else the cluster's)."""
    if not rendered.templates:
        return rendered
    given = generate.Needs(nodes=facts.nodes is not None, namespaces=facts.namespaces is not None)
    ready = [t for t in rendered.templates if not generate.unexpanded([t], given)]
    auto = None
    if generate.needs(ready).nodes:
        auto = _auto(_repo_kcc(rendered.resources), facts.kube_controllers)
    expanded = generate.expand(
        ready, nodes=facts.nodes or (), namespaces=facts.namespaces or (), auto=auto
    )
    notes = generate.unexpanded(rendered.templates, given)
    return _with_generated(rendered, expanded, *notes)


def _with_generated(rendered: Rendered, expanded: generate.Expanded, *notes: Finding) -> Rendered:
    resources, clashes = generate.merge(rendered.resources, expanded.resources)
    findings = (*rendered.findings, *notes, *expanded.findings, *clashes)
    return replace(rendered, resources=_without_errors(resources, findings), findings=findings)


def _repo_kcc(resources: Iterable[Resource]) -> Resource | None:
    """The repo's KubeControllersConfiguration `default`, the only one kube-controllers reads."""
    found = (r for r in resources if r.ref.kind == "KubeControllersConfiguration")
    return next((r for r in found if r.ref.name == "default"), None)


def _auto(
    repo: Resource | None, live: Mapping[str, Any] | None
) -> generate.AutoHostEndpoints | None:
    """The repo's setting wins: it is what the cluster will have once this plan is applied."""
    if repo is not None:
        return generate.auto_host_endpoints(repo.body, source=f"{repo.ref} at {repo.origin}")
    source = "KubeControllersConfiguration/default in the cluster"
    return generate.auto_host_endpoints(live, source=source)


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


# --- apply ------------------------------------------------------------------------------


def apply(
    cluster: Cluster,
    planned: Planned,
    settings: Settings,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    workers: int = WORKERS,
) -> ApplyResult:
    target = Target(
        cluster, planned.types, settings.applyset, settings.options.field_manager, workers
    )
    if planned.namespaces_to_create and not dry_run and not planned.plan.errors:
        namespaces.create(
            cluster, planned.namespaces_to_create, field_manager=settings.options.field_manager
        )
    return execute(
        target, planned.plan, inventories=planned.inventories, dry_run=dry_run, progress=progress
    )
