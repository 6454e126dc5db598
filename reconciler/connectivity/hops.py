"""One policing point: a tier walk, and the stage sequences Felix renders per chain.

Sources (calico-semantics.md and the Felix files it cites):
- tiers, Pass, end-of-tier drop only for endpoints a tier selects for that direction,
  defaultAction Pass from v3.29: felix/rules/endpoints.go endpointIptablesChain;
- failsafe chains first: rules/static.go failsafeInChain/failsafeOutChain, endpoints.go;
- untracked -> pre-DNAT -> normal for host traffic, pre-DNAT without default drop,
  forwarded traffic and applyOnForward: calico host-endpoints docs summary/pre-dnat/forwarded.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.connectivity.intervals import IntervalSet
from reconciler.connectivity.outcome import By, Outcome, Step, Verdict
from reconciler.connectivity.packets import TCP, UDP, ports
from reconciler.connectivity.rules import Action, Direction, Policy, Stage, Tier
from reconciler.connectivity.views import DEFAULT_ALLOW_PROFILE, View
from reconciler.connectivity.world import World

_FAILSAFE_TCP = [(22, 22), (179, 179), (2379, 2380), (5473, 5473), (6443, 6443), (6666, 6667)]
# felix/config/config_params.go FailsafeInboundHostPorts / FailsafeOutboundHostPorts defaults.
FAILSAFE_IN = ports(TCP, _FAILSAFE_TCP) | ports(UDP, [(68, 68)])
FAILSAFE_OUT = ports(TCP, _FAILSAFE_TCP) | ports(UDP, [(53, 53), (67, 67)])


@dataclass(frozen=True, slots=True)
class Ends:
    """A flow's two addresses, the views owning them, and the destination endpoint."""

    src: int
    src_views: tuple[View, ...]
    dst: int
    dst_views: tuple[View, ...]
    dst_endpoint: View | None


@dataclass(frozen=True, slots=True)
class Walk:
    """A tier walk: what it decided, and what left it undecided (passed or unmatched)."""

    outcome: Outcome
    rest: IntervalSet
    tiers: int  # how many tiers governed the endpoint


