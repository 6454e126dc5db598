"""connectivity: what the firewall allows, exactly as Felix evaluates it (pure, no I/O).

    world = build_world(resources, Facts(nodes=..., pods=...), flavour=Flavour((3, 31)))
    evaluate(world, parse_peer("pod:shop/web"), parse_peer("node:node-1"), parse_packet("tcp/22"))
    diff(base_world, head_world) -> Diff

Semantics: ../../shared/reference/calico-semantics.md; every module names its Felix sources.
"""

from reconciler.connectivity.compile import CompileError, Flavour
from reconciler.connectivity.evaluate import Evaluation, evaluate
from reconciler.connectivity.flows import Peer, PeerError, PeerKind, parse_peer
from reconciler.connectivity.hops import Engine
from reconciler.connectivity.outcome import By, Step, Verdict
from reconciler.connectivity.packets import parse_packet, show_packet, show_packets
from reconciler.connectivity.world import Facts, World, build_world

__all__ = [
    "By",
    "CompileError",
    "Engine",
    "Evaluation",
    "Facts",
    "Flavour",
    "Peer",
    "PeerError",
    "PeerKind",
    "Step",
    "Verdict",
    "World",
    "build_world",
    "evaluate",
    "parse_packet",
    "parse_peer",
    "show_packet",
    "show_packets",
]
