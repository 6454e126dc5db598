"""Compiled policies and rules: what Felix renders, as values the evaluator walks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from reconciler.connectivity import addresses as addr
from reconciler.connectivity.intervals import EMPTY, IntervalSet
from reconciler.connectivity.packets import ports
from reconciler.connectivity.views import Match, View


class Direction(StrEnum):
    INGRESS = "Ingress"
    EGRESS = "Egress"


class Stage(StrEnum):
    """felix/calc/event_sequencer.go tierInfoToProtoTierInfo: the groups host endpoints see."""

    UNTRACKED = "untracked"  # doNotTrack
    PRE_DNAT = "pre-DNAT"
    NORMAL = "normal"


class Action(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"
    PASS = "Pass"  # noqa: S105 (an action, not a password)
    LOG = "Log"


@dataclass(frozen=True, slots=True)
class Side:
    """A rule's source or destination, less its ports."""

    nets: IntervalSet | None = None
    not_nets: IntervalSet | None = None
    match: Match | None = None
    not_match: Match | None = None

    def matches(self, address: int, owners: Sequence[View]) -> bool:
        """`owners`: the views whose addresses hold `address` (World.owners): a selector
        matches an address through the endpoints and sets it belongs to."""
        if self.nets is not None and address not in self.nets:
            return False
        if self.not_nets is not None and address in self.not_nets:
            return False
        if self.match is not None and not any(self.match.matches(v) for v in owners):
            return False
        return self.not_match is None or not any(self.not_match.matches(v) for v in owners)


@dataclass(frozen=True, slots=True)
class NamedPorts:
    """Named destination ports: resolved against the destination endpoint's container ports."""

    names: tuple[tuple[int | None, str], ...] = ()  # (protocol or None, name)

    def resolve(self, destination: View | None) -> IntervalSet:
        if destination is None or not self.names:
            return EMPTY
        found = [
            ports(p.protocol, [(p.port, p.port)])
            for proto, name in self.names
            for p in destination.named_ports
            if p.name == name and proto in (None, p.protocol)
        ]
        out = EMPTY
        for one in found:
            out = out | one
        return out


@dataclass(frozen=True, slots=True)
class Rule:
    action: Action
    label: str  # "ingress[2]", "ingress[0].from[1]": where in the policy
    protocols: IntervalSet  # protocol/notProtocol/icmp/notICMP
    fixed: IntervalSet  # packets matched without named ports (protocols with ports applied)
    named: NamedPorts = NamedPorts()
    not_fixed: IntervalSet = EMPTY
    not_named: NamedPorts = NamedPorts()
    source: Side = Side()
    destination: Side = Side()
    ip_version: int | None = None
    unknown: str = ""  # why the packet alone cannot decide a match (source ports, ...)

    def packets(self, destination: View | None) -> IntervalSet:
        matched = self.fixed
        if self.named.names:
            matched = matched | (self.named.resolve(destination) & self.protocols)
        if self.not_fixed or self.not_named.names:
            matched = matched - (self.not_fixed | self.not_named.resolve(destination))
        return matched

    def addresses_match(
        self, src: int, src_views: Sequence[View], dst: int, dst_views: Sequence[View]
    ) -> bool:
        if self.ip_version is not None and addr.version(src) != self.ip_version:
            return False
        return self.source.matches(src, src_views) and self.destination.matches(dst, dst_views)


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    order: float  # math.inf when unset (policy_sorter.go TierLess)
    default_action: Action = Action.DENY
    origin: str = ""


# api/pkg/apis/projectcalico/v3/tier.go: the tiers Calico creates itself.
BUILTIN_TIERS = {
    "default": Tier("default", 1_000_000.0, origin="built in"),
    "kube-admin": Tier("kube-admin", 1_000.0, Action.PASS, origin="built in"),
    "kube-baseline": Tier("kube-baseline", 10_000_000.0, Action.PASS, origin="built in"),
}


@dataclass(frozen=True, slots=True)
class Policy:
    kind: str  # GlobalNetworkPolicy | NetworkPolicy | KubernetesNetworkPolicy
    name: str
    namespace: str
    tier: str
    order: float
    sort_name: str  # the name Felix sorts ties by (PolKVLess), per Calico release
    selects: Match
    types: frozenset[Direction]
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]
    stage: Stage = Stage.NORMAL
    apply_on_forward: bool = False
    # Where it was written; not part of what it does (a policy moved in its file is equal).
    origin: str = field(default="", compare=False)

    @property
    def title(self) -> str:
        scoped = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {scoped}"

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress

    def sort_key(self, tiers: dict[str, Tier]) -> tuple[float, str, float, str, str, str]:
        tier = tiers.get(self.tier, Tier(self.tier, math.inf))
        return (tier.order, tier.name, self.order, self.sort_name, self.namespace, self.kind)
