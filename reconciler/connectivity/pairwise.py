"""Every flow between peer classes of one world, fast: hop results are shared by groups.

A hop reads a flow only through its rules: whether the source and the destination match
each rule's source and destination sides (and IP version, and the destination's named
ports). So for each hop, peer classes fall into a few groups that the hop cannot tell
apart; the hop is evaluated once per (source group, destination group), on all packets
at once. A pair's verdict is then the intersection of its hops' cached results.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from reconciler.connectivity import addresses as addr
from reconciler.connectivity.classes import PeerClass
from reconciler.connectivity.flows import (
    Hop,
    HopKind,
    Placed,
    Route,
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


_WORKLOAD = {HopKind.EGRESS: Direction.EGRESS, HopKind.INGRESS: Direction.INGRESS}


class Pairwise:
    def __init__(self, engine: Engine, classes: Sequence[PeerClass]) -> None:
        self.engine = engine
        self.index = {c.label: i for i, c in enumerate(classes)}
        self.reps = [c.representative for c in classes]
        self.owners = [engine.owners(r.address) for r in self.reps]
        self._bits: dict[Side, int] = {}
        self._groups: dict[tuple[tuple[str, str], str], list[Hashable]] = {}
        self._hops: dict[tuple[object, ...], Verdicts] = {}
        self._routes: dict[tuple[object, ...], Verdicts] = {}

    def verdicts(self, src: PeerClass, dst: PeerClass, pair: tuple[Placed, Placed]) -> Verdicts:
        si, di = self.index[src.label], self.index[dst.label]
        found = routes(self.engine, *pair)
        keys = tuple(tuple(self._hop_key(h, si, di) for h in r.hops) for r in found)
        if keys not in self._routes:
            self._routes[keys] = self._combine(found, keys, pair)
        return self._routes[keys]

    def _combine(
        self,
        found: Sequence[Route],
        keys: tuple[tuple[tuple[object, ...], ...], ...],
        pair: tuple[Placed, Placed],
    ) -> Verdicts:
        allow, deny = ALL_PACKETS, ALL_PACKETS
        for route, route_keys in zip(found, keys, strict=True):
            r_allow, r_deny = ALL_PACKETS, IntervalSet()
            for hop, key in zip(route.hops, route_keys, strict=True):
                one = self._hop(hop, key, pair)
                r_allow, r_deny = r_allow & one.allow, r_deny | one.deny
            allow, deny = allow & r_allow, deny & r_deny
        return Verdicts(allow, deny)

    def _hop(self, hop: Hop, key: tuple[object, ...], pair: tuple[Placed, Placed]) -> Verdicts:
        if key not in self._hops:
            outcome = run_hop(self.engine, hop, ends_of(self.engine, *pair), ALL_PACKETS)
            self._hops[key] = Verdicts(outcome.allow, outcome.deny)
        return self._hops[key]

    def _hop_key(self, hop: Hop, si: int, di: int) -> tuple[object, ...]:
        return (hop.key, self._group(hop, "src")[si], self._group(hop, "dst")[di])

    # --- groups ---------------------------------------------------------------------------

    def _group(self, hop: Hop, which: str) -> list[Hashable]:
        cache = (hop.key, which)
        if cache not in self._groups:
            self._groups[cache] = self._grouping(self._rules(hop), which)
        return self._groups[cache]

    def _grouping(self, rules: Sequence[Rule], which: str) -> list[Hashable]:
        sides = {r.source if which == "src" else r.destination for r in rules}
        bits = [self._side_bits(s) for s in sides if s != Side()]
        keys: list[Hashable] = [tuple((b >> i) & 1 for b in bits) for i in range(len(self.reps))]
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
        forward = (p for p in self.engine.world.policies if p.apply_on_forward)
        return [r for p in forward if p.selects.matches(hep) for r in (*p.ingress, *p.egress)]
