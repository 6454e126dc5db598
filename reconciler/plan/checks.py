"""Every ConnectivityCheck over every state a plan passes through (plan/steps.py).

A check that holds at the start and breaks at any step fails, naming the step and a
counterexample. A check already broken at the start is judged on the desired state alone
(the plan may be the fix). Affordable on big plans: the states share compiled objects
(WorldBuilder), and a step is evaluated only for the checks it can touch, and then only
on the flows it can touch (a policy selecting none of the check's endpoints, a host
endpoint of another node, a network set away from its addresses change nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from reconciler.connectivity import CompileError, Facts, Flavour, World
from reconciler.connectivity import checks as cc
from reconciler.connectivity.flows import Placed
from reconciler.connectivity.hops import Engine
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.rules import Policy
from reconciler.connectivity.views import View
from reconciler.connectivity.world import WorldBuilder
from reconciler.generate.autohep import AutoHostEndpoints
from reconciler.manifests.conncheck import ConnectivityCheck, at
from reconciler.model import Change, CheckResult, Finding, Plan, Resource, Severity
from reconciler.plan.steps import Step, steps

_MIDWAY = {
    True: "holds in the desired state: only the apply order breaks it",
    False: "fails in the desired state too",
}
Auto = Callable[[Sequence[Resource]], AutoHostEndpoints | None]
_EVERYTHING = ("Tier", "KubeControllersConfiguration")  # can reorder or add any endpoint


@dataclass(frozen=True, slots=True)
class Checked:
    results: tuple[CheckResult, ...]
    findings: tuple[Finding, ...]  # checks that cannot be evaluated: a selector matching nothing
    states: int = 0  # states the apply passes through
    evaluated: int = 0  # (check, state) evaluations actually run


@dataclass(slots=True)
class _Check:
    check: ConnectivityCheck
    packets: IntervalSet
    src: cc.Resolved
    dst: cc.Resolved
    at_start: bool = True  # held at the start
    broken: tuple[str, cc.Counterexample] | None = None
    desired_holds: bool | None = None  # when it breaks mid-way: does the end state hold?
    hosts: tuple[View, ...] = ()  # host endpoints on its nodes, in the last world built
    nodes: frozenset[str] = field(default_factory=frozenset)
    pods: tuple[View, ...] = ()  # its pods, and the pods inside its CIDR ends
    addresses: IntervalSet = field(default_factory=IntervalSet)

    def watch(self, world: World) -> None:
        self.hosts = tuple(h for h in world.hosts if h.node in self.nodes)


def run_checks(
    checks: Sequence[ConnectivityCheck],
    *,
    start: Sequence[Resource],
    changes: Sequence[Change],
    facts: Facts,
    flavour: Flavour,
    auto: Auto,
    skip: frozenset[str] = frozenset(),
) -> Checked:
    if not checks:
        return Checked((), ())
    builder = WorldBuilder(facts, flavour=flavour)
    states = steps(start, changes)
    first = next(states)
    try:
        world = builder.build(first.resources, auto=auto(first.resources))
    except CompileError as err:
        return _unusable(checks, f"the start state cannot be evaluated: {err}", skip)
    prepared, findings = _prepare(checks, world)
    runner = _Runner(builder, auto, prepared)
    runner.run(world, first, states)
    vacuous = {f.ref.name: f for f in findings if f.ref is not None}
    results = tuple(
        runner.result(c, skip) if c.name in runner.by_name else _vacuous(c, vacuous[c.name], skip)
        for c in checks
    )
    return Checked(results, tuple(findings), runner.count, runner.evaluated)


def _vacuous(check: ConnectivityCheck, finding: Finding, skip: frozenset[str]) -> CheckResult:
    note = f"checks nothing: {finding.field} selects nothing in this cluster"
    return CheckResult(check.name, True, origin=check.origin, skipped=check.name in skip, note=note)


def _unusable(checks: Sequence[ConnectivityCheck], why: str, skip: frozenset[str]) -> Checked:
    results = tuple(
        CheckResult(c.name, False, "start", why, c.origin, skipped=c.name in skip) for c in checks
    )
    return Checked(results, ())


def _prepare(
    checks: Sequence[ConnectivityCheck], world: World
) -> tuple[list[_Check], list[Finding]]:
    """Resolve each check's ends. One that selects nothing checks nothing: a warning at its
    line, not a refusal, as a workload scaled to zero or not yet deployed (a firewall is
    often installed first) must not stop the firewall's reconciliation."""
    prepared, findings = [], []
    for check in checks:
        src, dst = cc.resolve(world, check.src), cc.resolve(world, check.dst)
        empty = [n for n, e in (("from", src), ("to", dst)) if e.empty]
        if empty:
            message = "selects nothing in this cluster: the check checks nothing until it does"
            origin = at(check, ("spec", empty[0]))
            findings.append(
                Finding(Severity.WARNING, message, origin, check.ref, f"spec.{empty[0]}")
            )
            continue
        world_pods = cc.restricted(world, src, dst).pods
        found = _Check(check, cc.packets_of(check), src, dst)
        found.pods = world_pods
        found.nodes = src.nodes | dst.nodes | {p.node for p in world_pods}
        found.addresses = src.addresses | dst.addresses | _addresses(src, dst, world_pods)
        found.watch(world)
        prepared.append(found)
    return prepared, findings


def _addresses(src: cc.Resolved, dst: cc.Resolved, pods: Iterable[View]) -> IntervalSet:
    points = [(m.address, m.address) for m in (*src.members, *dst.members)]
    return IntervalSet.of(points).__or__(IntervalSet.of(s for p in pods for s in p.addresses))


