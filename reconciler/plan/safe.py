"""A firewall-safe apply order, checked on the connectivity model (design invariant 4).

The invariant: no state an apply passes through denies a flow that both the state before
and the state after allow. The kind order (order.py) is where we start, but in Calico any
policy that selects an endpoint isolates it, so single writes can blink a flow that two
new policies allow only together. So, on the model (reconciler.connectivity):

1. the kind order, if none of its intermediate states denies a flow to keep;
2. else the first order of single writes that keeps them (a greedy search, small plans);
3. else make-before-break: a bridge (bridge.py) written first and removed last, in a tier
   ahead of every other, allows exactly the flows to keep while the rest is written.

Only the class pairs a written object can touch are evaluated. Every state is checked
while that costs at most BUDGET pair evaluations (and up to CHECK_LIMIT writes); a larger
plan is bridged without enumerating its states, safe by the bridge's construction.
Whatever blinks anyway is reported, never silent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from reconciler.connectivity import Engine, Facts, Pairwise, World, peer_classes
from reconciler.connectivity import Flavour as ModelFlavour
from reconciler.connectivity.classes import PeerClass
from reconciler.connectivity.compile import CompileError
from reconciler.connectivity.flows import PeerKind, Placed
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.pairwise import Cell, Verdicts, representatives
from reconciler.connectivity.world import WorldBuilder
from reconciler.generate.autohep import AutoHostEndpoints
from reconciler.model import Action, Change, ObjectRef, Order, Origin, Resource
from reconciler.plan import bridge
from reconciler.plan.order import in_apply_order
from reconciler.plan.steps import Identity, identity

_LIVE = Origin("(live)")
CHECK_LIMIT = 32  # firewall writes whose every intermediate state we evaluate
BRIDGE_MAX_BYTES = 1_000_000  # a bridge policy larger than this is not written
BUDGET = 150_000  # class pairs evaluated on the model per plan, at most (a few seconds)
SEARCH_LIMIT = 10  # firewall writes we try to reorder (a greedy, quadratic search)
# Policies x endpoints the model may match before any state is evaluated (finding the
# class pairs a write touches, a few seconds); above it the order is not evaluated at all.
MODEL_LIMIT = 5_000_000
FIREWALL_KINDS = frozenset(
    {"GlobalNetworkPolicy", "NetworkPolicy", "HostEndpoint", "GlobalNetworkSet", "NetworkSet"}
    | {"Tier", "StagedGlobalNetworkPolicy", "StagedNetworkPolicy"}
)
# Kinds no selector reads: their labels and annotations decide no verdict.
_UNSELECTED = FIREWALL_KINDS - {"HostEndpoint", "GlobalNetworkSet", "NetworkSet"}
_POLICIES = _UNSELECTED - {"Tier"}
Key = Identity
Matrix = dict[Cell, Verdicts]


@dataclass(frozen=True, slots=True)
class Surroundings:
    """What the plan is applied to: the firewall in force now and the endpoints it acts on."""

    start: tuple[Resource, ...]  # every firewall object in force (ours or not), cluster form
    facts: Facts
    flavour: ModelFlavour = field(default_factory=ModelFlavour)
    auto: AutoHostEndpoints | None = None
    prepare: Callable[[Resource], Resource] = lambda r: r  # a bridge object, ready to apply
    bridge_tier: str = bridge.tier_name("")  # the bridge's name (one per ApplySet)


@dataclass(frozen=True, slots=True)
class Blink:
    """Flows both ends allow that one intermediate state denies."""

    cell: Cell
    src: str
    dst: str
    ports: str
    step: str  # "after create GlobalNetworkPolicy/allow-web"

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst} {self.ports} denied {self.step}"


@dataclass(frozen=True, slots=True)
class Ordered:
    changes: tuple[Change, ...]  # the apply order, bridge writes included
    method: str  # "kind order", "reordered", "bridged", "unchecked"
    blinks: tuple[Blink, ...] = ()  # what still blinks (empty when the order is safe)
    states: int = 0  # intermediate states evaluated on the model
    note: str = ""
    kept: tuple[str, ...] = ()  # the flows the bridge keeps, for people

    @property
    def bridged(self) -> bool:
        return self.method == "bridged"

    @property
    def summary(self) -> Order:
        blinks = tuple(str(b) for b in self.blinks)
        # States were walked one write at a time: concurrent writes would make others.
        one_by_one = self.states > 0
        return Order(self.method, blinks, self.states, self.note, self.kept, one_by_one)


def has_states_between(changes: Iterable[Change]) -> bool:
    """More than one firewall write that can change a verdict: some state lies between."""
    return sum(1 for c in changes if acts(c)) > 1


def acts(change: Change) -> bool:
    """A write that can change some verdict. An update whose every difference is metadata
    no rule reads (any annotation; the labels of a policy or tier, which no selector
    matches) cannot: a relabelled policy is the same firewall."""
    if not change.action.writes or change.ref.kind not in FIREWALL_KINDS:
        return False
    if change.action is Action.PRUNE or change.live is None or not change.diff:
        return True
    return not all(_inert(d.path, change.ref.kind) for d in change.diff)


def _inert(path: str, kind: str) -> bool:
    return path.startswith("metadata.annotations") or (
        kind in _UNSELECTED and path.startswith("metadata.labels")
    )


def is_bridge(ref: ObjectRef) -> bool:
    return bridge.is_bridge(ref)


def bridge_name(applyset_id: str) -> str:
    return bridge.tier_name(applyset_id)


def safe_order(changes: Sequence[Change], around: Surroundings, *, reorder: bool = True) -> Ordered:
    """`reorder=False` bridges wherever the kind order blinks, without searching."""
    ordered = in_apply_order(changes)
    writes = [c for c in ordered if acts(c)]
    if not writes:
        return Ordered(ordered, "kind order", note="no write changes a firewall verdict")
    try:
        return _order(ordered, writes, around, reorder=reorder)
    except CompileError as exc:
        return Ordered(ordered, "unchecked", note=f"not evaluated: {exc}")


def _order(
    ordered: tuple[Change, ...], writes: list[Change], around: Surroundings, *, reorder: bool
) -> Ordered:
    if len(writes) == 1:
        return Ordered(
            ordered, "kind order", note="one write acts on the firewall: no state between"
        )
    if len(writes) > CHECK_LIMIT and not _firewall(around.start):
        # Nothing enforces yet, so everything is allowed now: the bridge is one Allow
        # rule, and no model evaluation is needed to build it.
        return _bridged(ordered, around, bridge.allow_all())
    size = _model_size(ordered, around)
    if size > MODEL_LIMIT:
        note = f"too large to evaluate: {size:,} policy-endpoint pairs (at most {MODEL_LIMIT:,})"
        return Ordered(ordered, "unchecked", note=note)
    if len(writes) > CHECK_LIMIT:
        return _bridged(ordered, around, None)
    walk = _Walk(around, ordered)
    if walk.size * len(writes) > BUDGET:  # too costly to walk: bridge what may change
        return _bridged(ordered, around, bridge.rules_for(walk.keep, walk.classes))
    return _walked(ordered, writes, around, walk, reorder=reorder)


def _walked(
    ordered: tuple[Change, ...],
    writes: list[Change],
    around: Surroundings,
    walk: _Walk,
    *,
    reorder: bool,
) -> Ordered:
    blinks = walk.blinks(ordered)
    if not blinks:
        return Ordered(ordered, "kind order", states=walk.evaluated)
    search = reorder and len(writes) <= SEARCH_LIMIT and walk.size * len(writes) ** 2 <= BUDGET
    found = _search(walk, ordered, writes) if search else None
    if found is not None:
        return Ordered(found, "reordered", states=walk.evaluated)
    return _bridge_at_risk(ordered, around, walk, blinks)


def _bridge_at_risk(
    ordered: tuple[Change, ...], around: Surroundings, walk: _Walk, blinks: list[Blink]
) -> Ordered:
    """Bridge only the flows that blink. A flow the bridge itself disturbs (forwarded
    traffic loses its default allow once a forward tier exists) joins them, and the states
    are walked again; the bridge of every flow to keep is the last resort."""
    risk = {b.cell for b in blinks}
    kept = tuple(dict.fromkeys(f"{b.src} -> {b.dst} {b.ports}" for b in blinks))
    states = walk.evaluated
    for attempt in range(4):
        last = attempt == 3
        out = _bridged(
            ordered, around, bridge.rules_for(_only(walk.keep, risk, last), walk.classes)
        )
        if not out.bridged:
            return replace(out, blinks=tuple(blinks), states=states)
        check = _Walk(around, out.changes)
        left = check.blinks(out.changes)
        states += check.evaluated
        more = {walk.cell_of(check.classes, b.cell) for b in left} - risk - {None}
        if not left or not more or last:
            note = "the flows that blink in any order of single writes are bridged"
            return replace(out, blinks=tuple(left), states=states, note=note, kept=kept)
        risk |= more  # type: ignore[arg-type]
    raise AssertionError("unreachable: the last bridge returns")


def _model_size(ordered: Sequence[Change], around: Surroundings) -> int:
    """Policies (in force or written) times endpoints (pods, host endpoints, nodes)."""
    found = [*around.start, *_desired(ordered)]
    policies = sum(1 for r in found if r.ref.kind in _POLICIES)
    heps = sum(1 for r in found if r.ref.kind == "HostEndpoint")
    return policies * (len(around.facts.pods) + len(around.facts.nodes) + heps)


def _only(keep: dict[Cell, IntervalSet], cells: set[Cell], every: bool) -> dict[Cell, IntervalSet]:
    return keep if every else {c: v for c, v in keep.items() if c in cells}


def _bridged(
    ordered: tuple[Change, ...], around: Surroundings, rules: list[dict[str, object]] | None
) -> Ordered:
    if rules is None:  # too many writes to walk: keep what both ends allow, from two matrices
        ends = _Walk(around, ordered, states=False)
        rules = bridge.rules_for(ends.keep, ends.classes)
    desired = _desired(ordered)
    tiers = [r for r in (*around.start, *desired) if r.ref.kind == "Tier"]
    forward = any(bridge.forwards(r) for r in (*around.start, *desired))
    made = bridge.objects(rules, tiers, forward=forward, name=around.bridge_tier)
    if made is None:
        return Ordered(ordered, "unchecked", note=bridge.NO_TIER)
    size = len(json.dumps(made[1].body))
    if size > BRIDGE_MAX_BYTES:  # the API server refuses big objects (3 MiB in etcd)
        note = f"no bridge: it would be {size:,} bytes (at most {BRIDGE_MAX_BYTES:,})"
        return Ordered(ordered, "unchecked", note=note)
    up = tuple(_write(around.prepare(r)) for r in made)
    down = tuple(_prune(around.prepare(r)) for r in reversed(made))
    kept = tuple(c for c in ordered if not bridge.is_bridge(c.ref))  # a leftover is rewritten
    note = "safe by construction: every flow both states allow is bridged"
    return Ordered((*up, *kept, *down), "bridged", note=note)


def _search(walk: _Walk, ordered: tuple[Change, ...], writes: list[Change]) -> tuple[Change, ...]:
    """Greedy: at each point the first remaining write (in kind order) whose state keeps
    every flow; None when some point has no such write."""
    done: list[Change] = []
    left = list(writes)
    while left:
        pick = next((c for c in left if walk.keeps([*done, c])), None)
        if pick is None:
            return None  # type: ignore[return-value]
        done.append(pick)
        left.remove(pick)
    rest = [c for c in ordered if c not in writes]
    return (*done, *rest)


# --- the model's states ----------------------------------------------------------------


class _Walk:
    """States of the apply on the model: the flows to keep, and where a sequence blinks.

    Only the class pairs some written object can touch are evaluated: a policy acts on
    the hops of the endpoints it selects, a host endpoint on its node's. Every other pair
    reads the same policies in every state, so its verdict cannot change."""

    def __init__(
        self, around: Surroundings, ordered: Sequence[Change], *, states: bool = True
    ) -> None:
        self.around = around
        self.builder = WorldBuilder(around.facts, flavour=around.flavour)  # compiles once
        start = _index(around.start)
        end = _applied(start, ordered)
        worlds = [start, end]
        if states:  # classes must hold in every state we may evaluate, not only the ends
            worlds += [_applied(start, [c]) for c in ordered if acts(c)]
        self.start = start
        engines = [Engine(self._world(w)) for w in worlds]
        self.classes = peer_classes(engines)
        written = _written(ordered)
        every = any(k[1] in _EVERYTHING for k in written)
        touched = None if every else _touched(self.classes, engines[:2], self._world(written))
        # One pair at a time forgoes the matrix's sharing: worth it for a few pairs only.
        few = touched is not None and len(touched) < len(self.classes) ** 2 // 4
        self.cells = touched if few else None
        first = Pairwise(engines[0], self.classes)
        last = Pairwise(engines[1], self.classes, reuse=first)
        self._reuse = first
        before, after = self._matrix(first), self._matrix(last)
        # A flow between two address families cannot exist, whatever the model says of it.
        family = [bridge.families(c) for c in self.classes]
        self.keep = {
            c: bridge.bridgeable(v.allow & after[c].allow, family[c[0]] & family[c[1]])
            for c, v in before.items()
            if c in after and family[c[0]] & family[c[1]]
        }
        self.evaluated = 0

    def cell_of(self, classes: Sequence[PeerClass], cell: Cell) -> Cell | None:
        """The cell of ours holding another walk's cell (classes differ between walks)."""
        si, di, same = cell
        found = (self._class_of(classes[si]), self._class_of(classes[di]))
        return None if None in found else (found[0], found[1], same)  # type: ignore[return-value]

    def _class_of(self, other: PeerClass) -> int | None:
        rep = other.representative
        for i, mine in enumerate(self.classes):
            if other.kind is PeerKind.CIDR and mine.kind is PeerKind.CIDR:
                if rep.address in mine.addresses:
                    return i
            elif any(m.peer == rep.peer for m in mine.members):
                return i
        return None

    @property
    def size(self) -> int:
        """Class pairs one state costs."""
        return len(self.cells) if self.cells is not None else len(self.classes) ** 2

    def _matrix(self, pairs: Pairwise) -> Matrix:
        if self.cells is None:
            return pairs.matrix(self.classes)
        out: Matrix = {}
        for si, di, pair, same in self.cells:
            out[(si, di, same)] = pairs.verdicts(self.classes[si], self.classes[di], pair)
        return out

    def _world(self, state: dict[Key, Resource]) -> World:
        return self.builder.build(state.values(), auto=self.around.auto)

    def allowed(self, state: dict[Key, Resource]) -> Matrix:
        self.evaluated += 1
        pairs = Pairwise(Engine(self._world(state)), self.classes, reuse=self._reuse)
        return self._matrix(pairs)

    def missing(self, state: dict[Key, Resource]) -> list[tuple[Cell, str]]:
        now = self.allowed(state)
        out = []
        for cell, keep in self.keep.items():
            lost = keep - now[cell].allow if cell in now else keep
            if lost:
                out.append((cell, bridge.show(lost)))
        return out

    def keeps(self, sequence: Sequence[Change]) -> bool:
        return not self.missing(_applied(self.start, sequence))

    def blinks(self, sequence: Sequence[Change]) -> list[Blink]:
        out: list[Blink] = []
        state = dict(self.start)
        for i, change in enumerate(sequence[:-1]):
            state = _applied(state, [change])
            if not acts(change):
                continue
            step = _step(change, sequence[i + 1 :])
            for (si, di, same), ports in self.missing(state):
                src, dst = self.classes[si].label, self.classes[di].label
                out.append(Blink((si, di, same), src, dst, ports, step))
        return out


