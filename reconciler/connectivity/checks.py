"""ConnectivityCheck on one world: does every (from, to, port) flow get the expected verdict?

Exact, never sampled: pods and nodes are grouped by peer class (classes.py: members of a
class get equal verdicts, per topology), and a `{cidr}` end is cut into atoms at every
address boundary the world mentions (rule nets, network sets, host endpoints' expectedIPs,
pod addresses): addresses of one atom are equal to every rule and every selector, so one
address stands for the atom. Pairs of an endpoint with itself are skipped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace

from reconciler.connectivity import addresses as addr
from reconciler.connectivity.classes import signatures
from reconciler.connectivity.flows import Peer, PeerKind, Placed, flow
from reconciler.connectivity.hops import Engine
from reconciler.connectivity.intervals import EMPTY, IntervalSet, Span
from reconciler.connectivity.outcome import Outcome, Step, Verdict
from reconciler.connectivity.packets import parse_packet, show_packet
from reconciler.connectivity.views import View
from reconciler.connectivity.world import World
from reconciler.manifests.conncheck import ConnectivityCheck, EndKind, Ends, Expect


@dataclass(frozen=True, slots=True)
class Resolved:
    """One side of a check in one world: the endpoints, or the addresses, it stands for."""

    members: tuple[Placed, ...] = ()
    addresses: IntervalSet = EMPTY

    @property
    def empty(self) -> bool:
        return not self.members and not self.addresses

    @property
    def nodes(self) -> frozenset[str]:
        return frozenset(m.node for m in self.members if m.node)

    @property
    def pods(self) -> frozenset[str]:
        return frozenset(m.pod.name for m in self.members if m.pod is not None)


@dataclass(frozen=True, slots=True)
class Counterexample:
    src: str
    dst: str
    packet: int
    verdict: Verdict
    deciding: str  # "GlobalNetworkPolicy/x rule 0, hosts.yaml:31", or what decided otherwise

    def __str__(self) -> str:
        said = {Verdict.ALLOW: "allowed", Verdict.DENY: "denied"}.get(self.verdict, "")
        what = f"{said} by {self.deciding}" if said else f"not determined: {self.deciding}"
        return f"{self.src} -> {self.dst} {show_packet(self.packet)} {what}"


def packets_of(check: ConnectivityCheck) -> IntervalSet:
    """The check's ports as packets (the manifests validated their syntax)."""
    return IntervalSet.of((p, p) for p in (parse_packet(text) for text in check.ports))


def resolve(world: World, ends: Ends) -> Resolved:
    if ends.kind is EndKind.CIDR:
        return Resolved(addresses=IntervalSet((addr.network_span(ends.cidr),)))
    if ends.kind is EndKind.NODES:
        assert ends.node_selector is not None
        chosen = [
            n
            for n in world.nodes.values()
            if n.address is not None and ends.node_selector.matches(n.labels)
        ]
        placed = (Placed(Peer(PeerKind.NODE, n.name), n.address or 0, n.name) for n in chosen)
        return Resolved(members=tuple(placed))
    assert ends.namespace_selector is not None and ends.pod_selector is not None
    pods = [p for p in world.pods if _pod_matches(p, ends)]
    placed = (Placed(Peer(PeerKind.POD, p.name), p.addresses.first(), p.node, p) for p in pods)
    return Resolved(members=tuple(placed))


def _pod_matches(pod: View, ends: Ends) -> bool:
    assert ends.namespace_selector is not None and ends.pod_selector is not None
    return ends.namespace_selector.matches(pod.ns_labels or {}) and ends.pod_selector.matches(
        pod.labels
    )


def restricted(world: World, src: Resolved, dst: Resolved) -> World:
    """The world with only the pods and nodes these flows read: the check's own, their
    nodes (forward chains), and pods whose addresses lie in a CIDR end (their labels
    are what a rule selector sees for those addresses). Host endpoints and sets stay."""
    cidrs = src.addresses | dst.addresses
    names = src.pods | dst.pods
    pods = tuple(p for p in world.pods if p.name in names or p.addresses & cidrs)
    nodes = src.nodes | dst.nodes | {p.node for p in pods}
    kept = {n: info for n, info in world.nodes.items() if n in nodes}
    return replace(world, pods=pods, nodes=kept)


