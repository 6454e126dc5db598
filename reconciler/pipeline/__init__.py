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

from collections import deque
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
from reconciler.connectivity import Flavour as ConnectivityFlavour
from reconciler.connectivity import World
from reconciler.connectivity.world import WorldBuilder
from reconciler.generate.inventory import Pod, ServiceAccount
from reconciler.kinds import group_kind_of
from reconciler.manifests import load_dir
from reconciler.manifests.conncheck import ConnectivityCheck
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
from reconciler.observe.connectivity import Live as Firewall
from reconciler.observe.connectivity import read_cluster as read_firewall
from reconciler.pipeline import namespaces
from reconciler.pipeline.heap import pausing_collector
from reconciler.plan import Desired, Live, PlanOptions, make_plan
from reconciler.plan import safe as safety
from reconciler.plan.checks import Auto, with_checks
from reconciler.plan.steps import identity, steps


@dataclass(frozen=True, slots=True)
class Settings:
    applyset: aset.ApplySet = field(
        default_factory=lambda: aset.ApplySet("policy-reconciler", "policy-reconciler")
    )
    options: PlanOptions = field(default_factory=PlanOptions)
    default_namespace: str = ""
    calico: tuple[int, int] = (3, 31)
    create_namespace: bool = False  # apply creates missing namespaces (else: plan errors)
    skip_checks: frozenset[str] = frozenset()  # --skip-checks: reported, loudly, never blocking


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
    checks: tuple[ConnectivityCheck, ...] = ()  # repo-only, never applied


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
    intent: Intent | None = None  # what it was planned from (pipeline/heal.py re-plans one)


@pausing_collector
def render(path: Path, revision: Revision, settings: Settings) -> Rendered:
    loaded = load_dir(path, default_namespace=settings.default_namespace)
    trusted = _without_errors(loaded.resources, loaded.findings)
    return Rendered(revision, trusted, loaded.findings, loaded.templates, loaded.checks)


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
    firewall = read_firewall(cluster, calico=settings.calico) if needs_firewall(renders) else None
    return Observed(facts, objects, firewall), intents


def needs_firewall(renders: Iterable[Rendered]) -> bool:
    """Whether planning reads every firewall object and pod of the cluster (the start of
    the connectivity checks): only when a render has ConnectivityChecks."""
    return any(r.checks for r in renders)


def wanted_by(renders: Iterable[Rendered]) -> obs.Wanted:
    """The facts the renders' templates expand over; nothing when they have none. Checks
    read Calico's automatic host endpoints setting too (they act on traffic)."""
    found = list(renders)
    need = generate.needs(t for r in found for t in r.templates)
    kcc = any(
        (generate.needs(r.templates).nodes or r.checks) and not _repo_kcc(r.resources)
        for r in found
    )
    return obs.Wanted(nodes=need.nodes, namespaces=need.namespaces, kube_controllers=kcc)


# --- plan: pure functions of the render and what was observed ---------------------------


@pausing_collector
def plan(cluster: Cluster, rendered: Rendered, settings: Settings) -> Planned:
    observed, (intent,) = observe(cluster, [rendered], settings)
    diffed = diff(intent, observed, settings)
    if observed.firewall is None and safety.has_states_between(diffed.plan.changes):
        # The firewall-safe order works on the live firewall and its endpoints: read only
        # now that the plan writes more than one firewall object (one write has no state
        # between before and after; a no-op reads nothing).
        observed = replace(observed, firewall=read_firewall(cluster, calico=settings.calico))
    return decide(intent, observed, settings, diffed=diffed)


def safe_order(plan: Plan, observed: Observed, settings: Settings) -> tuple[Plan, aset.Inventory]:
    """The plan in a firewall-safe order checked on the connectivity model (plan/safe.py),
    when the start is known, and the kinds a make-before-break bridge adds for its lifetime
    (recorded in the ApplySet parent while it exists, so a run that stops half-way still
    prunes it later)."""
    firewall = observed.firewall
    if firewall is None or not safety.has_states_between(plan.changes):
        return plan, aset.Inventory()
    around = surroundings(firewall.objects, firewall.facts, observed.facts.flavour, settings)
    found = safety.safe_order(plan.changes, around)
    made = [c.desired.body for c in found.changes if c.desired and safety.is_bridge(c.ref)]
    bridge = aset.Inventory(frozenset(group_kind_of(body) for body in made))
    return replace(plan, changes=found.changes, order=found.summary), bridge


def surroundings(
    start: Sequence[Resource], facts: ConnectivityFacts, flavour: Flavour, settings: Settings
) -> safety.Surroundings:
    def prepare(resource: Resource) -> Resource:
        (made,) = _desired([resource], flavour, settings.applyset)
        return Resource(resource.ref, made.body, resource.origin)

    model = ConnectivityFlavour(settings.calico)
    name = safety.bridge_name(settings.applyset.id)
    return safety.Surroundings(
        tuple(start), facts, flavour=model, prepare=prepare, bridge_tier=name
    )


def plan_observed(rendered: Rendered, observed: Observed, settings: Settings) -> Planned:
    return decide(intend(rendered, observed.facts, settings), observed, settings)


