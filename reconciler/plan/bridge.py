"""The make-before-break bridge: a temporary policy that keeps flows open during an apply.

When no order of single writes keeps every flow that the states before and after both
allow (two new policies that allow together what either alone isolates, say), the plan
writes this first and removes it last:

- a Tier `policy-reconciler-bridge-<hash of the ApplySet id>` ordered ahead of every
  other tier (order 0), and
- a GlobalNetworkPolicy in it selecting every endpoint (`all()`, both directions, and
  applyOnForward for forwarded traffic) whose rules Allow exactly the flows to keep, by
  address and port, then Pass everything else on to the tiers as they are.

Why that is safe in every state between: Felix evaluates tiers in order and Allow is final,
so a kept flow is allowed at every normal and forward hop whatever else is in place; Pass
sends every other packet to the next tier, as if the bridge were not there (a tier whose
policies end in Pass never drops; calico-semantics.md). Failsafe rules come first anyway.
The bridge never allows a flow the state before does not already allow.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler import kinds
from reconciler.connectivity.addresses import V6_BASE, show_span
from reconciler.connectivity.classes import PeerClass
from reconciler.connectivity.flows import PeerKind
from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.packets import (
    ALL_PACKETS,
    ICMP,
    ICMP_PROTOCOLS,
    ICMPV6,
    NAMES,
    PORT_PROTOCOLS,
    protocol_span,
    show_packets,
)
from reconciler.connectivity.pairwise import Cell
from reconciler.model import ObjectRef, Origin, Resource

PREFIX = "policy-reconciler-bridge"
ORDER = 0.0
REASON_UP = "make-before-break: keeps the flows both states allow while the rest is written"
REASON_DOWN = "make-before-break: removed once every write is done"
NO_TIER = f"no bridge: a tier is ordered at or before {ORDER:g}, where a bridge must go first"
ORIGIN = Origin("(policy-reconciler: make-before-break bridge)")
Rule = dict[str, Any]
_PROTOCOL_NAMES = {number: name for name, number in NAMES.items()}
_V4_ONLY, _V6_ONLY = {ICMP}, {ICMPV6}
# Packets no Calico rule can name and no traffic uses: IP protocol 0 and port 0 of the port
# protocols; and, per IP version, the other version's ICMP (ICMPv6 needs ipVersion 6).
_SILENT = IntervalSet.of([protocol_span(0), *((p << 16, p << 16) for p in PORT_PROTOCOLS)])
_UNNAMED = {
    4: _SILENT | IntervalSet.of(protocol_span(p) for p in _V6_ONLY),
    6: _SILENT | IntervalSet.of(protocol_span(p) for p in _V4_ONLY),
}


def show(packets: IntervalSet) -> str:
    """`show_packets`, with what a bridge cannot name left out of "all traffic"."""
    if any(not ALL_PACKETS - packets - unnamed for unnamed in _UNNAMED.values()):
        return "all traffic"
    return show_packets(packets)


def bridgeable(packets: IntervalSet, versions: set[int]) -> IntervalSet:
    """What of `packets` between addresses of these IP versions a bridge can keep."""
    if len(versions) == 1:
        (version,) = versions
        return packets - _UNNAMED[version]
    return packets - _SILENT


def allow_all() -> list[Rule]:
    return [{"action": "Allow"}]


def tier_name(applyset_id: str) -> str:
    """One bridge per ApplySet, so that two reconcilers in one cluster never share one."""
    return f"{PREFIX}-{hashlib.sha256(applyset_id.encode()).hexdigest()[:10]}"


def policy_name(tier: str) -> str:
    return f"{tier}.keep"  # Calico's tier prefix, accepted by every release we support


def objects(
    rules: Sequence[Rule], tiers: Iterable[Resource], *, forward: bool, name: str
) -> list[Resource] | None:
    """The Tier and the policy, as the user would write them; None when a tier is in the way.
    `forward`: some state has applyOnForward policies, so forwarded traffic is bridged too
    (without them forwarded traffic is allowed by default, and a forward tier would end that)."""
    if any(_blocks(t, name) for t in tiers):
        return None
    tier_ref = ObjectRef(kinds.CALICO_V3, "v3", "Tier", "", name)
    policy_ref = ObjectRef(kinds.CALICO_V3, "v3", "GlobalNetworkPolicy", "", policy_name(name))
    tier: dict[str, Any] = {"apiVersion": tier_ref.api_version, "kind": "Tier"}
    tier |= {"metadata": {"name": name}, "spec": {"order": ORDER}}
    passing = [*rules, {"action": "Pass"}]
    spec = {
        "tier": name,
        "order": ORDER,
        "selector": "all()",
        "types": ["Ingress", "Egress"],
        "applyOnForward": forward,
        "ingress": passing,
        "egress": passing,
    }
    policy: dict[str, Any] = {"apiVersion": policy_ref.api_version, "kind": "GlobalNetworkPolicy"}
    policy |= {"metadata": {"name": policy_ref.name}, "spec": spec}
    return [Resource(tier_ref, tier, ORIGIN), Resource(policy_ref, policy, ORIGIN)]


def forwards(resource: Resource) -> bool:
    spec = resource.body.get("spec")
    return isinstance(spec, Mapping) and spec.get("applyOnForward") is True


def is_bridge(ref: ObjectRef) -> bool:
    return is_bridge_object(ref.kind, ref.name)


def is_bridge_object(kind: str, name: str) -> bool:
    """Any ApplySet's bridge (`default.` is how a CRD stores a default-tier name: not ours)."""
    return kind in ("Tier", "GlobalNetworkPolicy") and name.startswith(PREFIX + "-")