_Touched = list[tuple[int, int, tuple[Placed, Placed], bool | None]]
_EVERYTHING = frozenset({"Tier", "GlobalNetworkSet", "NetworkSet"})  # read by any rule


def _touched(classes: Sequence[PeerClass], ends: Sequence[Engine], written: World) -> _Touched:
    """The class pairs (with a member pair per topology) whose hops read a written object."""
    pods: set[str] = set()
    nodes = {h.node for h in written.hosts}
    for engine in ends:
        world = engine.world
        pods |= {v.name for p in written.policies for v in world.pods if p.selects.matches(v)}
        nodes |= {v.node for p in written.policies for v in world.hosts if p.selects.matches(v)}
    hit = {i for i, c in enumerate(classes) if _hit(c, pods, nodes)}
    out: _Touched = []
    for si, src in enumerate(classes):
        for di, dst in enumerate(classes):
            if (si in hit or di in hit) and not (src.kind is dst.kind is PeerKind.CIDR):
                out += [(si, di, (a, b), same) for a, b, same in representatives(src, dst)]
    return out


def _hit(peers: PeerClass, pods: set[str], nodes: set[str]) -> bool:
    rep = peers.representative
    if peers.kind is PeerKind.CIDR:
        return False
    return rep.node in nodes or (rep.pod is not None and rep.pod.name in pods)


