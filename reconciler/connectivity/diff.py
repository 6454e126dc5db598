"""`connectivity diff`: every flow whose verdict differs between two worlds, exactly.

Peers are grouped into classes (classes.py); for each pair of classes every packet is
evaluated at once (packets are interval sets), for a same-node and a cross-node member
pair where both occur. Pairs whose every hop reads the same policies in both worlds are
skipped: their verdicts cannot differ.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.connectivity.addresses import show_addresses
from reconciler.connectivity.classes import PeerClass, peer_classes
from reconciler.connectivity.flows import FlowOutcome, PeerKind, Placed, flow
from reconciler.connectivity.hops import Engine
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.outcome import Outcome, Step, Verdict
from reconciler.connectivity.packets import ALL_PACKETS, show_packets
from reconciler.connectivity.pairwise import Cell, Pairwise, representatives
from reconciler.connectivity.world import World


@dataclass(frozen=True, slots=True)
class Change:
    """Flows from `src` to `dst` on `packets` whose verdict went from `before` to `after`."""

    src: str  # peers, grouped for people: "pods app=web in ns shop (web-1, web-2)"
    dst: str
    packets: IntervalSet
    before: Verdict
    after: Verdict
    because: tuple[str, ...]  # the policies (with file:line) deciding now, or before
    same_node: bool | None = None  # None: not a pod/node pair where it matters

    @property
    def ports(self) -> str:
        return show_packets(self.packets)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from": self.src,
            "to": self.dst,
            "ports": self.ports,
            "before": str(self.before),
            "after": str(self.after),
            "because": list(self.because),
        }
        if self.same_node is not None:
            out["same_node"] = self.same_node
        return out


@dataclass(frozen=True, slots=True)
class ClassChange:
    """One change between two peer classes, before grouping (what tests and tools match on)."""

    src: PeerClass
    dst: PeerClass
    packets: IntervalSet
    before: Verdict
    after: Verdict
    because: tuple[str, ...]
    same_node: bool | None


@dataclass(frozen=True, slots=True)
class Diff:
    changes: tuple[Change, ...]
    raw: tuple[ClassChange, ...]
    pairs: int  # class pairs compared (one per topology that occurs)
    classes: int

    def covering(self, src: Placed, dst: Placed, packet: int) -> ClassChange | None:
        """The change that covers one concrete flow, if any."""
        topology = src.node == dst.node
        for change in self.raw:
            if change.same_node not in (None, topology) or packet not in change.packets:
                continue
            if _holds(change.src, src) and _holds(change.dst, dst):
                return change
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "changes": [c.as_json() for c in self.changes],
            "classes": self.classes,
            "pairs": self.pairs,
        }


def diff(base: World, head: World) -> Diff:
    engines = (Engine(base), Engine(head))
    classes = peer_classes(engines)
    first = Pairwise(engines[0], classes)
    before = first.matrix(classes)
    after = Pairwise(engines[1], classes, reuse=first).matrix(classes)
    raw: list[ClassChange] = []
    for cell, was in before.items():
        if after.get(cell) != was:
            raw += _compare(engines, classes, cell)
    return Diff(tuple(group_changes(raw, external(classes))), tuple(raw), len(before), len(classes))


def _compare(
    engines: tuple[Engine, Engine], classes: Sequence[PeerClass], cell: Cell
) -> list[ClassChange]:
    """The traces of one changed pair, to say which policies cause the change."""
    si, di, same_node = cell
    src, dst = classes[si], classes[di]
    pair = next((a, b) for a, b, same in representatives(src, dst) if same is same_node)
    before = flow(engines[0], *pair, ALL_PACKETS)
    after = flow(engines[1], *pair, ALL_PACKETS)
    out = []
    for was in Verdict:
        for now in Verdict:
            packets = _part(before.combined, was) & _part(after.combined, now)
            if was is not now and packets:
                why = _because(before, after, packets)
                out.append(ClassChange(src, dst, packets, was, now, why, same_node))
    return out


def _part(outcome: Outcome, verdict: Verdict) -> IntervalSet:
    if verdict is Verdict.ALLOW:
        return outcome.allow
    if verdict is Verdict.DENY:
        return outcome.deny
    return ALL_PACKETS - outcome.allow - outcome.deny


def _because(before: FlowOutcome, after: FlowOutcome, packets: IntervalSet) -> tuple[str, ...]:
    """Policies deciding these packets in one world and not the other (else all of them)."""
    old, new = _deciders(before.outcome, packets), _deciders(after.outcome, packets)
    changed = [d for d in new if d not in old] + [d for d in old if d not in new]
    return tuple(dict.fromkeys(changed or new))


def _deciders(outcome: Outcome, packets: IntervalSet) -> list[str]:
    return [_who(step) for part, step in outcome.trace if part & packets and step.policy]


def _who(step: Step) -> str:
    return f"{step.policy} {step.rule} ({step.origin})" if step.origin else step.policy


# --- grouping for people ---------------------------------------------------------------------


def external(classes: Sequence[PeerClass]) -> IntervalSet:
    return IntervalSet.of(span for c in classes for span in c.addresses)


def group_changes(raw: Sequence[ClassChange], free: IntervalSet) -> list[Change]:
    """Merge destinations that changed alike for one source, then sources alike."""
    by_src: dict[tuple[object, ...], list[PeerClass]] = defaultdict(list)
    for r in raw:
        by_src[(r.src.label, r.before, r.after, r.packets, r.because, r.same_node)].append(r.dst)
    sources = {r.src.label: r.src for r in raw}
    by_dst: dict[tuple[object, ...], list[PeerClass]] = defaultdict(list)
    for (src, *rest), dsts in by_src.items():
        by_dst[(show_peers(dsts, free), *rest)].append(sources[str(src)])
    out = [
        Change(show_peers(srcs, free), str(dst), packets, before, after, because, same_node)  # type: ignore[arg-type]
        for (dst, before, after, packets, because, same_node), srcs in by_dst.items()
    ]
    return sorted(out, key=lambda c: (c.after != Verdict.ALLOW, c.src, c.dst, c.packets.spans))


def show_peers(classes: Sequence[PeerClass], free: IntervalSet) -> str:
    labels = [c.label for c in classes if c.kind is not PeerKind.CIDR]
    addresses = IntervalSet.of(span for c in classes for span in c.addresses)
    if addresses:
        labels.append(_showexternal(addresses, free))
    return "; ".join(labels)


def _showexternal(addresses: IntervalSet, free: IntervalSet) -> str:
    if addresses == free:
        return "any address outside the cluster"
    missing = free - addresses
    if len(missing.spans) <= 3 and len(addresses.spans) > 3:
        return f"any address outside the cluster except {show_addresses(missing)}"
    return f"addresses {show_addresses(addresses)}"


def _holds(group: PeerClass, peer: Placed) -> bool:
    if group.kind is not peer.peer.kind:
        return False
    if group.kind is PeerKind.CIDR:
        return peer.address in group.addresses
    return any(m.peer == peer.peer for m in group.members)