class Engine:
    """Evaluates hops over one World; caches which policies govern which endpoint."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._governing: dict[tuple[str, Direction, bool], tuple[Policy, ...]] = {}
        self._owners: dict[int, tuple[View, ...]] = {}
        self._forwarding: dict[str, tuple[Policy, ...]] = {}

    def reuse(self, other: Engine) -> None:
        """Take over `other`'s policy selections where they still hold: the same policies
        (one tuple, as WorldBuilder keeps it while no policy changes) and the same view.
        The states of one apply differ by an object or two; most selections carry over."""
        if other.world.policies is not self.world.policies:
            return
        mine = {v.name: v for v in (*self.world.pods, *self.world.hosts)}
        theirs = {v.name: v for v in (*other.world.pods, *other.world.hosts)}
        for key, found in other._governing.items():
            if mine.get(key[0]) is theirs.get(key[0]) is not None:
                self._governing.setdefault(key, found)
        for name, found_fwd in other._forwarding.items():
            if mine.get(name) is theirs.get(name) is not None:
                self._forwarding.setdefault(name, found_fwd)

    def forwarding(self, hep: View) -> tuple[Policy, ...]:
        """The normal applyOnForward policies selecting a host endpoint."""
        if hep.name not in self._forwarding:
            found = (p for p in self.world.policies if _forwards(p) and p.selects.matches(hep))
            self._forwarding[hep.name] = tuple(found)
        return self._forwarding[hep.name]

    def owners(self, address: int) -> tuple[View, ...]:
        if address not in self._owners:
            self._owners[address] = self.world.owners(address)
        return self._owners[address]

    def governing(self, view: View, direction: Direction, *, host: bool) -> tuple[Policy, ...]:
        key = (view.name, direction, host)
        if key not in self._governing:
            found = (p for p in self.world.policies if direction in p.types)
            self._governing[key] = tuple(p for p in found if p.selects.matches(view))
        return self._governing[key]

    def walk(
        self,
        policies: Sequence[Policy],
        direction: Direction,
        ends: Ends,
        packets: IntervalSet,
        *,
        hop: str,
        end_drop: bool = True,
    ) -> Walk:
        outcome, remaining, count = Outcome(), packets, 0
        for tier_name, group in itertools.groupby(policies, key=lambda p: p.tier):
            count += 1
            tier = self.world.tiers.get(tier_name, Tier(tier_name, float("inf")))
            governed = list(group)
            decided, passed, left = self._tier(
                tier, policies=governed, direction=direction, ends=ends, packets=remaining, hop=hop
            )
            outcome = _merge(outcome, decided)
            if left and end_drop and not self._tier_passes(tier):
                outcome = outcome.add(left, _end_of_tier(tier, governed, hop))
                left = IntervalSet()
            remaining = passed | left
            if not remaining:
                break
        return Walk(outcome, remaining, count)

    def _tier_passes(self, tier: Tier) -> bool:
        return tier.default_action is Action.PASS and self.world.flavour.tier_pass

    def _tier(
        self,
        tier: Tier,
        *,
        policies: list[Policy],
        direction: Direction,
        ends: Ends,
        packets: IntervalSet,
        hop: str,
    ) -> tuple[Outcome, IntervalSet, IntervalSet]:
        outcome, passed, left = Outcome(), IntervalSet(), packets
        for policy in policies:
            for rule in policy.rules(direction):
                if not left:
                    return outcome, passed, left
                if not rule.addresses_match(ends.src, ends.src_views, ends.dst, ends.dst_views):
                    continue
                hit = rule.packets(ends.dst_endpoint) & left
                if not hit or rule.action is Action.LOG:
                    continue
                step = _rule_step(
                    tier,
                    policy,
                    label=rule.label,
                    action=rule.action,
                    hop=hop,
                    unknown=rule.unknown,
                )
                outcome = outcome.add(hit, step, rule.unknown)
                passed = passed | hit if rule.action is Action.PASS else passed
                left = left - hit
        return outcome, passed, left

    # --- the chains -------------------------------------------------------------------

    def workload(
        self, pod: View, direction: Direction, ends: Ends, packets: IntervalSet
    ) -> Outcome:
        """A pod's own policy; after the tiers its namespace profile kns.<ns> allows all."""
        side = "destination ingress" if direction is Direction.INGRESS else "source egress"
        hop = f"{side}: pod {pod.name}"
        # Untracked and pre-DNAT policy only ever applies to host endpoints.
        policies = [
            p for p in self.governing(pod, direction, host=False) if p.stage is Stage.NORMAL
        ]
        walk = self.walk(policies, direction, ends, packets, hop=hop)
        profile = Step(hop, Verdict.ALLOW, By.PROFILE, _profile_text(pod, walk.tiers))
        return walk.outcome.add(walk.rest, profile)

    def host_in(self, hep: View, ends: Ends, packets: IntervalSet) -> Outcome:
        """Traffic to a host process: failsafe, untracked, pre-DNAT, normal, profiles."""
        hop = f"destination ingress: host endpoint {hep.name} (node {hep.node})"
        return self._host(
            hep,
            direction=Direction.INGRESS,
            ends=ends,
            packets=packets,
            hop=hop,
            failsafe=FAILSAFE_IN,
        )

    def host_out(self, hep: View, ends: Ends, packets: IntervalSet) -> Outcome:
        """Traffic from a host process: failsafe, untracked, normal, profiles (no pre-DNAT)."""
        hop = f"source egress: host endpoint {hep.name} (node {hep.node})"
        return self._host(
            hep,
            direction=Direction.EGRESS,
            ends=ends,
            packets=packets,
            hop=hop,
            failsafe=FAILSAFE_OUT,
        )

    def _host(
        self,
        hep: View,
        *,
        direction: Direction,
        ends: Ends,
        packets: IntervalSet,
        hop: str,
        failsafe: IntervalSet,
    ) -> Outcome:
        outcome = Outcome().add(packets & failsafe, _failsafe(hop, direction))
        rest = packets - failsafe
        for stage in (Stage.UNTRACKED, Stage.PRE_DNAT):
            if rest:
                outcome, rest = self._early(
                    hep,
                    direction=direction,
                    stage=stage,
                    ends=ends,
                    packets=rest,
                    hop=hop,
                    outcome=outcome,
                )
        policies = [p for p in self.governing(hep, direction, host=True) if p.stage is Stage.NORMAL]
        walk = self.walk(policies, direction, ends, rest, hop=hop)
        outcome = _merge(outcome, walk.outcome)
        return outcome.add(walk.rest, _host_profile(hep, hop, walk.tiers))

    def _early(
        self,
        hep: View,
        *,
        direction: Direction,
        stage: Stage,
        ends: Ends,
        packets: IntervalSet,
        hop: str,
        outcome: Outcome,
    ) -> tuple[Outcome, IntervalSet]:
        """Untracked and pre-DNAT: Allow and Deny are final, no match hands on (no drop)."""
        policies = [p for p in self.governing(hep, direction, host=True) if p.stage is stage]
        if not policies:
            return outcome, packets
        walk = self.walk(policies, direction, ends, packets, hop=f"{hop} [{stage}]", end_drop=False)
        return _merge(outcome, walk.outcome), walk.rest

    def forward_in(self, hep: View, ends: Ends, packets: IntervalSet) -> Outcome:
        """Arriving at a node and forwarded to a local pod: pre-DNAT (skipped on failsafe
        ports: the mangle failsafe matches port only), then applyOnForward normal policy."""
        hop = f"node forward (ingress): host endpoint {hep.name} (node {hep.node})"
        outcome, rest = Outcome(), packets - FAILSAFE_IN
        for stage in (Stage.UNTRACKED, Stage.PRE_DNAT):
            if rest:
                outcome, rest = self._early(
                    hep,
                    direction=Direction.INGRESS,
                    stage=stage,
                    ends=ends,
                    packets=rest,
                    hop=hop,
                    outcome=outcome,
                )
        rest = rest | (packets & FAILSAFE_IN)
        return _merge(outcome, self._forward(hep, Direction.INGRESS, ends, rest, hop))

    def forward_out(self, hep: View, ends: Ends, packets: IntervalSet) -> Outcome:
        hop = f"node forward (egress): host endpoint {hep.name} (node {hep.node})"
        return self._forward(hep, Direction.EGRESS, ends, packets, hop)

    def _forward(
        self, hep: View, direction: Direction, ends: Ends, packets: IntervalSet, hop: str
    ) -> Outcome:
        """forwarded.mdx: allowed by default if no applyOnForward policy applies. endpoints.go
        renders that default only when no forward tier exists at all for the endpoint."""
        forward = self.forwarding(hep)
        mine = [p for p in forward if direction in p.types]
        if not forward:
            return Outcome().add(packets, _default_forward(hop))
        if not mine:
            return Outcome().add(packets, _forward_gap(hop, direction), _FORWARD_GAP)
        walk = self.walk(mine, direction, ends, packets, hop=hop)
        after = Step(hop, Verdict.ALLOW, By.DEFAULT, "passed every tier: forwarded traffic allowed")
        return walk.outcome.add(walk.rest, after)