def _written(changes: Iterable[Change]) -> dict[Key, Resource]:
    """Every version of every written object: what the apply touches."""
    out: dict[Key, Resource] = {}
    for i, change in enumerate(c for c in changes if c.action.writes):
        if not acts(change):
            continue
        if change.desired is not None:
            out[(*identity(change.desired.ref)[:3], f"{i}+")] = change.desired
        if change.live:
            live = Resource(change.ref, change.live, _LIVE)
            out[(*identity(live.ref)[:3], f"{i}-")] = live
    return out


def _step(change: Change, rest: Sequence[Change]) -> str:
    nxt = next((c for c in rest if c.action.writes), None)
    until = f" until {nxt.action} {nxt.ref}" if nxt else ""
    return f"after {change.action} {change.ref}{until}"


def _index(resources: Iterable[Resource]) -> dict[Key, Resource]:
    return {identity(r.ref): r for r in resources if r.ref.kind in FIREWALL_KINDS}


def _applied(state: dict[Key, Resource], changes: Iterable[Change]) -> dict[Key, Resource]:
    out = dict(state)
    for change in changes:
        if change.ref.kind not in FIREWALL_KINDS or not change.action.writes:
            continue
        key = identity(change.ref)
        if change.action is Action.PRUNE:
            out.pop(key, None)
        elif change.desired is not None:
            out[key] = change.desired
    return out


def _firewall(resources: Iterable[Resource]) -> bool:
    return any(r.ref.kind in FIREWALL_KINDS for r in resources)


def _desired(changes: Iterable[Change]) -> list[Resource]:
    return [c.desired for c in changes if c.desired is not None]


def _write(resource: Resource) -> Change:
    return Change(
        resource.ref, Action.CREATE, resource, None, reason=bridge.REASON_UP, transient=True
    )


def _prune(resource: Resource) -> Change:
    return Change(
        resource.ref, Action.PRUNE, None, resource.body, reason=bridge.REASON_DOWN, transient=True
    )
