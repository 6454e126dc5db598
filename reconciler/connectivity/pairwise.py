"""Every flow between peer classes of one world, fast: hop results are shared by groups.

A hop reads a flow only through its rules: whether the source and the destination match
each rule's source and destination sides (and IP version, and the destination's named
ports). So for each hop, peer classes fall into a few groups that the hop cannot tell
apart; the hop is evaluated once per (source group, destination group), on all packets
at once. A pair's verdict is then the intersection of its hops' cached results.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from reconciler.connectivity import addresses as addr
from reconciler.connectivity.classes import PeerClass
from reconciler.connectivity.flows import (
    Hop,
    HopKind,
    PeerKind,
    Placed,
    ends_of,
    host_endpoint_of,
    routes,
    run_hop,
)
from reconciler.connectivity.hops import Engine
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.packets import ALL_PACKETS
from reconciler.connectivity.rules import Direction, Rule, Side
from reconciler.connectivity.views import View


@dataclass(frozen=True, slots=True)
class Verdicts:
    """All packets of one flow, split three ways."""

    allow: IntervalSet
    deny: IntervalSet

    @property
    def unknown(self) -> IntervalSet:
        return ALL_PACKETS - self.allow - self.deny


Cell = tuple[int, int, bool | None]  # source class, destination class, same node
_Part = tuple[int, Hop, list[Hashable], list[Hashable]]  # hop id, hop, its groupings
_Compiled = tuple[tuple[_Part, ...], ...]
_WORKLOAD = {HopKind.EGRESS: Direction.EGRESS, HopKind.INGRESS: Direction.INGRESS}


class Pairwise:
    def __init__(
        self, engine: Engine, classes: Sequence[PeerClass], *, reuse: Pairwise | None = None
    ) -> None:
        """`reuse`: the other world of a diff, whose hop results this one takes over for
        every hop that reads the same policies and endpoints in both worlds."""
        self.engine = engine
        self.reuse = reuse if reuse is not None and _same_endpoints(engine, reuse.engine) else None
        self._stable: dict[tuple[str, str], bool] = {}
        self.index = {c.label: i for i, c in enumerate(classes)}
        self.reps = [c.representative for c in classes]
        self.owners = [engine.owners(r.address) for r in self.reps]
        # A side's bits depend only on the side and the endpoints: shared with `reuse`.
        self._bits: dict[Side, int] = self.reuse._bits if self.reuse else {}
        self._groups: dict[tuple[tuple[str, str], str], list[Hashable]] = {}
        self._hops: dict[tuple[int, Hashable, Hashable], Verdicts] = {}
        self._combined: dict[tuple[tuple[int, ...], ...], Verdicts] = {}
        self._interned: dict[Verdicts, Verdicts] = {}
        self._routes_of: dict[tuple[str, str], _Compiled] = {}
        self._hop_ids: dict[tuple[str, str], int] = reuse._hop_ids if reuse else {}
        self._parts: dict[tuple[str, str], _Part] = {}

    def matrix(self, classes: Sequence[PeerClass]) -> dict[Cell, Verdicts]:
        """Every pair of classes (by index) and topology: same node, across nodes, or None
        where it does not matter. Address classes share their routes, so they are grouped
        by what each route's hops can tell apart before anything is evaluated."""
        out: dict[Cell, Verdicts] = {}
        ends = [i for i, c in enumerate(classes) if c.kind is not PeerKind.CIDR]
        addresses = [i for i, c in enumerate(classes) if c.kind is PeerKind.CIDR]
        for si in ends:
            for di in ends:
                src, dst = classes[si], classes[di]
                pods = src.kind is dst.kind is PeerKind.POD
                for a, b, same in representatives(src, dst):
                    compiled = self._pod_routes(a, b) if pods else self._compiled(src, dst, (a, b))
                    out[(si, di, same)] = self._evaluate(compiled, si, di, (a, b))
        for i in ends:
            self._with_addresses(classes, i, addresses, out)
        return out

    def _with_addresses(
        self, classes: Sequence[PeerClass], i: int, addresses: list[int], out: dict[Cell, Verdicts]
    ) -> None:
        if not addresses:
            return
        one = classes[i]
        for outbound in (True, False):
            other = classes[addresses[0]]
            pair = (one.representative, other.representative)
            pair = pair if outbound else (pair[1], pair[0])
            compiled = self._compiled(*((one, other) if outbound else (other, one)), pair)
            groups: dict[tuple[object, ...], list[int]] = defaultdict(list)
            for j in addresses:
                si, di = (i, j) if outbound else (j, i)
                groups[_key(compiled, si, di)].append(j)
            for members in groups.values():
                j = members[0]
                src, dst = (one, classes[j]) if outbound else (classes[j], one)
                found = self.verdicts(src, dst, (src.representative, dst.representative))
                for j in members:
                    out[(i, j, None) if outbound else (j, i, None)] = found

    def verdicts(self, src: PeerClass, dst: PeerClass, pair: tuple[Placed, Placed]) -> Verdicts:
        si, di = self.index[src.label], self.index[dst.label]
        return self._evaluate(self._compiled(src, dst, pair), si, di, pair)

    def _evaluate(
        self, compiled: _Compiled, si: int, di: int, pair: tuple[Placed, Placed]
    ) -> Verdicts:
        hops = tuple(
            tuple(self._hop(hop, (h, sg[si], dg[di]), pair) for h, hop, sg, dg in route)
            for route in compiled
        )
        ids = tuple(tuple(map(id, route)) for route in hops)
        found = self._combined.get(ids)
        if found is None:
            found = self._combined[ids] = _combine(hops)
        return found

    def _compiled(self, src: PeerClass, dst: PeerClass, pair: tuple[Placed, Placed]) -> _Compiled:
        """The routes of a pair with each hop's groupings; shared by every address class."""
        a, b = pair
        cache = (
            str(a.peer) if src.kind is not PeerKind.CIDR else "*",
            str(b.peer) if dst.kind is not PeerKind.CIDR else "*",
        )
        found = self._routes_of.get(cache)
        if found is None:
            found = tuple(
                tuple(
                    (self._hop_id(h), h, self._group(h, "src"), self._group(h, "dst"))
                    for h in route.hops
                )
                for route in routes(self.engine, a, b)
            )
            self._routes_of[cache] = found
        return found

    def _pod_routes(self, a: Placed, b: Placed) -> _Compiled:
        """flows.routes for two pods, assembled from per-hop parts cached across pairs."""
        egress = self._part(HopKind.EGRESS, a.node, a.pod)
        ingress = self._part(HopKind.INGRESS, b.node, b.pod)
        if a.node == b.node:
            return ((egress, ingress),)
        out = self._part(HopKind.FORWARD_OUT, a.node)
        into = self._part(HopKind.FORWARD_IN, b.node)
        return ((egress, out, into, ingress), (egress, ingress))

    def _part(self, kind: HopKind, node: str, pod: View | None = None) -> _Part:
        key = (str(kind), pod.name if pod else node)  # == Hop.key, without building the Hop
        found = self._parts.get(key)
        if found is None:
            hop = Hop(kind, node, pod)
            found = (self._hop_id(hop), hop, self._group(hop, "src"), self._group(hop, "dst"))
            self._parts[key] = found
        return found

    def _hop_id(self, hop: Hop) -> int:
        return self._hop_ids.setdefault(hop.key, len(self._hop_ids))

    def _hop(
        self, hop: Hop, key: tuple[int, Hashable, Hashable], pair: tuple[Placed, Placed]
    ) -> Verdicts:
        found = self._hops.get(key)
        if found is None and self.reuse is not None and self._reads_the_same(hop):
            found = self.reuse._hops.get(key)
        if found is None:
            outcome = run_hop(self.engine, hop, ends_of(self.engine, *pair), ALL_PACKETS)
            made = Verdicts(outcome.allow, outcome.deny)
            found = self._hops[key] = self._interned.setdefault(made, made)
        return found

    def _reads_the_same(self, hop: Hop) -> bool:
        if hop.key not in self._stable:
            assert self.reuse is not None
            self._stable[hop.key] = _inputs(self.engine, hop) == _inputs(self.reuse.engine, hop)
        return self._stable[hop.key]

    # --- groups ---------------------------------------------------------------------------

    def _group(self, hop: Hop, which: str) -> list[Hashable]:
        cache = (hop.key, which)
        if cache not in self._groups:
            if self.reuse is not None and self._reads_the_same(hop):
                self._groups[cache] = self.reuse._group(hop, which)
            else:
                self._groups[cache] = self._grouping(self._rules(hop), which)
        return self._groups[cache]

    def _grouping(self, rules: Sequence[Rule], which: str) -> list[Hashable]:
        sides = {r.source if which == "src" else r.destination for r in rules}
        codes = [0] * len(self.reps)
        for j, side in enumerate(s for s in sides if s != Side()):
            for i in _members(self._side_bits(side)):
                codes[i] |= 1 << j
        keys: list[Hashable] = list(codes)
        if which == "src" and any(r.ip_version for r in rules):
            keys = [(k, addr.version(r.address)) for k, r in zip(keys, self.reps, strict=True)]
        if which == "dst" and any(r.named.names or r.not_named.names for r in rules):
            keys = [(k, self._named(i)) for i, k in enumerate(keys)]
        return keys

    def _named(self, i: int) -> Hashable:
        rep = self.reps[i]
        if rep.pod is not None:
            return rep.pod.named_ports
        chosen = host_endpoint_of(self.engine, rep.node) if rep.node else None
        return chosen.named_ports if isinstance(chosen, View) else ()

    def _side_bits(self, side: Side) -> int:
        if side not in self._bits:
            found = 0
            for i, rep in enumerate(self.reps):
                if side.matches(rep.address, self.owners[i]):
                    found |= 1 << i
            self._bits[side] = found
        return self._bits[side]

    def _rules(self, hop: Hop) -> list[Rule]:
        """Every rule the hop may read (more is safe: groups only get finer)."""
        if hop.pod is not None:
            direction = _WORKLOAD[hop.kind]
            governing = self.engine.governing(hop.pod, direction, host=False)
            return [r for p in governing for r in p.rules(direction)]
        if hop.kind in (HopKind.OWN_HOST, HopKind.LOCAL_POD):
            return []
        chosen = host_endpoint_of(self.engine, hop.node)
        if not isinstance(chosen, View):
            return []
        return [
            r
            for direction in Direction
            for p in self.engine.governing(chosen, direction, host=True)
            for r in p.rules(direction)
        ] + self._forward_rules(chosen)

    def _forward_rules(self, hep: View) -> list[Rule]:
        return [r for p in self.engine.forwarding(hep) for r in (*p.ingress, *p.egress)]