def failure(
    world: World,
    check: ConnectivityCheck,
    packets: IntervalSet,
    src: Resolved,
    dst: Resolved,
    *,
    touched: Callable[[Placed], bool] | None = None,
    previous: Engine | None = None,
) -> Counterexample | None:
    """The first flow that breaks the check in `world`, or None when it holds. `touched`:
    only pairs with an end it accepts are evaluated (the others are known unchanged).
    `previous`: an engine of an earlier state, whose work is reused where still valid."""
    engine = Engine(restricted(world, src, dst))
    if previous is not None:
        engine.reuse(previous)
    return failure_on(engine, check, packets, src, dst, touched=touched)


def failure_on(
    engine: Engine,
    check: ConnectivityCheck,
    packets: IntervalSet,
    src: Resolved,
    dst: Resolved,
    *,
    touched: Callable[[Placed], bool] | None = None,
) -> Counterexample | None:
    """`failure`, on an engine over the check's restricted world."""
    for a, b in _pairs(engine, src, dst, touched):
        outcome = flow(engine, a, b, packets).combined
        wanted = outcome.allow if check.expect is Expect.ALLOW else outcome.deny
        bad = packets - wanted
        if bad:
            return _counterexample(a, b, bad.first(), outcome)
    return None


_DIRECT = 256  # up to this many pairs, evaluating each is cheaper than classing them


def _pairs(
    engine: Engine, src: Resolved, dst: Resolved, touched: Callable[[Placed], bool] | None
) -> Iterable[tuple[Placed, Placed]]:
    """One concrete pair per (source class, destination class, same node) that occurs."""
    sources = list(src.members) + _atoms(engine.world, src.addresses)
    targets = list(dst.members) + _atoms(engine.world, dst.addresses)
    hit_src = [touched is None or touched(a) for a in sources]
    hit_dst = [touched is None or touched(b) for b in targets]
    count = sum(hit_src) * len(targets) + len(sources) * sum(hit_dst)
    if count <= _DIRECT:
        return [
            (a, b)
            for (a, ta), (b, tb) in itertools.product(
                zip(sources, hit_src, strict=True), zip(targets, hit_dst, strict=True)
            )
            if a.peer != b.peer and (ta or tb)
        ]
    members = (*src.members, *dst.members)
    numbers: dict[Hashable, int] = {}  # small numbers hash fast: keys are compared a lot
    keys = {p: numbers.setdefault(k, len(numbers)) for p, k in _node_keys(engine, members).items()}
    pods = [m for m in members if m.pod is not None]
    if pods:
        found = signatures([engine], pods)
        keys.update({p: numbers.setdefault(("pod", k), len(numbers)) for p, k in found.items()})
    seen: dict[Hashable, tuple[Placed, Placed]] = {}
    chosen_src = [a for a, hit in zip(sources, hit_src, strict=True) if hit]
    chosen_dst = [b for b, hit in zip(targets, hit_dst, strict=True) if hit]
    for left, right in ((chosen_src, targets), (sources, chosen_dst)):
        _representatives(_grouped(left, keys), _grouped(right, keys), seen)
    return list(seen.values())


Groups = dict[Hashable, dict[str, list[Placed]]]  # class key -> node -> up to two members


def _grouped(members: Iterable[Placed], keys: dict[Peer, int]) -> Groups:
    out: Groups = {}
    for member in members:
        by_node = out.setdefault(_key(keys, member), {})
        kept = by_node.setdefault(member.node, [])
        if len(kept) < 2:  # two tell a same-node pair apart from an endpoint with itself
            kept.append(member)
    return out


def _representatives(
    left: Groups, right: Groups, seen: dict[Hashable, tuple[Placed, Placed]]
) -> None:
    """One pair per (class, class, same node) that occurs between two grouped sets. Across
    nodes, the first two nodes of each side are enough to find a pair if one exists."""
    for ka, nodes_a in left.items():
        for kb, nodes_b in right.items():
            combos = [(n, n) for n in nodes_a.keys() & nodes_b.keys() if n]
            firsts = itertools.product(itertools.islice(nodes_a, 2), itertools.islice(nodes_b, 2))
            combos += [(x, y) for x, y in firsts if not (x and x == y)]
            for a_node, b_node in combos:
                same = a_node == b_node if a_node and b_node else None
                if (ka, kb, same) in seen:
                    continue
                found = (
                    (a, b) for a in nodes_a[a_node] for b in nodes_b[b_node] if a.peer != b.peer
                )
                pair = next(found, None)
                if pair is not None:
                    seen[(ka, kb, same)] = pair


