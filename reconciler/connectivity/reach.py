"""`connectivity map`: who can reach whom, per peer class, for a security review."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from reconciler.connectivity.classes import PeerClass, peer_classes
from reconciler.connectivity.diff import external, show_peers
from reconciler.connectivity.hops import Engine
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.packets import show_packets
from reconciler.connectivity.pairwise import Pairwise
from reconciler.connectivity.world import World


@dataclass(frozen=True, slots=True)
class Reach:
    src: str
    dst: str
    allowed: IntervalSet
    unknown: IntervalSet  # not determined by the repository
    same_node: bool | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.src, "to": self.dst}
        out["allowed"] = show_packets(self.allowed) if self.allowed else ""
        out["not_determined"] = show_packets(self.unknown) if self.unknown else ""
        if self.same_node is not None:
            out["same_node"] = self.same_node
        return out


@dataclass(frozen=True, slots=True)
class ReachMap:
    rows: tuple[Reach, ...]
    classes: int

    def as_json(self) -> dict[str, Any]:
        return {"reach": [r.as_json() for r in self.rows], "classes": self.classes}


_Key = tuple[IntervalSet, IntervalSet, bool | None]


def reach_map(world: World) -> ReachMap:
    engine = Engine(world)
    classes = peer_classes([engine])
    found: dict[tuple[str, _Key], list[PeerClass]] = defaultdict(list)
    sources: dict[str, PeerClass] = {}
    for (si, di, same_node), verdicts in Pairwise(engine, classes).matrix(classes).items():
        unknown = verdicts.unknown
        if verdicts.allow or unknown:
            src = sources[classes[si].label] = classes[si]
            found[(src.label, (verdicts.allow, unknown, same_node))].append(classes[di])
    return ReachMap(tuple(_grouped(found, sources, external(classes))), len(classes))


def _grouped(
    found: dict[tuple[str, _Key], list[PeerClass]],
    sources: dict[str, PeerClass],
    free: IntervalSet,
) -> list[Reach]:
    by_dst: dict[tuple[str, _Key], list[PeerClass]] = defaultdict(list)
    for (src, key), dsts in found.items():
        by_dst[(show_peers(dsts, free), key)].append(sources[src])
    rows = [
        Reach(show_peers(srcs, free), dst, allowed, unknown, same_node)
        for (dst, (allowed, unknown, same_node)), srcs in by_dst.items()
    ]
    return sorted(rows, key=lambda r: (r.src, r.dst))