def _combine(routes_: tuple[tuple[Verdicts, ...], ...]) -> Verdicts:
    """Hops in a row: allowed where all allow, denied where any denies; routes the repository
    cannot choose between: decided only where they agree."""
    allow, deny = ALL_PACKETS, ALL_PACKETS
    for hops in routes_:
        r_allow, r_deny = ALL_PACKETS, IntervalSet()
        for one in hops:
            r_allow, r_deny = r_allow & one.allow, r_deny | one.deny
        allow, deny = allow & r_allow, deny & r_deny
    return Verdicts(allow, deny)


def _members(bits: int) -> list[int]:
    """Indices of the set bits, lowest first."""
    out = []
    while bits:
        low = bits & -bits
        out.append(low.bit_length() - 1)
        bits ^= low
    return out


def _key(
    compiled: _Compiled, si: int, di: int
) -> tuple[tuple[tuple[int, Hashable, Hashable], ...], ...]:
    return tuple(tuple((h, sg[si], dg[di]) for h, _, sg, dg in route) for route in compiled)


def representatives(src: PeerClass, dst: PeerClass) -> list[tuple[Placed, Placed, bool | None]]:
    """A member pair per topology that occurs: on one node, and on different nodes."""
    if not src.members or not dst.members:
        return [(src.representative, dst.representative, None)]
    out: list[tuple[Placed, Placed, bool | None]] = []
    if not (src.kind is dst.kind is PeerKind.NODE):
        same = _same_node(src, dst)
        if same is not None:
            out.append((*same, True))
    apart = _apart(src, dst)
    if apart is not None:
        out.append((*apart, False))
    return out


