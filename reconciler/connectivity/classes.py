"""Peers grouped into classes the policies cannot tell apart, so a diff or a map evaluates one
representative per class and stays exact.

Everything an evaluation reads about a peer is: which Matches (policy and rule selectors)
its endpoint satisfies, which mentioned CIDRs hold its address, its named ports, and its
node's host endpoint. Peers equal on all of that get equal verdicts. External addresses
are cut into atoms at every CIDR boundary either world mentions (a sweep, not sampling).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from reconciler.connectivity import addresses as addr
from reconciler.connectivity.flows import Peer, PeerKind, Placed, host_endpoint_of
from reconciler.connectivity.hops import Engine
from reconciler.connectivity.intervals import IntervalSet, Span
from reconciler.connectivity.rules import Policy, Side
from reconciler.connectivity.views import Match, View

_HIDDEN_PREFIXES = ("pcns.", "pcsa.", "projectcalico.org/")


@dataclass(frozen=True, slots=True)
class PeerClass:
    kind: PeerKind
    members: tuple[Placed, ...]  # pods or nodes; empty for addresses
    addresses: IntervalSet  # for an address class: the addresses it stands for
    label: str
    representative: Placed
    by_node: Mapping[str, tuple[Placed, ...]]  # up to two members per node

    @staticmethod
    def make(
        kind: PeerKind, members: Sequence[Placed], addresses: IntervalSet, label: str
    ) -> PeerClass:
        if members:
            rep = members[0]
        else:
            first = addresses.first()
            rep = Placed(Peer(PeerKind.CIDR, addr.show_address(first)), first)
        by_node: dict[str, tuple[Placed, ...]] = {}
        for m in members:
            if len(by_node.get(m.node, ())) < 2:
                by_node[m.node] = (*by_node.get(m.node, ()), m)
        return PeerClass(kind, tuple(members), addresses, label, rep, by_node)


def peer_classes(engines: Sequence[Engine]) -> list[PeerClass]:
    """Classes valid in every given world (base and head for a diff)."""
    index = _Index(engines)
    pods = _group(index.pods(), index.pod_signature)
    nodes = _group(index.nodes(), index.node_signature)
    out = [_pod_class(members) for members in pods]
    out += [_node_class(members) for members in nodes]
    out += [_address_class(a) for a in index.address_classes()]
    return out


def signatures(engines: Sequence[Engine], members: Iterable[Placed]) -> dict[Peer, int]:
    """The class of each given pod or node, as a number: members with equal numbers get
    equal verdicts (per topology). What peer_classes groups by, for a few members only."""
    index = _Index(engines)
    classes: dict[Hashable, int] = {}
    out: dict[Peer, int] = {}
    for member in members:
        if member.pod is not None:
            found: Hashable = ("pod", index.pod_signature(member))
        elif member.peer.kind is PeerKind.NODE:
            found = ("node", index.node_signature(member))
        else:
            continue
        out[member.peer] = classes.setdefault(found, len(classes))
    return out


def _group(
    members: Iterable[Placed], signature: Callable[[Placed], Hashable]
) -> list[list[Placed]]:
    groups: dict[Hashable, list[Placed]] = defaultdict(list)
    for member in members:
        groups[signature(member)].append(member)
    return list(groups.values())


class _Index:
    def __init__(self, engines: Sequence[Engine]) -> None:
        self.engines = engines
        self.matches = tuple(_all_matches(e.world.policies for e in engines))
        # Rule nets and network sets: what can tell two endpoint addresses apart (an
        # endpoint's own address only matters through the Matches on its view).
        self.cidrs = tuple(sorted(_all_cidrs(engines, hosts=False)))
        # ... and host endpoints' expectedIPs: what can tell two external addresses apart.
        self.boundaries = tuple(sorted(_all_cidrs(engines, hosts=True)))
        self._node_sigs: dict[str, Hashable] = {}

    def pods(self) -> list[Placed]:
        world = self.engines[0].world
        return [
            Placed(Peer(PeerKind.POD, p.name), p.addresses.first(), p.node, p) for p in world.pods
        ]

    def nodes(self) -> list[Placed]:
        world = self.engines[0].world
        known = (n for n in world.nodes.values() if n.address is not None)
        return [Placed(Peer(PeerKind.NODE, n.name), n.address or 0, n.name) for n in known]

    def cidr_signature(self, address: int) -> tuple[bool, ...]:
        return tuple(lo <= address <= hi for lo, hi in self.cidrs)

    def pod_signature(self, member: Placed) -> Hashable:
        pod = member.pod
        assert pod is not None
        return (
            pod.namespace,
            tuple(m.matches(pod) for m in self.matches),
            self.cidr_signature(member.address),
            pod.named_ports,
            self.node_signature_of(member.node),
        )

    def node_signature(self, member: Placed) -> Hashable:
        owners = [e.owners(member.address) for e in self.engines]
        seen = tuple(tuple(any(m.matches(v) for v in o) for m in self.matches) for o in owners)
        return (self.node_signature_of(member.node), self.cidr_signature(member.address), seen)

    def node_signature_of(self, node: str) -> Hashable:
        if node not in self._node_sigs:
            self._node_sigs[node] = tuple(self._hep_signature(e, node) for e in self.engines)
        return self._node_sigs[node]

    def _hep_signature(self, engine: Engine, node: str) -> Hashable:
        chosen = host_endpoint_of(engine, node)
        if not isinstance(chosen, View):
            return chosen is None
        matched = tuple(m.matches(chosen) for m in self.matches)
        return (matched, chosen.profiles, chosen.named_ports)

    def address_classes(self) -> list[IntervalSet]:
        spans: list[Span] = []
        for engine in self.engines:
            world = engine.world
            spans += (span for pod in world.pods for span in pod.addresses)
            spans += ((n.address, n.address) for n in world.nodes.values() if n.address is not None)
        taken = IntervalSet.of(spans)
        groups: dict[tuple[bool, ...], list[Span]] = defaultdict(list)
        for span in _atoms(self.boundaries, taken):
            groups[tuple(lo <= span[0] <= hi for lo, hi in self.boundaries)].append(span)
        return [IntervalSet.of(spans) for spans in groups.values()]


def _atoms(cidrs: Sequence[Span], taken: IntervalSet) -> list[Span]:
    """The address line cut at every CIDR boundary, less the endpoint addresses."""
    cuts = {0, 1 << 32, addr.V6_BASE}
    for lo, hi in cidrs:
        cuts.update((lo, hi + 1))
    edges = sorted(cuts | {addr.V6_BASE + (1 << 128)})
    out: list[Span] = []
    for lo, nxt in itertools.pairwise(edges):
        if lo >= 1 << 32 and lo < addr.V6_BASE:
            continue  # the gap between the IPv4 and IPv6 lines
        free = IntervalSet(((lo, nxt - 1),)) - taken
        out += free.spans
    return out


def _all_matches(worlds_policies: Iterable[Sequence[Policy]]) -> set[Match]:
    found: set[Match] = set()
    for policies in worlds_policies:
        for policy in policies:
            found.add(policy.selects)
            for rule in (*policy.ingress, *policy.egress):
                found.update(_side_matches(rule.source) + _side_matches(rule.destination))
    return found


def _side_matches(side: Side) -> list[Match]:
    return [m for m in (side.match, side.not_match) if m is not None]


def _all_cidrs(engines: Sequence[Engine], *, hosts: bool) -> set[Span]:
    found: set[Span] = set()
    for engine in engines:
        world = engine.world
        for view in (*world.sets, *(world.hosts if hosts else ())):
            found.update(view.addresses.spans)
        for policy in world.policies:
            for rule in (*policy.ingress, *policy.egress):
                for side in (rule.source, rule.destination):
                    for nets in (side.nets, side.not_nets):
                        found.update(nets.spans if nets is not None else ())
    return found


# --- labels for people -----------------------------------------------------------------------


def _pod_class(members: list[Placed]) -> PeerClass:
    pods = [m.pod for m in members if m.pod is not None]
    namespace = pods[0].namespace
    common = _common_labels([p.labels for p in pods])
    shown = ",".join(f"{k}={v}" if v else k for k, v in sorted(common.items()))
    names = _names([p.name.split("/", 1)[1] for p in pods])
    what = f"pods {shown} in ns {namespace}" if shown else f"pods in ns {namespace}"
    return PeerClass.make(PeerKind.POD, members, IntervalSet(), f"{what} ({names})")


def _node_class(members: list[Placed]) -> PeerClass:
    names = _names([m.node for m in members])
    return PeerClass.make(PeerKind.NODE, members, IntervalSet(), f"node {names}")


def _address_class(addresses: IntervalSet) -> PeerClass:
    label = f"addresses {addr.show_addresses(addresses)}"
    return PeerClass.make(PeerKind.CIDR, (), addresses, label)


def _common_labels(labels: Sequence[Mapping[str, str]]) -> dict[str, str]:
    items: set[tuple[str, str]] | None = None
    for one in labels:
        mine = {(k, v) for k, v in one.items() if not k.startswith(_HIDDEN_PREFIXES)}
        items = mine if items is None else items & mine
    return dict(items or ())


def _names(names: list[str], limit: int = 3) -> str:
    more = f" +{len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
