"""Flows between peers: which hops police them, under which assumptions.

Paths (calico-semantics.md "Host endpoints"): a pod's egress, the forward chains of the
nodes it crosses, the destination's ingress; traffic to or from a host process meets
that host's endpoint chains; host -> local pod is not policed (static.go
filterOutputChain); pod -> its own node depends on DefaultEndpointToHostAction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from reconciler.connectivity import addresses as addr
from reconciler.connectivity.hops import Ends, Engine
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.outcome import By, Outcome, Step, Verdict
from reconciler.connectivity.rules import Direction
from reconciler.connectivity.views import View


class PeerKind(StrEnum):
    CIDR = "cidr"
    NODE = "node"
    POD = "pod"


@dataclass(frozen=True, slots=True)
class Peer:
    kind: PeerKind
    name: str  # "203.0.113.7", "node-1", "shop/nginx-1"

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class PeerError(ValueError):
    pass


def parse_peer(text: str) -> Peer:
    kind, colon, name = text.partition(":")
    if not colon or kind not in PeerKind.__members__.values() or not name:
        raise PeerError(f"PEER {text!r}: expected cidr:ADDRESS, node:NAME or pod:NAMESPACE/NAME")
    if kind == PeerKind.POD and name.count("/") != 1:
        raise PeerError(f"PEER {text!r}: a pod is pod:NAMESPACE/NAME")
    if kind == PeerKind.CIDR:
        try:
            span = addr.network_span(name)
        except ValueError:
            raise PeerError(f"PEER {text!r}: {name!r} is not an IP address") from None
        if span[0] != span[1]:
            raise PeerError(f"PEER {text!r}: give one address, not a range")
    return Peer(PeerKind(kind), name)


@dataclass(frozen=True, slots=True)
class Placed:
    """A peer found in the world: its address, node and endpoint."""

    peer: Peer
    address: int
    node: str = ""
    pod: View | None = None


def place(engine: Engine, peer: Peer) -> Placed:
    world = engine.world
    if peer.kind is PeerKind.CIDR:
        return Placed(peer, addr.network_span(peer.name)[0])
    if peer.kind is PeerKind.POD:
        namespace, name = peer.name.split("/")
        pod = world.pod(namespace, name)
        if pod is None:
            raise PeerError(f"{peer}: no such pod with an IP in the inventory")
        return Placed(peer, pod.addresses.first(), pod.node, pod)
    node = world.nodes.get(peer.name)
    if node is None or node.address is None:
        raise PeerError(f"{peer}: no such node with a known address in the inventory")
    return Placed(peer, node.address, peer.name)


@dataclass(frozen=True, slots=True)
class Route:
    hops: tuple[Hop, ...]
    assumptions: tuple[str, ...] = ()


_ENCAPSULATION = (
    "whether pod traffic between nodes is encapsulated (VXLAN/IP-in-IP: the node "
    "firewalls then see the tunnel packets, not the pod's)"
)
_ENTRY = "the packet from {src} enters the cluster at node {node} without SNAT"


def routes(engine: Engine, src: Placed, dst: Placed) -> list[Route]:
    """The alternatives the repository cannot choose between; usually one."""
    s, d = src.peer.kind, dst.peer.kind
    if s is PeerKind.CIDR and d is PeerKind.CIDR:
        raise PeerError("one end of a flow must be a pod or a node of the cluster")
    if src.node and src.node == dst.node and s is PeerKind.NODE and d is PeerKind.NODE:
        raise PeerError("a node talking to itself is not a flow Calico polices as such")
    builder = _ROUTES[(s, d)]
    return builder(engine, src, dst)


def _pod_pod(engine: Engine, src: Placed, dst: Placed) -> list[Route]:
    ends = (_egress(src), _ingress(dst))
    if src.node == dst.node:
        return [Route(ends)]
    native = (ends[0], _fwd_out(src.node), _fwd_in(dst.node), ends[1])
    tunnel = Route(ends, (_ENCAPSULATION,))
    return [Route(native, ("pod traffic between nodes is routed natively",)), tunnel]


def _cidr_pod(engine: Engine, src: Placed, dst: Placed) -> list[Route]:
    entry = _ENTRY.format(src=src.peer.name, node=dst.node)
    return [Route((_fwd_in(dst.node), _ingress(dst)), (entry,))]


def _cidr_node(engine: Engine, src: Placed, dst: Placed) -> list[Route]:
    return [Route((_host(dst.node, Direction.INGRESS),))]


def _node_cidr(engine: Engine, src: Placed, dst: Placed) -> list[Route]:
    return [Route((_host(src.node, Direction.EGRESS),))]


def _pod_cidr(engine: Engine, src: Placed, dst: Placed) -> list[Route]:
    return [Route((_egress(src), _fwd_out(src.node)))]


def _pod_node(engine: Engine, src: Placed, dst: Placed) -> list[Route]:
    if src.node == dst.node:
        return [Route((_egress(src), _to_own_host(src)))]
    hops = (
        _egress(src),
        _fwd_out(src.node),
        _host(dst.node, Direction.INGRESS),
    )
    return [Route(hops)]


def _node_pod(engine: Engine, src: Placed, dst: Placed) -> list[Route]:
    if src.node == dst.node:
        return [Route((_local_pod(src),))]
    hops = (
        _host(src.node, Direction.EGRESS),
        _fwd_in(dst.node),
        _ingress(dst),
    )
    return [Route(hops, (f"node {src.node} sends with its address as source (no tunnel address)",))]


def _node_node(engine: Engine, src: Placed, dst: Placed) -> list[Route]:
    hops = (_host(src.node, Direction.EGRESS), _host(dst.node, Direction.INGRESS))
    return [Route(hops)]


_ROUTES: dict[tuple[PeerKind, PeerKind], Callable[[Engine, Placed, Placed], list[Route]]] = {
    (PeerKind.POD, PeerKind.POD): _pod_pod,
    (PeerKind.CIDR, PeerKind.POD): _cidr_pod,
    (PeerKind.CIDR, PeerKind.NODE): _cidr_node,
    (PeerKind.NODE, PeerKind.CIDR): _node_cidr,
    (PeerKind.POD, PeerKind.CIDR): _pod_cidr,
    (PeerKind.POD, PeerKind.NODE): _pod_node,
    (PeerKind.NODE, PeerKind.POD): _node_pod,
    (PeerKind.NODE, PeerKind.NODE): _node_node,
}


# --- hops ----------------------------------------------------------------------------------


class HopKind(StrEnum):
    EGRESS = "source egress"  # a pod's egress policy
    INGRESS = "destination ingress"  # a pod's ingress policy
    HOST_OUT = "host egress"  # traffic from a host process
    HOST_IN = "host ingress"  # traffic to a host process
    FORWARD_OUT = "node forward (egress)"
    FORWARD_IN = "node forward (ingress)"
    OWN_HOST = "pod to its own node"
    LOCAL_POD = "node to its own pod"


@dataclass(frozen=True, slots=True)
class Hop:
    """One policing point of a route: a value, so results can be cached per hop."""

    kind: HopKind
    node: str = ""
    pod: View | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.pod.name if self.pod else self.node)


def _egress(src: Placed) -> Hop:
    return Hop(HopKind.EGRESS, src.node, src.pod)


def _ingress(dst: Placed) -> Hop:
    return Hop(HopKind.INGRESS, dst.node, dst.pod)


def _host(node: str, direction: Direction) -> Hop:
    return Hop(HopKind.HOST_IN if direction is Direction.INGRESS else HopKind.HOST_OUT, node)


def _fwd_in(node: str) -> Hop:
    return Hop(HopKind.FORWARD_IN, node)


def _fwd_out(node: str) -> Hop:
    return Hop(HopKind.FORWARD_OUT, node)


def _to_own_host(src: Placed) -> Hop:
    return Hop(HopKind.OWN_HOST, src.node)


def _local_pod(src: Placed) -> Hop:
    return Hop(HopKind.LOCAL_POD, src.node)


HostHop = Callable[[Engine, View, Ends, IntervalSet], Outcome]
_ON_HOST: dict[HopKind, HostHop] = {
    HopKind.HOST_IN: Engine.host_in,
    HopKind.HOST_OUT: Engine.host_out,
    HopKind.FORWARD_IN: Engine.forward_in,
    HopKind.FORWARD_OUT: Engine.forward_out,
}
_OWN_HOST = (
    "DefaultEndpointToHostAction (FelixConfiguration: Drop, Return or Accept) for traffic "
    "from a pod to its own node"
)
_LOCAL_POD = "host to local pod is not policed (felix rules/static.go filterOutputChain)"


def run_hop(engine: Engine, hop: Hop, ends: Ends, packets: IntervalSet) -> Outcome:
    if hop.pod is not None:
        direction = Direction.EGRESS if hop.kind is HopKind.EGRESS else Direction.INGRESS
        return engine.workload(hop.pod, direction, ends, packets)
    label = f"{hop.kind}: node {hop.node}"
    if hop.kind is HopKind.OWN_HOST:
        return Outcome().add(
            packets, Step(label, Verdict.UNKNOWN, By.UNKNOWN, _OWN_HOST), _OWN_HOST
        )
    if hop.kind is HopKind.LOCAL_POD:
        return Outcome().add(packets, Step(label, Verdict.ALLOW, By.NOT_POLICED, _LOCAL_POD))
    return _on_node(engine, hop, label, ends, packets)


def _on_node(engine: Engine, hop: Hop, label: str, ends: Ends, packets: IntervalSet) -> Outcome:
    """A node's host endpoint hop: Calico only polices interfaces it knows (overview.mdx)."""
    chosen = host_endpoint_of(engine, hop.node)
    if isinstance(chosen, View):
        return _ON_HOST[hop.kind](engine, chosen, ends, packets)
    if chosen is None:
        detail = f"node {hop.node} has no host endpoint: Calico does not police its interfaces"
        return Outcome().add(packets, Step(label, Verdict.ALLOW, By.NOT_POLICED, detail))
    return Outcome().add(packets, Step(label, Verdict.UNKNOWN, By.UNKNOWN, chosen), chosen)