def _node_keys(engine: Engine, members: Iterable[Placed]) -> dict[Peer, Hashable]:
    """A class key for each node, from what its flows read: its host endpoints and the
    views owning its address (labels, profiles, interface, named ports), and which rule
    nets hold its address. Equal keys, equal verdicts; far cheaper than matching every
    selector of every policy against every node (the states of one apply differ little)."""
    hosts: dict[str, list[View]] = {}
    for host in engine.world.hosts:
        hosts.setdefault(host.node, []).append(host)
    nets = sorted(set(_rule_nets(engine.world)))
    out: dict[Peer, Hashable] = {}
    for member in members:
        if member.peer.kind is not PeerKind.NODE:
            continue
        mine = tuple(sorted((_view_key(h) for h in hosts.get(member.node, ())), key=repr))
        owners = tuple(sorted((_view_key(v) for v in engine.owners(member.address)), key=repr))
        inside = tuple(lo <= member.address <= hi for lo, hi in nets)
        out[member.peer] = ("node", mine, owners, inside, addr.version(member.address))
    return out


def _view_key(view: View) -> Hashable:
    ns = None if view.ns_labels is None else tuple(sorted(view.ns_labels.items()))
    labels = tuple(sorted(view.labels.items()))
    return (
        str(view.kind),
        view.namespace,
        labels,
        ns,
        view.profiles,
        view.interface,
        view.named_ports,
    )


def _key(keys: dict[Peer, int], placed: Placed) -> Hashable:
    return keys.get(placed.peer, (1 << 130) + placed.address)  # never a class number


def _atoms(world: World, addresses: IntervalSet) -> list[Placed]:
    """One address per atom of `addresses` that no rule or selector can split."""
    if not addresses:
        return []
    nets = sorted(set(_rule_nets(world)))
    views = [s for v in world.views for s in v.addresses.spans]
    low, high = addresses.spans[0][0], addresses.spans[-1][1]
    cuts = {c for lo, hi in (*nets, *views) for c in (lo, hi + 1) if low < c <= high}
    edges = sorted({lo for lo, _ in addresses} | {hi + 1 for _, hi in addresses} | cuts)
    groups: dict[Hashable, int] = {}
    for lo in edges:
        if lo not in addresses:
            continue
        owners = tuple(v.name for v in world.owners(lo))
        inside = tuple(a <= lo <= b for a, b in nets)
        groups.setdefault((owners, inside), lo)
    return [_address(a) for a in groups.values()]


def _address(value: int) -> Placed:
    return Placed(Peer(PeerKind.CIDR, addr.show_address(value)), value)


def _rule_nets(world: World) -> Iterable[Span]:
    for policy in world.policies:
        for rule in (*policy.ingress, *policy.egress):
            for side in (rule.source, rule.destination):
                for nets in (side.nets, side.not_nets):
                    yield from (nets.spans if nets is not None else ())


def _counterexample(a: Placed, b: Placed, packet: int, outcome: Outcome) -> Counterexample:
    verdict = outcome.verdict(packet)
    return Counterexample(_show(a), _show(b), packet, verdict, _deciding(outcome, packet, verdict))


def _show(placed: Placed) -> str:
    if placed.peer.kind is PeerKind.CIDR:
        return placed.peer.name
    return f"{placed.peer.kind} {placed.peer.name}"


def _deciding(outcome: Outcome, packet: int, verdict: Verdict) -> str:
    if verdict is Verdict.UNKNOWN:
        return "; ".join(outcome.missing(packet)) or "the repository does not say"
    steps = [s for s in outcome.steps(packet) if s.verdict is verdict]
    return _who(steps[0]) if steps else str(verdict)


def _who(step: Step) -> str:
    if step.policy:
        rule = f" {step.rule}" if step.rule else ""
        where = f", {step.origin}" if step.origin else ""
        return f"{step.policy}{rule}{where} ({step.hop})"
    return f"{step.by}: {step.detail} ({step.hop})"
