"""`connectivity eval`: one flow, an exact verdict, and the path that decided it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.connectivity.flows import Peer, flow, place
from reconciler.connectivity.hops import Engine
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.outcome import Step, Verdict
from reconciler.connectivity.packets import show_packet
from reconciler.connectivity.world import World


@dataclass(frozen=True, slots=True)
class Evaluation:
    src: Peer
    dst: Peer
    packet: int
    verdict: Verdict
    path: tuple[Step, ...]
    assumptions: tuple[str, ...]  # what the verdict rests on
    missing: tuple[str, ...]  # when not determined: what the repository does not tell

    def as_json(self) -> dict[str, Any]:
        return {
            "from": str(self.src),
            "to": str(self.dst),
            "port": show_packet(self.packet),
            "verdict": str(self.verdict),
            "path": [s.as_json() for s in self.path],
            "assumptions": list(self.assumptions),
            "missing": list(self.missing),
        }


def evaluate(
    world: World, src: Peer, dst: Peer, packet: int, engine: Engine | None = None
) -> Evaluation:
    """Raises PeerError for an unknown peer or an impossible flow."""
    engine = engine or Engine(world)
    result = flow(engine, place(engine, src), place(engine, dst), IntervalSet.point(packet))
    verdict = result.combined.verdict(packet)
    return Evaluation(
        src=src,
        dst=dst,
        packet=packet,
        verdict=verdict,
        path=tuple(result.outcome.steps(packet)),
        assumptions=(*result.assumptions, *world.notes),
        missing=tuple(result.combined.missing(packet)) if verdict is Verdict.UNKNOWN else (),
    )