@dataclass(frozen=True, slots=True)
class Inventory:
    """Offline facts from files (`--inventory`): None where not given."""

    nodes: Sequence[generate.Node] | None = None
    namespaces: Sequence[generate.Namespace] | None = None
    pods: Sequence[Pod] | None = None
    service_accounts: Sequence[ServiceAccount] | None = None

    def kwargs(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "namespaces": self.namespaces,
            "pods": self.pods,
            "service_accounts": self.service_accounts,
        }

    def facts(self, calico: tuple[int, int]) -> Facts:
        return obs.offline_facts(calico, **self.kwargs())


def plan_offline(
    rendered: Rendered,
    settings: Settings,
    *,
    nodes: Sequence[generate.Node] | None = None,
    namespaces: Sequence[generate.Namespace] | None = None,
    pods: Sequence[Pod] | None = None,
    service_accounts: Sequence[ServiceAccount] | None = None,
    start: Sequence[Resource] = (),
) -> Plan:
    """No cluster: what would be created in an empty cluster with Calico's CRDs. Templates
    expand over `nodes`/`namespaces` when given (from files), else each gets a note.
    ConnectivityChecks start from `start` (the base render, or an empty cluster)."""
    facts = Inventory(nodes, namespaces, pods, service_accounts).facts(settings.calico)
    return plan_observed(
        rendered, Observed(facts, firewall=offline_firewall(facts, start)), settings
    ).plan


def offline_firewall(facts: Facts, start: Sequence[Resource]) -> Firewall | None:
    """The checks' start offline: `start` over the inventory's facts; None without one."""
    if facts.nodes is None and facts.pods is None:
        return None
    inventory = ConnectivityFacts(
        nodes=facts.nodes or (),
        namespaces=facts.namespaces or (),
        pods=facts.pods or (),
        service_accounts=facts.service_accounts or (),
    )
    return Firewall(inventory, tuple(start))


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


@dataclass(frozen=True, slots=True)
class Diffed:
    """The three-way diff of an intent against what was observed, before any ordering."""

    plan: Plan
    live: Sequence[Live]


def diff(intent: Intent, observed: Observed, settings: Settings) -> Diffed:
    """The plan in kind order; needs no live firewall (the order and checks do)."""
    facts = observed.facts
    live = observed.objects.for_plan(
        intent.wanted.union(facts.recorded or aset.Inventory()), intent.desired
    )
    absent = namespaces.missing(
        facts, [d.resource for d in intent.desired], settings.applyset,
        create=settings.create_namespace,
    )  # fmt: skip
    made = make_plan(
        revision=intent.rendered.revision,
        desired=intent.desired,
        live=live,
        options=settings.options,
        target=facts.target,
        findings=(*intent.rendered.findings, *absent),
    )
    return Diffed(made, live)


def decide(
    intent: Intent, observed: Observed, settings: Settings, *, diffed: Diffed | None = None
) -> Planned:
    """The diff (made here unless given) ordered firewall-safe and checked."""
    facts = observed.facts
    recorded = facts.recorded
    diffed = diffed or diff(intent, observed, settings)
    result, live = diffed.plan, diffed.live
    resources = [d.resource for d in intent.desired]
    result, bridge = safe_order(result, observed, settings)
    result = check(result, intent.rendered.checks, observed, settings)
    final = intent.wanted.union(_kept(result, live))
    create = namespaces.to_create(facts, resources, settings.applyset)
    return Planned(
        result,
        facts.types,
        Inventories(recorded, final, bridge),
        facts.suspended,
        tuple(create) if settings.create_namespace else (),
        intent,
    )


def check(
    plan: Plan, checks: Sequence[ConnectivityCheck], observed: Observed, settings: Settings
) -> Plan:
    """Every ConnectivityCheck on every state the plan's apply passes through."""
    firewall = observed.firewall
    return with_checks(
        plan,
        checks,
        start=_with_origins(firewall.objects, plan) if firewall else None,
        facts=firewall.facts if firewall else None,
        flavour=ConnectivityFlavour(settings.calico),
        auto=auto_of(observed),
        skip=settings.skip_checks,
    )


def auto_of(observed: Observed) -> Auto:
    """Calico's automatic host endpoints setting of a state: its own KubeControllers-
    Configuration `default` if it holds one, else the cluster's."""
    live_kcc = observed.facts.kube_controllers
    return lambda resources: _auto(_repo_kcc(resources), live_kcc)


def worlds(observed: Observed, plans: Sequence[Plan], settings: Settings) -> list[World] | None:
    """What the connectivity engine sees in the start state (live, or the base render
    offline) and at the end of each plan. None when the firewall was not read (no
    ConnectivityCheck in the repo) or offline without an inventory."""
    firewall = observed.firewall
    if firewall is None:
        return None
    builder = WorldBuilder(firewall.facts, flavour=ConnectivityFlavour(settings.calico))
    auto = auto_of(observed)
    states: list[Sequence[Resource]] = [firewall.objects]
    states += [deque(steps(firewall.objects, p.changes), maxlen=1)[0].resources for p in plans]
    return [builder.build(state, auto=auto(state)) for state in states]


def _with_origins(live: Sequence[Resource], plan: Plan) -> list[Resource]:
    """Live objects the plan leaves unchanged, as the repo has them: the same object, with
    its file:line for the counterexamples that name it."""
    same = {identity(c.ref): c.desired for c in plan.changes if c.action is Action.UNCHANGED}
    return [same.get(identity(r.ref)) or r for r in live]


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