def host_endpoint_of(engine: Engine, node: str) -> View | str | None:
    """The node's all-interfaces host endpoint; a str says why it cannot be chosen."""
    heps = engine.world.hosts_of(node)
    stars = [h for h in heps if h.interface == "*"]
    if len(stars) == 1 and len(heps) == 1:
        return stars[0]
    if not heps:
        return None
    names = ", ".join(h.name for h in heps)
    return (
        f"which of node {node}'s host endpoints ({names}) polices the traffic: it depends on "
        "the interface the packet uses, which the repository does not say"
    )


# --- a flow --------------------------------------------------------------------------------


def ends_of(engine: Engine, src: Placed, dst: Placed) -> Ends:
    dst_endpoint = dst.pod
    if dst.peer.kind is PeerKind.NODE:
        chosen = host_endpoint_of(engine, dst.node)
        dst_endpoint = chosen if isinstance(chosen, View) else None
    return Ends(
        src.address,
        engine.owners(src.address),
        dst.address,
        engine.owners(dst.address),
        dst_endpoint,
    )


@dataclass(frozen=True, slots=True)
class FlowOutcome:
    outcome: Outcome  # of the first route (the trace shown)
    combined: Outcome  # agreed by every route; the rest is undetermined
    assumptions: tuple[str, ...]


def flow(engine: Engine, src: Placed, dst: Placed, packets: IntervalSet) -> FlowOutcome:
    ends = ends_of(engine, src, dst)
    found = routes(engine, src, dst)
    outcomes = [_run(engine, r, ends, packets) for r in found]
    first = outcomes[0]
    if len(outcomes) == 1:
        return FlowOutcome(first, first, found[0].assumptions)
    allow, deny = first.allow, first.deny
    for other in outcomes[1:]:
        allow, deny = allow & other.allow, deny & other.deny
    unknown = packets - allow - deny
    reasons = ((unknown, found[1].assumptions[0]),) if unknown else ()
    combined = Outcome(allow, deny, unknown, first.trace, (*first.reasons, *reasons))
    return FlowOutcome(first, combined, ())


def _run(engine: Engine, route: Route, ends: Ends, packets: IntervalSet) -> Outcome:
    outcome = Outcome(allow=packets)
    for hop in route.hops:
        outcome = outcome.then(run_hop(engine, hop, ends, packets))
    return outcome