class _Runner:
    def __init__(self, builder: WorldBuilder, auto: Auto, checks: list[_Check]) -> None:
        self.builder = builder
        self.auto = auto
        self.checks = checks
        self.by_name = {c.check.name: c for c in checks}
        self.count = 0
        self.evaluated = 0
        self.engine: Engine | None = None  # the last one used: its work carries over

    def run(self, world: World, first: Step, rest: Iterable[Step]) -> None:
        for check in self.checks:
            check.at_start = self._evaluate(world, check, None) is None
        last: Step = first
        for step in rest:
            last = step
            self.count += 1
            self._step(step)
        self._final(last)

    def _step(self, step: Step) -> None:
        live = [c for c in self.checks if c.at_start and c.broken is None]
        touched = [(c, _touched(self.builder, c, step)) for c in live]
        touched = [(c, t) for c, t in touched if t is not False]
        if not touched:
            return
        world = self._world(step)
        if world is None:
            return
        for check, which in touched:
            found = self._evaluate(world, check, which if callable(which) else None)
            check.watch(world)
            if found is not None:
                check.broken = (step.label, found)

    def _final(self, last: Step) -> None:
        """Checks broken at the start are judged on the desired state alone; a check that
        breaks at the last write breaks in the desired state."""
        for check in self.checks:
            if check.broken is not None and check.broken[0] == last.label:
                check.broken = (f"desired state ({last.label})", check.broken[1])
        waiting = [c for c in self.checks if not c.at_start]
        midway = [c for c in self.checks if c.broken and not c.broken[0].startswith("desired")]
        world = self._world(last) if waiting or midway else None
        for check in waiting:
            found = self._evaluate(world, check, None) if world is not None else None
            check.broken = ("desired state", found) if found is not None else None
        for check in midway:
            if world is not None:
                check.desired_holds = self._evaluate(world, check, None) is None

    def _world(self, step: Step) -> World | None:
        try:
            return self.builder.build(step.resources, auto=self.auto(step.resources))
        except CompileError:
            return None  # an object the API server would refuse: its dry-run says so

    def _evaluate(
        self, world: World, check: _Check, touched: Callable[[Placed], bool] | None
    ) -> cc.Counterexample | None:
        self.evaluated += 1
        engine = Engine(cc.restricted(world, check.src, check.dst))
        if self.engine is not None:
            engine.reuse(self.engine)
        self.engine = engine
        return cc.failure_on(
            engine, check.check, check.packets, check.src, check.dst, touched=touched
        )

    def result(self, check: ConnectivityCheck, skip: frozenset[str]) -> CheckResult:
        found = self.by_name[check.name]
        skipped = check.name in skip
        if found.broken is None:
            note = "" if found.at_start else "broken before this plan; holds once it is applied"
            return CheckResult(check.name, True, origin=check.origin, skipped=skipped, note=note)
        state, example = found.broken
        note = "" if found.at_start else "already broken before this plan"
        if found.desired_holds is not None:
            note = _MIDWAY[found.desired_holds]
        return CheckResult(check.name, False, state, str(example), check.origin, skipped, note)


# --- which flows a step can touch ------------------------------------------------------


def _touched(builder: WorldBuilder, check: _Check, step: Step) -> bool | Callable[[Placed], bool]:
    """False: nothing of the check; True: anything; else which of its ends. A step that
    does not say what it changed may have changed anything."""
    if not step.changed:
        return True
    nodes: set[str] = set()
    pods: set[str] = set()
    for before, after in step.changed:
        for resource in (before, after):
            if resource is None:
                continue
            found = _reach(builder, check, resource, nodes, pods)
            if found:
                return True
    if not nodes and not pods:
        return False
    return lambda p: p.node in nodes or (p.pod is not None and p.pod.name in pods)


def _reach(
    builder: WorldBuilder, check: _Check, resource: Resource, nodes: set[str], pods: set[str]
) -> bool:
    """Adds the check's nodes and pods `resource` acts on; True when it may act on any."""
    if resource.ref.kind in _EVERYTHING:
        return True
    try:
        compiled = builder.compiled(resource)
    except CompileError:
        return True
    if isinstance(compiled, Policy):
        pods.update(p.name for p in check.pods if compiled.selects.matches(p))
        nodes.update(h.node for h in check.hosts if compiled.selects.matches(h))
        return False
    if isinstance(compiled, View):
        if compiled.addresses & check.addresses:
            return True  # a selector may now see these addresses otherwise
        if compiled.node in check.nodes:
            nodes.add(compiled.node)
    return False


def with_checks(
    plan: Plan,
    checks: Sequence[ConnectivityCheck],
    *,
    start: Sequence[Resource] | None,
    facts: Facts | None,
    flavour: Flavour,
    auto: Auto,
    skip: frozenset[str] = frozenset(),
) -> Plan:
    """The plan with every check's result, and an error for each check that cannot be
    evaluated. `facts` None: no inventory (offline without --inventory), nothing to
    evaluate on; `start` None: the start is unknown, an empty cluster stands in."""
    if not checks:
        return plan
    if facts is None:
        note = "not evaluated: no inventory (pass --inventory FILE offline)"
        results = tuple(
            CheckResult(c.name, True, origin=c.origin, skipped=c.name in skip, note=note)
            for c in checks
        )
        return replace(plan, checks=results)
    checked = run_checks(
        checks,
        start=start or (),
        changes=plan.changes,
        facts=facts,
        flavour=flavour,
        auto=auto,
        skip=skip,
    )
    return replace(plan, checks=checked.results, findings=(*plan.findings, *checked.findings))