def _blocks(tier: Resource, name: str) -> bool:
    if tier.ref.name.startswith(PREFIX + "-"):
        return False  # another ApplySet's bridge: both Allow what they keep, Pass the rest
    order = (tier.body.get("spec") or {}).get("order")
    if not isinstance(order, int | float):
        return False  # no order sorts last
    return order < ORDER or (order == ORDER and tier.ref.name < name)


# --- rules: the flows to keep, by address and port --------------------------------------


def rules_for(keep: Mapping[Cell, IntervalSet], classes: Sequence[PeerClass]) -> list[Rule]:
    """Allow rules covering exactly `keep` (per class pair and topology)."""
    out: list[Rule] = []
    for (si, di, same), packets in sorted(keep.items(), key=_cell_order):
        if not packets:
            continue
        other = keep.get((si, di, not same)) if same is not None else None
        if same is False and other is not None and other == packets:
            continue  # written once, for both topologies, with the same-node cell
        both = same is True and other is not None and other == packets
        for src, dst in _endpoints(classes[si], classes[di], None if both else same):
            out += _rules(src, dst, packets)
    return out


def _cell_order(item: tuple[Cell, IntervalSet]) -> tuple[int, int, int]:
    si, di, same = item[0]
    return (si, di, {True: 0, False: 1, None: 2}[same])


def _endpoints(
    src: PeerClass, dst: PeerClass, same: bool | None
) -> list[tuple[IntervalSet, IntervalSet]]:
    if same is None:
        return [(_addresses(src), _addresses(dst))]
    out = []
    for node in sorted({m.node for m in src.members}):
        here = _addresses(src, {node})
        there = _addresses(dst, {node}, exclude=not same)
        if here and there:
            out.append((here, there))
    return out


def _addresses(
    peers: PeerClass, nodes: set[str] | None = None, *, exclude: bool = False
) -> IntervalSet:
    """The class's addresses; of its members on `nodes` (or, `exclude`, elsewhere)."""
    if peers.kind is PeerKind.CIDR:
        return peers.addresses
    found = IntervalSet()
    for member in peers.members:
        if nodes is not None and (member.node in nodes) == exclude:
            continue
        own = member.pod.addresses if member.pod is not None else IntervalSet.point(member.address)
        found = found | own
    return found


def families(peers: PeerClass) -> set[int]:
    """The IP versions a class's addresses are in."""
    found = _addresses(peers)
    return {v for v, low, high in _FAMILIES if found & _span(low, high)}


_FAMILIES = ((4, 0, (1 << 32) - 1), (6, V6_BASE, V6_BASE + (1 << 128) - 1))


def _rules(src: IntervalSet, dst: IntervalSet, packets: IntervalSet) -> list[Rule]:
    out = []
    for version, low, high in _FAMILIES:
        a, b = src & _span(low, high), dst & _span(low, high)
        if not (a and b):
            continue
        for match in _matches(packets, version):
            rule: Rule = {"action": "Allow", "ipVersion": version, **match}
            rule["source"] = {"nets": _nets(a)}
            rule["destination"] = {"nets": _nets(b), **rule.pop("destination", {})}
            out.append(rule)
    return out


def _span(low: int, high: int) -> IntervalSet:
    return IntervalSet.of([(low, high)])


def _nets(addresses: IntervalSet) -> list[str]:
    return [str(ipaddress.ip_network(n, strict=False)) for s in addresses for n in show_span(s)]


def _matches(packets: IntervalSet, version: int) -> list[Rule]:
    """The protocol and port matches of a packet set, for one IP version."""
    if not ALL_PACKETS - packets - _UNNAMED[version]:
        return [{}]
    out: list[Rule] = []
    for proto in sorted({p for lo, hi in packets for p in range(lo >> 16, (hi >> 16) + 1)}):
        if (version == 4 and proto in _V6_ONLY) or (version == 6 and proto in _V4_ONLY):
            continue
        part = packets & IntervalSet.of([protocol_span(proto)])
        if part:
            out += _protocol_matches(proto, part)
    return out


def _protocol_matches(proto: int, part: IntervalSet) -> list[Rule]:
    named: Rule = {"protocol": _PROTOCOL_NAMES.get(proto, proto)}
    if proto == 0:
        return []  # no rule names it, no traffic uses it
    if not IntervalSet.of([protocol_span(proto)]) - part - _SILENT:
        return [named]
    if proto in PORT_PROTOCOLS:
        ports = [_port_range(lo & 0xFFFF, hi & 0xFFFF) for lo, hi in part]
        return [{**named, "destination": {"ports": [p for p in ports if p is not None]}}]
    if proto in ICMP_PROTOCOLS:
        return [{**named, "icmp": icmp} for icmp in _icmp(part)]
    return [named]  # a protocol without ports is one point: it was covered whole


def _port_range(lo: int, hi: int) -> int | str | None:
    lo = max(lo, 1)  # port 0 carries no traffic, and Calico refuses it
    if hi < lo:
        return None
    return lo if lo == hi else f"{lo}:{hi}"


def _icmp(part: IntervalSet) -> list[dict[str, int]]:
    out = []
    for lo, hi in part:
        for value in range(lo & 0xFFFF, (hi & 0xFFFF) + 1):
            kind, code = value >> 8, value & 0xFF
            if code == 0 and value + 255 <= (hi & 0xFFFF):
                out.append({"type": kind})
            elif not out or out[-1] != {"type": kind}:
                out.append({"type": kind, "code": code})
    return out