def _same_node(src: PeerClass, dst: PeerClass) -> tuple[Placed, Placed] | None:
    for node in src.by_node.keys() & dst.by_node.keys():
        pairs = ((a, b) for a in src.by_node[node] for b in dst.by_node[node] if a.peer != b.peer)
        found = next(pairs, None)
        if found is not None:
            return found
    return None


def _apart(src: PeerClass, dst: PeerClass) -> tuple[Placed, Placed] | None:
    a = src.representative
    b = next((m[0] for n, m in dst.by_node.items() if n != a.node), None)
    if b is not None:
        return a, b
    b = dst.representative  # every member of dst is on a's node
    a2 = next((m[0] for n, m in src.by_node.items() if n != b.node), None)
    return (a2, b) if a2 is not None else None


def _same_endpoints(one: Engine, other: Engine) -> bool:
    a, b = one.world, other.world
    return (a.pods, a.hosts, a.sets, a.tiers, a.flavour) == (
        b.pods,
        b.hosts,
        b.sets,
        b.tiers,
        b.flavour,
    )


def _inputs(engine: Engine, hop: Hop) -> tuple[object, ...]:
    """Everything a hop's evaluation reads besides the two ends: its policies, in order."""
    if hop.pod is not None:
        return engine.governing(hop.pod, _WORKLOAD[hop.kind], host=False)
    chosen = host_endpoint_of(engine, hop.node) if hop.node else None
    if not isinstance(chosen, View):
        return (chosen,)
    governing = tuple(engine.governing(chosen, d, host=True) for d in Direction)
    return (chosen.name, governing, engine.forwarding(chosen))