_FORWARD_GAP = (
    "forwarded traffic in a direction no applyOnForward policy governs, while the other "
    "direction has one: Felix renders no default for it (endpoints.go), so the iptables "
    "FORWARD chain's own policy decides"
)


def _forwards(policy: Policy) -> bool:
    return policy.apply_on_forward and policy.stage is Stage.NORMAL


def _merge(first: Outcome, second: Outcome) -> Outcome:
    """Two parts of one hop over disjoint packets."""
    return Outcome(
        first.allow | second.allow,
        first.deny | second.deny,
        first.unknown | second.unknown,
        (*first.trace, *second.trace),
        (*first.reasons, *second.reasons),
    )


_RULE_VERDICTS: dict[Action, Verdict | None] = {
    Action.ALLOW: Verdict.ALLOW,
    Action.DENY: Verdict.DENY,
    Action.PASS: None,
}


def _rule_step(
    tier: Tier, policy: Policy, *, label: str, action: Action, hop: str, unknown: str
) -> Step:
    verdict = Verdict.UNKNOWN if unknown else _RULE_VERDICTS[action]
    by = By.PASS if action is Action.PASS else By.RULE
    what = {Action.PASS: "passes to the next tier", Action.DENY: "denies"}.get(
        action, action.value.lower() + "s"
    )
    return Step(
        hop,
        verdict,
        By.UNKNOWN if unknown else by,
        f"{policy.title} {label} {what}" + (f" (depends on {unknown})" if unknown else ""),
        tier=tier.name,
        policy=policy.title,
        rule=label,
        origin=policy.origin,
    )


def _end_of_tier(tier: Tier, governed: list[Policy], hop: str) -> Step:
    names = ", ".join(p.name for p in governed[:3]) + (" ..." if len(governed) > 3 else "")
    detail = (
        f"no rule matched in tier {tier.name!r}, whose policies govern this endpoint "
        f"({names}): dropped"
    )
    return Step(hop, Verdict.DENY, By.END_OF_TIER, detail, tier=tier.name)


def _failsafe(hop: str, direction: Direction) -> Step:
    which = "inbound" if direction is Direction.INGRESS else "outbound"
    detail = f"Calico's {which} failsafe port: allowed before any policy"
    return Step(hop, Verdict.ALLOW, By.FAILSAFE, detail)


def _profile_text(pod: View, tiers: int) -> str:
    why = "no policy governs it" if not tiers else "every tier passed"
    return f"{why}: namespace profile kns.{pod.namespace} allows"


def _host_profile(hep: View, hop: str, tiers: int) -> Step:
    why = "no policy governs it" if not tiers else "every tier passed"
    if DEFAULT_ALLOW_PROFILE in hep.profiles:
        return Step(hop, Verdict.ALLOW, By.PROFILE, f"{why}: profile {DEFAULT_ALLOW_PROFILE}")
    if hep.profiles:
        detail = f"{why}: profiles {', '.join(hep.profiles)} are not in the repository"
        return Step(hop, Verdict.UNKNOWN, By.UNKNOWN, detail)
    return Step(hop, Verdict.DENY, By.DEFAULT, f"{why}: host endpoint without profiles drops")


def _default_forward(hop: str) -> Step:
    detail = "no applyOnForward policy governs this host endpoint: forwarded traffic allowed"
    return Step(hop, Verdict.ALLOW, By.DEFAULT, detail)


def _forward_gap(hop: str, direction: Direction) -> Step:
    return Step(hop, Verdict.UNKNOWN, By.UNKNOWN, f"no applyOnForward {direction} policy")
