"""connectivity: what the firewall allows, exactly as Felix evaluates it (pure, no I/O).

    world = build_world(resources, Facts(nodes=..., pods=...), flavour=Flavour((3, 31)))
    evaluate(world, parse_peer("pod:shop/web"), parse_peer("node:node-1"), parse_packet("tcp/22"))
    diff(base_world, head_world) -> Diff      # every flow whose verdict changes, grouped
    reach_map(world) -> ReachMap              # who can reach whom
    Pairwise(Engine(world), peer_classes([...])).matrix(classes)  # raw verdicts per class pair

For the lockout guard: build the worlds of the states an apply passes through, take
peer_classes over all of them (classes valid in every world), and compare their matrices.

Semantics: ../../shared/reference/calico-semantics.md; every module names its Felix sources.
"""

from reconciler.connectivity.classes import PeerClass, peer_classes
from reconciler.connectivity.compile import CompileError, Flavour
from reconciler.connectivity.diff import Change, ClassChange, Diff, diff
from reconciler.connectivity.evaluate import Evaluation, evaluate
from reconciler.connectivity.flows import Peer, PeerError, PeerKind, parse_peer
from reconciler.connectivity.hops import Engine
from reconciler.connectivity.outcome import By, Step, Verdict
from reconciler.connectivity.packets import parse_packet, show_packet, show_packets
from reconciler.connectivity.pairwise import Pairwise, Verdicts
from reconciler.connectivity.reach import ReachMap, reach_map
from reconciler.connectivity.world import Facts, World, build_world

__all__ = [
    "By",
    "Change",
    "ClassChange",
    "CompileError",
    "Diff",
    "Engine",
    "Evaluation",
    "Facts",
    "Flavour",
    "Pairwise",
    "Peer",
    "PeerClass",
    "PeerError",
    "PeerKind",
    "ReachMap",
    "Step",
    "Verdict",
    "Verdicts",
    "World",
    "build_world",
    "diff",
    "evaluate",
    "parse_packet",
    "parse_peer",
    "peer_classes",
    "reach_map",
    "show_packet",
    "show_packets",
]
